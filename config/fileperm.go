package config

import (
	"fmt"
	"io/fs"
	"syscall"
)

// checkOwnerMode rejects files not owned by root or writable by group or others.
func checkOwnerMode(fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("cannot read owner")
	}
	if st.Uid != 0 {
		return fmt.Errorf("%w: owned by uid %d", ErrInsecureFile, st.Uid)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%w: mode %04o", ErrInsecureFile, fi.Mode().Perm())
	}
	return nil
}
