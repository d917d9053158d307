package config

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// checkOwnerMode rejects a file or directory not owned by root (or, with AllowInsecure, by
// the current user) or writable by group or others.
func checkOwnerMode(fi fs.FileInfo, opts LoadOptions) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("cannot read owner")
	}
	if st.Uid != 0 && !(opts.AllowInsecure && int(st.Uid) == os.Geteuid()) {
		return fmt.Errorf("%w: owned by uid %d", ErrInsecureFile, st.Uid)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%w: mode %04o", ErrInsecureFile, fi.Mode().Perm())
	}
	return nil
}

// checkParents checks the directory that holds path and, when path is a symlink, the one
// that holds its target.
func checkParents(path string, opts LoadOptions) error {
	dirs := []string{filepath.Dir(path)}
	if real, err := filepath.EvalSymlinks(path); err == nil && real != path {
		dirs = append(dirs, filepath.Dir(real))
	}
	return CheckTrustedDir(opts, dirs...)
}

// CheckTrustedDir checks that each directory is owned by root (or, with AllowInsecure, by
// the current user) and writable by nobody else, so that no one else can add, remove or
// replace the files in it. With opts.Development it checks nothing.
func CheckTrustedDir(opts LoadOptions, dirs ...string) error {
	if opts.Development {
		return nil
	}
	for _, dir := range dirs {
		fi, err := os.Stat(dir)
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s: not a directory", dir)
		}
		if err := checkOwnerMode(fi, opts); err != nil {
			return fmt.Errorf("directory %s: %w", dir, err)
		}
	}
	return nil
}
