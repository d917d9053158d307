package offline

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestSaveLoad(t *testing.T) {
	e := newTestEnv(t, 0)
	devs := []Device{testDevice("d1"), testDevice("d2")}
	devs[1].Key = bytes.Repeat([]byte{7}, 20)
	if err := e.store.Save("alice", devs); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(90 * time.Minute)

	got, st, err := e.store.Load("alice")
	if err != nil || st != StatusReady {
		t.Fatalf("Load = %v, %v", st, err)
	}
	if len(got) != 2 || got[0].ID != "d1" || got[1].Name != "phone d2" ||
		!bytes.Equal(got[1].Key, devs[1].Key) || got[0].Suite != DefaultSuite {
		t.Errorf("Load devices = %v", got)
	}

	r := e.store.Status("alice")
	want := Report{Status: StatusReady, Devices: 2, Age: 90 * time.Minute}
	if r != want {
		t.Errorf("Status = %+v, want %+v", r, want)
	}

	path := e.devicesPath(t, "alice")
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o600 {
		t.Errorf("file mode %v, want 0600", fi.Mode())
	}
	if uid := fi.Sys().(*syscall.Stat_t).Uid; int(uid) != os.Geteuid() {
		t.Errorf("file owner %d, want %d", uid, os.Geteuid())
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v, want 0700", di.Mode())
	}

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, devs[0].Key) || bytes.Contains(data, []byte("phone")) {
		t.Error("device file holds plaintext")
	}
	if strings.Contains(e.logs.String(), string(devs[0].Key)) {
		t.Error("a key was logged")
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*.tmp-*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}

	// A refresh replaces the list.
	if err := e.store.Save("alice", devs[:1]); err != nil {
		t.Fatal(err)
	}
	if r := e.store.Status("alice"); r.Devices != 1 || r.Age != 0 {
		t.Errorf("after refresh Status = %+v", r)
	}
}

// flip returns a copy of data with one byte changed.
func flip(data []byte, i int) []byte {
	out := bytes.Clone(data)
	out[i] ^= 0x01
	return out
}

// statusFx is what a TestStatus case may change before the status is read.
type statusFx struct {
	t      *testing.T
	e      *testEnv
	path   string // alice's device file
	sealed []byte // its content as saved
}

func (f *statusFx) must(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *statusFx) key() string { return f.e.cfg.OfflineKeyFile }

func TestStatus(t *testing.T) {
	euid := os.Geteuid()
	tests := []struct {
		name  string
		user  string
		setup func(f *statusFx)
		want  Status
		root  bool // needs root to set up
		// fileOK: the device file itself is fine, so Load returns its devices.
		fileOK bool
	}{
		{name: "ready", want: StatusReady, fileOK: true},
		{name: "missing", want: StatusMissing, setup: func(f *statusFx) {
			f.must(os.Remove(f.path))
		}},
		{name: "missing directory", want: StatusMissing, setup: func(f *statusFx) {
			f.must(os.RemoveAll(filepath.Dir(f.path)))
		}},
		{name: "no host key", want: StatusNoKey, setup: func(f *statusFx) {
			f.must(os.Remove(f.key()))
		}},
		{name: "host key directory missing", want: StatusNoKey, setup: func(f *statusFx) {
			f.must(os.RemoveAll(filepath.Dir(f.key())))
		}},
		{name: "short host key", want: StatusNoKey, setup: func(f *statusFx) {
			f.must(os.Truncate(f.key(), 31))
		}},
		{name: "long host key", want: StatusNoKey, setup: func(f *statusFx) {
			f.must(os.WriteFile(f.key(), make([]byte, 33), 0o600))
		}},
		{name: "readable host key", want: StatusInsecure, setup: func(f *statusFx) {
			f.must(os.Chmod(f.key(), 0o644))
		}},
		{name: "symlinked host key", want: StatusInsecure, setup: func(f *statusFx) {
			f.must(os.Rename(f.key(), f.key()+".real"))
			f.must(os.Symlink(f.key()+".real", f.key()))
		}},
		{name: "other host key", want: StatusCorrupt, setup: func(f *statusFx) {
			f.must(os.Remove(f.key()))
			f.must(InitKey(f.key()))
		}},
		{name: "flipped magic", want: StatusCorrupt, setup: flipAt(0)},
		{name: "flipped version", want: StatusCorrupt, setup: flipAt(4)},
		{name: "flipped name length", want: StatusCorrupt, setup: flipAt(6)},
		{name: "flipped user name", want: StatusCorrupt, setup: flipAt(8)},
		{name: "flipped nonce", want: StatusCorrupt, setup: flipAt(13)},
		{name: "flipped ciphertext", want: StatusCorrupt, setup: flipAt(40)},
		{name: "flipped tag", want: StatusCorrupt, setup: flipAt(-1)},
		{name: "truncated by one", want: StatusCorrupt, setup: rewrite(func(b []byte) []byte {
			return b[:len(b)-1]
		})},
		{name: "truncated to header", want: StatusCorrupt, setup: rewrite(func(b []byte) []byte {
			return b[:12]
		})},
		{name: "truncated to 3 bytes", want: StatusCorrupt, setup: rewrite(func(b []byte) []byte {
			return b[:3]
		})},
		{name: "empty", want: StatusCorrupt, setup: rewrite(func(b []byte) []byte {
			return nil
		})},
		{name: "appended byte", want: StatusCorrupt, setup: rewrite(func(b []byte) []byte {
			return append(b, 0)
		})},
		{name: "oversized", want: StatusCorrupt, setup: rewrite(func(b []byte) []byte {
			return append(b, make([]byte, maxFileSize)...)
		})},
		{name: "foreign", want: StatusForeign, setup: func(f *statusFx) {
			f.must(f.e.store.Save("bob", []Device{testDevice("b1")}))
			data, err := os.ReadFile(f.e.devicesPath(f.t, "bob"))
			f.must(err)
			f.must(os.WriteFile(f.path, data, 0o600))
		}},
		{name: "symlink to own file", want: StatusInsecure, setup: func(f *statusFx) {
			f.must(os.Rename(f.path, f.path+".real"))
			f.must(os.Symlink(f.path+".real", f.path))
		}},
		{name: "dangling symlink", want: StatusInsecure, setup: func(f *statusFx) {
			f.must(os.Remove(f.path))
			f.must(os.Symlink(filepath.Join(f.e.dir, "nowhere"), f.path))
		}},
		{name: "group readable", want: StatusInsecure, setup: chmod(0o640)},
		{name: "group writable", want: StatusInsecure, setup: chmod(0o620)},
		{name: "world writable", want: StatusInsecure, setup: chmod(0o602)},
		{name: "directory world writable", want: StatusInsecure, setup: func(f *statusFx) {
			f.must(os.Chmod(filepath.Dir(f.path), 0o777))
		}},
		{name: "directory group writable", want: StatusInsecure, setup: func(f *statusFx) {
			f.must(os.Chmod(filepath.Dir(f.path), 0o770))
		}},
		{name: "a directory at the path", want: StatusInsecure, setup: func(f *statusFx) {
			f.must(os.Remove(f.path))
			f.must(os.Mkdir(f.path, 0o700))
		}},
		{name: "a FIFO at the path", want: StatusInsecure, setup: func(f *statusFx) {
			f.must(os.Remove(f.path))
			f.must(syscall.Mkfifo(f.path, 0o600))
		}},
		{name: "owned by another user", want: StatusInsecure, root: true,
			setup: func(f *statusFx) { f.must(os.Chown(f.path, 65534, 65534)) }},
		{name: "directory owned by another user", want: StatusInsecure, root: true,
			setup: func(f *statusFx) { f.must(os.Chown(filepath.Dir(f.path), 65534, 65534)) }},
		{name: "host key owned by another user", want: StatusInsecure, root: true,
			setup: func(f *statusFx) { f.must(os.Chown(f.key(), 65534, 65534)) }},
		{name: "locked out", want: StatusLockedOut, fileOK: true, setup: func(f *statusFx) {
			for range f.e.cfg.OfflineMaxAttempts {
				_, err := f.e.store.Fail("alice")
				f.must(err)
			}
		}},
		{name: "lockout state unreadable", want: StatusUnreadable, fileOK: true,
			setup: func(f *statusFx) {
				state := filepath.Join(f.e.cfg.StateDir, "offline-attempts", "alice")
				f.must(os.MkdirAll(state, 0o700))
			}},
		{name: "unsafe user name", user: "../alice", want: StatusUnreadable},
		{name: "user name with slash", user: "a/b", want: StatusUnreadable},
		{name: "dash user name", user: "-", want: StatusUnreadable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root && euid != 0 {
				t.Skip("needs root to give files away")
			}
			e := newTestEnv(t, 0)
			must(t, e.store.Save("alice", []Device{testDevice("a1")}))
			path := e.devicesPath(t, "alice")
			sealed, err := os.ReadFile(path)
			must(t, err)
			if tt.setup != nil {
				tt.setup(&statusFx{t: t, e: e, path: path, sealed: sealed})
			}
			user := tt.user
			if user == "" {
				user = "alice"
			}

			r := e.store.Status(user)
			if r.Status != tt.want {
				t.Fatalf("Status = %+v, want %s; log:\n%s", r, tt.want, e.logs)
			}
			devs, st, err := e.store.Load(user)
			if tt.fileOK {
				if st != StatusReady || len(devs) != 1 || err != nil {
					t.Errorf("Load = %v, %s, %v", devs, st, err)
				}
				return
			}
			if devs != nil || err == nil || st == StatusReady {
				t.Errorf("Load = %v, %s, %v; want no devices and an error", devs, st, err)
			}
			if r.Devices != 0 || r.Age != 0 {
				t.Errorf("report of an unusable file: %+v", r)
			}
			if !strings.Contains(e.logs.String(), `"status":"`+string(st)+`"`) {
				t.Errorf("no log line with the status; log:\n%s", e.logs)
			}
			// The file, whatever state it is in, never yields an accepted code.
			ch, err := NewChallenge(mustSuite(t, DefaultSuite))
			must(t, err)
			code := answer(t, testDevice("a1"), ch)
			if ok, _ := e.store.CheckAttempt(user, devs, ch, code); ok {
				t.Error("a code was accepted from an unusable file")
			}
		})
	}
}

// rewrite replaces the device file with f of its sealed content.
func rewrite(f func([]byte) []byte) func(*statusFx) {
	return func(fx *statusFx) {
		fx.must(os.WriteFile(fx.path, f(bytes.Clone(fx.sealed)), 0o600))
	}
}

// flipAt changes one bit of the byte at i (from the end when negative).
func flipAt(i int) func(*statusFx) {
	return rewrite(func(b []byte) []byte {
		if i < 0 {
			return flip(b, len(b)+i)
		}
		return flip(b, i)
	})
}

func chmod(mode os.FileMode) func(*statusFx) {
	return func(f *statusFx) { f.must(os.Chmod(f.path, mode)) }
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustSuite(t *testing.T, s string) Suite {
	t.Helper()
	suite, err := ParseSuite(s)
	must(t, err)
	return suite
}

func TestOwners(t *testing.T) {
	tests := []struct {
		name   string
		own    owners
		uid    uint32
		trusts bool
	}{
		{"root", owners{euid: 1000}, 0, true},
		{"effective user, strict", owners{euid: 1000}, 1000, false},
		{"effective user, insecure allowed", owners{allowInsecure: true, euid: 1000}, 1000, true},
		{"root, insecure allowed", owners{allowInsecure: true, euid: 1000}, 0, true},
		{"another user, insecure allowed", owners{allowInsecure: true, euid: 1000}, 1001, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.own.trusted(tt.uid); got != tt.trusts {
				t.Errorf("trusted(%d) = %v", tt.uid, got)
			}
		})
	}
}

func TestSaveRejects(t *testing.T) {
	long := testDevice("x")
	long.ID = strings.Repeat("i", maxIDLen+1)
	many := make([]Device, maxDevices+1)
	for i := range many {
		many[i] = testDevice(strings.Repeat("d", i+1))
	}
	tests := []struct {
		name string
		user string
		devs []Device
		prep func(t *testing.T, e *testEnv)
	}{
		{"unsafe user", "../root", []Device{testDevice("a")}, nil},
		{"empty id", "alice", []Device{{Suite: DefaultSuite, Key: make([]byte, 32)}}, nil},
		{"long id", "alice", []Device{long}, nil},
		{"control in name", "alice", []Device{{ID: "a", Name: "x\ny", Suite: DefaultSuite,
			Key: make([]byte, 32)}}, nil},
		{"short key", "alice", []Device{{ID: "a", Suite: DefaultSuite,
			Key: make([]byte, 15)}}, nil},
		{"long key", "alice", []Device{{ID: "a", Suite: DefaultSuite,
			Key: make([]byte, 129)}}, nil},
		{"bad suite", "alice", []Device{{ID: "a", Suite: "OCRA-1:HOTP-MD5-6:QN12",
			Key: make([]byte, 32)}}, nil},
		{"suite with counter", "alice", []Device{{ID: "a", Suite: "OCRA-1:HOTP-SHA1-6:C-QN12",
			Key: make([]byte, 32)}}, nil},
		{"four-digit codes", "alice", []Device{{ID: "a", Suite: "OCRA-1:HOTP-SHA256-4:QN12",
			Key: make([]byte, 32)}}, nil},
		{"suite with time", "alice", []Device{{ID: "a", Suite: "OCRA-1:HOTP-SHA1-6:QN12-T1M",
			Key: make([]byte, 32)}}, nil},
		{"duplicate ids", "alice", []Device{testDevice("a"), testDevice("a")}, nil},
		{"too many", "alice", many, nil},
		{"no host key", "alice", []Device{testDevice("a")}, func(t *testing.T, e *testEnv) {
			must(t, os.Remove(e.cfg.OfflineKeyFile))
		}},
		{"insecure directory", "alice", []Device{testDevice("a")}, func(t *testing.T, e *testEnv) {
			must(t, os.MkdirAll(filepath.Dir(e.devicesPath(t, "alice")), 0o700))
			must(t, os.Chmod(filepath.Dir(e.devicesPath(t, "alice")), 0o777))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, 0)
			if tt.prep != nil {
				tt.prep(t, e)
			}
			if err := e.store.Save(tt.user, tt.devs); err == nil {
				t.Fatal("Save succeeded")
			}
			if tt.user == "alice" {
				if _, err := os.Lstat(e.devicesPath(t, "alice")); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("a file was written: %v", err)
				}
			}
		})
	}
}

func TestSaveEmptyRemoves(t *testing.T) {
	e := newTestEnv(t, 0)
	must(t, e.store.Save("alice", []Device{testDevice("a")}))
	must(t, e.store.Save("alice", nil))
	if st := e.store.Status("alice").Status; st != StatusMissing {
		t.Errorf("Status = %s, want missing", st)
	}
	must(t, e.store.Save("alice", nil)) // nothing to remove is fine
}

func TestSaveEmptyRefusesAnUntrustedDirectory(t *testing.T) {
	e := newTestEnv(t, 0)
	must(t, e.store.Save("alice", []Device{testDevice("a")}))
	dir := filepath.Dir(e.devicesPath(t, "alice"))
	must(t, os.Chmod(dir, 0o777))
	if err := e.store.Save("alice", nil); err == nil {
		t.Fatal("removed a file from a directory anyone can write")
	}
	if _, err := os.Lstat(e.devicesPath(t, "alice")); err != nil {
		t.Fatalf("the file is gone: %v", err)
	}
}

func TestSaveReplacesSymlink(t *testing.T) {
	e := newTestEnv(t, 0)
	path := e.devicesPath(t, "alice")
	must(t, os.MkdirAll(filepath.Dir(path), 0o700))
	target := filepath.Join(e.dir, "target")
	must(t, os.WriteFile(target, []byte("keep"), 0o600))
	must(t, os.Symlink(target, path))

	must(t, e.store.Save("alice", []Device{testDevice("a")}))
	if got, _ := os.ReadFile(target); string(got) != "keep" {
		t.Errorf("symlink target was written: %q", got)
	}
	if st := e.store.Status("alice").Status; st != StatusReady {
		t.Errorf("Status = %s", st)
	}
}

func TestInitKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "offline.key")
	must(t, InitKey(path))
	key, err := os.ReadFile(path)
	must(t, err)
	fi, err := os.Stat(path)
	must(t, err)
	if len(key) != HostKeySize || fi.Mode() != 0o600 {
		t.Fatalf("key of %d bytes, mode %v", len(key), fi.Mode())
	}
	if bytes.Equal(key, make([]byte, HostKeySize)) {
		t.Fatal("key is all zeros")
	}

	tests := []struct {
		name string
		path string
		prep func(t *testing.T)
	}{
		{"existing key", path, nil},
		{"dangling symlink", filepath.Join(dir, "link"), func(t *testing.T) {
			must(t, os.Symlink(filepath.Join(dir, "elsewhere"), filepath.Join(dir, "link")))
		}},
		{"relative path", "offline.key", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.prep != nil {
				tt.prep(t)
			}
			if err := InitKey(tt.path); err == nil {
				t.Fatal("InitKey succeeded")
			}
		})
	}
	again, err := os.ReadFile(path)
	must(t, err)
	if !bytes.Equal(key, again) {
		t.Error("existing key changed")
	}
	if _, err := os.Lstat(filepath.Join(dir, "elsewhere")); !errors.Is(err, os.ErrNotExist) {
		t.Error("symlink target was created")
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "sub"))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the key", len(entries))
	}
}

func TestSaveSkipsAFreshIdenticalFile(t *testing.T) {
	other := testDevice("d1")
	other.Key = bytes.Repeat([]byte{9}, 32)
	renamed := testDevice("d1")
	renamed.Name = "tablet"
	cases := []struct {
		name        string
		after       time.Duration
		devs        []Device
		wantRewrite bool
	}{
		{name: "same devices a moment later", after: 10 * time.Second,
			devs: []Device{testDevice("d1")}},
		{name: "same devices a minute later", after: time.Minute,
			devs: []Device{testDevice("d1")}, wantRewrite: true},
		{name: "another key", after: time.Second, devs: []Device{other}, wantRewrite: true},
		{name: "another name", after: time.Second, devs: []Device{renamed},
			wantRewrite: true},
		{name: "one more device", after: time.Second,
			devs: []Device{testDevice("d1"), testDevice("d2")}, wantRewrite: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, 0)
			must(t, e.store.Save("alice", []Device{testDevice("d1")}))
			path := e.devicesPath(t, "alice")
			before, err := os.ReadFile(path)
			must(t, err)

			e.clock.Advance(tc.after)
			must(t, e.store.Save("alice", tc.devs))
			after, err := os.ReadFile(path)
			must(t, err)
			// Every sealing draws a fresh nonce, so a rewrite always changes the bytes.
			if rewritten := !bytes.Equal(before, after); rewritten != tc.wantRewrite {
				t.Fatalf("rewritten = %t, want %t", rewritten, tc.wantRewrite)
			}
			devs, st, err := e.store.Load("alice")
			if st != StatusReady || len(devs) != len(tc.devs) || devs[0].Name != tc.devs[0].Name ||
				!bytes.Equal(devs[0].Key, tc.devs[0].Key) {
				t.Fatalf("Load = %v %s %v", devs, st, err)
			}
		})
	}
}

func TestSaveRewritesACorruptFile(t *testing.T) {
	e := newTestEnv(t, 0)
	must(t, e.store.Save("alice", []Device{testDevice("d1")}))
	path := e.devicesPath(t, "alice")
	data, err := os.ReadFile(path)
	must(t, err)
	must(t, os.WriteFile(path, flip(data, len(data)-1), 0o600))

	must(t, e.store.Save("alice", []Device{testDevice("d1")}))
	if st := e.store.Status("alice").Status; st != StatusReady {
		t.Fatalf("Status = %s, want ready", st)
	}
}
