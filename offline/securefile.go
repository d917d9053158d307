package offline

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Reasons a protected file could not be read, mapped to a Status by the Store.
var (
	errMissing  = errors.New("does not exist")
	errInsecure = errors.New("insecure")
	errTooLarge = errors.New("too large")
)

// owners decides which file owners are trusted: root, and with allowInsecure also the
// effective user (tests and demos running unprivileged).
type owners struct {
	allowInsecure bool
	euid          uint32
}

func (o owners) trusted(uid uint32) bool {
	return uid == 0 || o.allowInsecure && uid == o.euid
}

// openDir opens dir (following symlinks: only the target matters) and checks that it is a
// directory owned by a trusted user and writable by nobody else, so no one else can swap
// the files in it. A missing directory wraps errMissing.
func (o owners) openDir(dir string) (int, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return -1, fmt.Errorf("directory %s %w", dir, errMissing)
		}
		if errors.Is(err, unix.ENOTDIR) {
			return -1, fmt.Errorf("%s: %w: not a directory", dir, errInsecure)
		}
		return -1, fmt.Errorf("open directory %s: %w", dir, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("stat directory %s: %w", dir, err)
	}
	if !o.trusted(st.Uid) {
		unix.Close(fd)
		return -1, fmt.Errorf("directory %s: %w: owned by uid %d", dir, errInsecure, st.Uid)
	}
	if st.Mode&0o022 != 0 {
		unix.Close(fd)
		return -1, fmt.Errorf("directory %s: %w: mode %04o lets others write",
			dir, errInsecure, st.Mode&0o7777)
	}
	return fd, nil
}

// checkFile accepts a regular file owned by a trusted user with no permissions for group or
// others.
func (o owners) checkFile(path string, st *unix.Stat_t) error {
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%s: %w: not a regular file", path, errInsecure)
	}
	if !o.trusted(st.Uid) {
		return fmt.Errorf("%s: %w: owned by uid %d", path, errInsecure, st.Uid)
	}
	if st.Mode&0o077 != 0 {
		return fmt.Errorf("%s: %w: mode %04o, want 0600", path, errInsecure, st.Mode&0o7777)
	}
	return nil
}

// openFile opens path, in a directory that passes openDir, with flags plus O_NOFOLLOW,
// O_NONBLOCK, O_NOCTTY and O_CLOEXEC (so neither a symlink nor a FIFO is followed or
// waited on; O_CREAT creates it with mode 0600), and checks it with checkFile. Errors wrap
// errMissing or errInsecure where they apply. The caller closes the file.
func (o owners) openFile(path string, flags int) (*os.File, *unix.Stat_t, error) {
	dfd, err := o.openDir(filepath.Dir(path))
	if err != nil {
		return nil, nil, err
	}
	defer unix.Close(dfd)

	fd, err := unix.Openat(dfd, filepath.Base(path),
		flags|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0o600)
	if err != nil {
		switch {
		case errors.Is(err, unix.ENOENT):
			return nil, nil, fmt.Errorf("%s %w", path, errMissing)
		case errors.Is(err, unix.ELOOP):
			return nil, nil, fmt.Errorf("%s: %w: is a symlink", path, errInsecure)
		}
		return nil, nil, fmt.Errorf("open %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if err := o.checkFile(path, &st); err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, &st, nil
}

// readFile reads a protected file: its directory must pass openDir, the file itself is
// opened without following a symlink and without blocking on a FIFO, must pass checkFile,
// and may hold at most limit bytes. Errors wrap errMissing, errInsecure or errTooLarge
// where they apply.
func (o owners) readFile(path string, limit int) ([]byte, error) {
	f, st, err := o.openFile(path, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer f.Close()

	if st.Size > int64(limit) {
		return nil, fmt.Errorf("%s: %w: %d bytes, limit %d", path, errTooLarge, st.Size, limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > limit {
		return nil, fmt.Errorf("%s: %w: more than %d bytes", path, errTooLarge, limit)
	}
	return data, nil
}

// writeFileAtomic replaces path with data: a new file is created exclusively in the same
// (checked) directory with mode 0600, written, synced, renamed over path, and the directory
// is synced, so readers see the old file or the new one and never a part. A symlink at
// path is replaced, never followed. With mkdir, missing directories are created with 0700.
func (o owners) writeFileAtomic(path string, data []byte, mkdir bool) error {
	dir := filepath.Dir(path)
	if mkdir {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create directory: %w", err)
		}
	}
	dfd, err := o.openDir(dir)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)

	tmp, err := tempName(filepath.Base(path))
	if err != nil {
		return err
	}
	fd, err := unix.Openat(dfd, tmp,
		unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create temporary file in %s: %w", dir, err)
	}
	f := os.NewFile(uintptr(fd), filepath.Join(dir, tmp))
	committed := false
	defer func() {
		if !committed {
			f.Close()
			unix.Unlinkat(dfd, tmp, 0)
		}
	}()

	if err := unix.Fchmod(fd, 0o600); err != nil {
		return fmt.Errorf("chmod temporary file: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write temporary file: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync temporary file: %w", err)
	}
	if err := unix.Renameat(dfd, tmp, dfd, filepath.Base(path)); err != nil {
		return fmt.Errorf("rename into place: %w", err)
	}
	committed = true
	f.Close()
	if err := unix.Fsync(dfd); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

func tempName(base string) (string, error) {
	var r [8]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", fmt.Errorf("temporary name: %w", err)
	}
	return "." + base + ".tmp-" + hex.EncodeToString(r[:]), nil
}

// InitKey creates the host key at path: HostKeySize bytes from crypto/rand, mode 0600, made
// by writing a temporary file in the same directory and linking it into place, so an
// existing key (or anything else at path, a dangling symlink included) is never
// overwritten and a crash never leaves a short key. A missing directory is created with
// mode 0700. The key is never printed or logged.
func InitKey(path string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("init key: %q is not an absolute path", path)
	}
	key := make([]byte, HostKeySize)
	defer clear(key)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("init key: %w", err)
	}

	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("init key: create directory: %w", err)
	}
	tmp, err := tempName(filepath.Base(path))
	if err != nil {
		return fmt.Errorf("init key: %w", err)
	}
	tmp = filepath.Join(dir, tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("init key: %w", err)
	}
	defer os.Remove(tmp)

	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("init key: %w", err)
	}
	if _, err := f.Write(key); err != nil {
		f.Close()
		return fmt.Errorf("init key: write: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("init key: sync: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("init key: %w", err)
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("init key: %s already exists; refusing to overwrite it", path)
		}
		return fmt.Errorf("init key: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
