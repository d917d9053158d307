package daemon

import (
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestListen(t *testing.T) {
	cases := []struct {
		name string
		// setup prepares the directory around path and may return a cleanup.
		setup   func(t *testing.T, path string)
		path    func(dir string) string
		wantErr string
		// untouched is a file that must survive a refused Listen unchanged.
		untouched bool
	}{
		{
			name: "creates the missing parent 0755",
			path: func(dir string) string { return filepath.Join(dir, "run", "pingid", "s.sock") },
		},
		{
			name:  "existing parent",
			setup: func(t *testing.T, path string) {},
		},
		{
			name: "replaces a stale socket",
			setup: func(t *testing.T, path string) {
				ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
				if err != nil {
					t.Fatal(err)
				}
				ln.SetUnlinkOnClose(false)
				ln.Close()
				if fi, err := os.Lstat(path); err != nil || fi.Mode().Type() != fs.ModeSocket {
					t.Fatalf("no stale socket left behind: %v", err)
				}
			},
		},
		{
			name: "refuses a socket someone answers on",
			setup: func(t *testing.T, path string) {
				ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { ln.Close() })
			},
			wantErr: "another process is listening",
		},
		{
			name: "refuses a regular file",
			setup: func(t *testing.T, path string) {
				if err := os.WriteFile(path, []byte("keep"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			wantErr:   "not a socket",
			untouched: true,
		},
		{
			name: "refuses a symlink",
			setup: func(t *testing.T, path string) {
				target := path + ".real"
				ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: target, Net: "unix"})
				if err != nil {
					t.Fatal(err)
				}
				ln.SetUnlinkOnClose(false)
				ln.Close()
				if err := os.Symlink(target, path); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "not a socket",
		},
		{
			name: "refuses a directory",
			setup: func(t *testing.T, path string) {
				if err := os.Mkdir(path, 0o700); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "not a socket",
		},
		{
			name: "refuses a parent writable by others",
			setup: func(t *testing.T, path string) {
				if err := os.Chmod(filepath.Dir(path), 0o1777); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "writable by others",
		},
		{
			name: "refuses a parent that is a file",
			path: func(dir string) string {
				os.WriteFile(filepath.Join(dir, "file"), nil, 0o600)
				return filepath.Join(dir, "file", "s.sock")
			},
			wantErr: "not a directory",
		},
		{
			name:    "refuses a path too long for sun_path",
			path:    func(dir string) string { return filepath.Join(dir, strings.Repeat("x", 120)) },
			wantErr: "longer than 107 bytes",
		},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "s.sock")
			if tc.path != nil {
				path = tc.path(dir)
			}
			if tc.setup != nil {
				tc.setup(t, path)
			}

			ln, err := Listen(path)
			if tc.wantErr != "" {
				if err == nil {
					ln.Close()
					t.Fatalf("Listen succeeded, want error containing %q", tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("Listen error = %q, want it to name %s and say %q",
						err, path, tc.wantErr)
				}
				if tc.untouched {
					if data, err := os.ReadFile(path); err != nil || string(data) != "keep" {
						t.Errorf("refused file changed: %q, %v", data, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Listen: %v", err)
			}
			defer ln.Close()

			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Type() != fs.ModeSocket {
				t.Errorf("%s is %v, want a socket", path, fi.Mode().Type())
			}
			if got := fi.Mode().Perm(); got != 0o600 {
				t.Errorf("socket mode %04o, want 0600", got)
			}
			if uid := fi.Sys().(*syscall.Stat_t).Uid; int(uid) != os.Geteuid() {
				t.Errorf("socket owned by uid %d, want %d", uid, os.Geteuid())
			}
			di, err := os.Stat(filepath.Dir(path))
			if err != nil {
				t.Fatal(err)
			}
			if tc.path != nil && di.Mode().Perm() != 0o755 {
				t.Errorf("created parent mode %04o, want 0755", di.Mode().Perm())
			}

			c, err := net.Dial("unix", path)
			if err != nil {
				t.Fatalf("dial the new socket: %v", err)
			}
			c.Close()

			ln.Close()
			if _, err := os.Lstat(path); !os.IsNotExist(err) {
				t.Errorf("socket file still there after Close: %v", err)
			}
		})
	}
}
