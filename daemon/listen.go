// Package daemon serves login sessions over a unix socket: it creates the socket safely,
// accepts only peers whose credentials are allowed, bounds how many sessions run at once and
// shuts down without cutting sessions short unless told to.
//
// What a session says on the connection is the handler's business; this package only moves
// connections and decides who may make them.
package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// maxSocketPath is the longest path a unix socket address can hold on Linux (sun_path is
// 108 bytes including the terminating NUL).
const maxSocketPath = 107

// staleProbeTimeout bounds the connect that tells a live socket from a stale one.
const staleProbeTimeout = time.Second

// Listen creates the socket at path and listens on it.
//
// The parent directory is created with mode 0755 if missing; an existing one must be a
// directory owned by root or by this process's uid and writable by nobody else, because
// whoever can write there could put a socket of their own in place of ours. An existing
// socket at path is removed only if nobody answers on it; any other kind of file (regular,
// directory, symlink) is refused and left alone. The socket is chmod 0600, owned by the
// process's uid.
//
// The mode is set right after bind, so for a moment the socket has the mode the umask gives
// it; peers are checked by credentials on every connection (Server), so a connection made in
// that moment gains nothing.
//
// Closing the returned listener removes the socket file.
func Listen(path string) (*net.UnixListener, error) {
	if path == "" {
		return nil, errors.New("listen: empty socket path")
	}
	path = filepath.Clean(path)
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("listen %s: socket path longer than %d bytes", path, maxSocketPath)
	}
	if err := ensureDir(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	if err := removeStale(path); err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}

	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("listen %s: set mode: %w", path, err)
	}
	return ln, nil
}

// ensureDir creates dir 0755 if missing, and otherwise checks that only root or this
// process can change what is in it.
func ensureDir(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create socket directory: %w", err)
		}
		// MkdirAll is subject to the umask; the directory must be searchable by the shim.
		if err := os.Chmod(dir, 0o755); err != nil {
			return fmt.Errorf("set socket directory mode: %w", err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("socket directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("socket directory %s is not a directory", dir)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("socket directory %s: cannot read owner", dir)
	}
	if st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("socket directory %s is owned by uid %d", dir, st.Uid)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("socket directory %s is writable by others (mode %04o)",
			dir, fi.Mode().Perm())
	}
	return nil
}

// removeStale removes a socket left behind by a daemon that is gone. It refuses anything
// that is not a socket, and a socket that someone still answers on.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket (%s); refusing to replace it",
			path, fi.Mode().Type())
	}

	c, err := net.DialTimeout("unix", path, staleProbeTimeout)
	if err == nil {
		c.Close()
		return errors.New("another process is listening on the socket")
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		// Not provably stale (a full backlog, a permission problem): leave it alone.
		return fmt.Errorf("probe existing socket: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale socket: %w", err)
	}
	return nil
}
