package offline

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestLockoutLifecycle(t *testing.T) {
	e := newTestEnv(t, 3)
	dev := testDevice("a1")
	must(t, e.store.Save("alice", []Device{dev}))

	for i := 1; i <= 2; i++ {
		locked, err := e.store.Fail("alice")
		if err != nil || locked {
			t.Fatalf("failure %d: locked=%v err=%v", i, locked, err)
		}
	}
	locked, err := e.store.Fail("alice")
	if err != nil || !locked {
		t.Fatalf("third failure: locked=%v err=%v", locked, err)
	}
	isLocked, until, err := e.store.Locked("alice")
	if err != nil || !isLocked || !until.Equal(e.clock.Now().Add(15*time.Minute)) {
		t.Fatalf("Locked = %v, %v, %v", isLocked, until, err)
	}
	if r := e.store.Status("alice"); r.Status != StatusLockedOut || !r.LockedUntil.Equal(until) {
		t.Fatalf("Status = %+v", r)
	}

	// Locked out: even the right code is not checked.
	ch := "123456789012"
	ok, err := e.store.CheckAttempt("alice", []Device{dev}, ch, answer(t, dev, ch))
	if ok || !errors.Is(err, ErrLockedOut) {
		t.Fatalf("CheckAttempt while locked = %v, %v", ok, err)
	}

	// Other users are not affected.
	if l, _, _ := e.store.Locked("bob"); l {
		t.Fatal("bob is locked")
	}

	e.clock.Advance(15*time.Minute - time.Second)
	if l, _, _ := e.store.Locked("alice"); !l {
		t.Fatal("lockout ended early")
	}
	e.clock.Advance(time.Second)
	if l, _, _ := e.store.Locked("alice"); l {
		t.Fatal("lockout did not end")
	}
	if n, _ := e.store.Failures("alice"); n != 0 {
		t.Errorf("failures after the lockout = %d, want 0", n)
	}

	// A wrong code counts; a right one clears the count.
	ch = "210987654321"
	if ok, err := e.store.CheckAttempt("alice", []Device{dev}, ch, "000000"); ok || err != nil {
		t.Fatalf("wrong code = %v, %v", ok, err)
	}
	if n, _ := e.store.Failures("alice"); n != 1 {
		t.Fatalf("failures = %d, want 1", n)
	}
	ch = "555555555555"
	ok, err = e.store.CheckAttempt("alice", []Device{dev}, ch, answer(t, dev, ch))
	if !ok || err != nil {
		t.Fatalf("right code = %v, %v", ok, err)
	}
	if n, _ := e.store.Failures("alice"); n != 0 {
		t.Errorf("failures after success = %d, want 0", n)
	}
	logs := e.logs.String()
	if strings.Contains(logs, answer(t, dev, ch)) || strings.Contains(logs, ch) {
		t.Error("a code or challenge was logged")
	}
}

func TestCheckAttemptChallengeSingleUse(t *testing.T) {
	e := newTestEnv(t, 0)
	dev := testDevice("a1")
	ch, err := NewChallenge(mustSuite(t, DefaultSuite))
	must(t, err)
	code := answer(t, dev, ch)

	tests := []struct {
		name    string
		user    string
		ch      string
		code    string
		wantOK  bool
		wantErr error
	}{
		{"first use", "alice", ch, code, true, nil},
		{"same challenge again", "alice", ch, code, false, ErrChallengeReused},
		{"same challenge grouped", "alice", FormatChallenge(ch), code, false, ErrChallengeReused},
		{"same challenge, other user", "bob", ch, code, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := e.store.CheckAttempt(tt.user, []Device{dev}, tt.ch, tt.code)
			if ok != tt.wantOK || !errors.Is(err, tt.wantErr) {
				t.Fatalf("CheckAttempt = %v, %v; want %v, %v", ok, err, tt.wantOK, tt.wantErr)
			}
		})
	}
	if n, _ := e.store.Failures("alice"); n != 0 {
		t.Errorf("a reused challenge counted as a failure: %d", n)
	}
}

func TestLockoutStateDamage(t *testing.T) {
	tests := []struct {
		name       string
		content    string
		wantLocked bool
	}{
		{"empty", "", false},
		{"garbage", "not json", true},
		{"negative count", `{"failures":-5}`, true},
		{"far future lockout", `{"failures":5,"locked_until":"2999-01-01T00:00:00Z"}`, true},
		{"expired lockout", `{"failures":5,"locked_until":"2000-01-01T00:00:00Z"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, 0)
			dir := filepath.Join(e.cfg.StateDir, "offline-attempts")
			must(t, os.MkdirAll(dir, 0o700))
			must(t, os.WriteFile(filepath.Join(dir, "alice"), []byte(tt.content), 0o600))

			locked, until, err := e.store.Locked("alice")
			if err != nil || locked != tt.wantLocked {
				t.Fatalf("Locked = %v, %v, %v; want %v", locked, until, err, tt.wantLocked)
			}
			// No lockout lasts longer than offline_lockout from now.
			if locked && until.After(e.clock.Now().Add(e.cfg.OfflineLockout)) {
				t.Errorf("locked until %v, beyond one lockout", until)
			}
			if locked {
				e.clock.Advance(e.cfg.OfflineLockout)
				if l, _, _ := e.store.Locked("alice"); l {
					t.Error("a damaged state locked for more than one lockout")
				}
			}
		})
	}
}

func TestLockoutStateInsecure(t *testing.T) {
	tests := []struct {
		name string
		prep func(t *testing.T, path string)
	}{
		{"symlink", func(t *testing.T, p string) {
			must(t, os.Symlink(p+".real", p))
		}},
		{"world writable", func(t *testing.T, p string) {
			must(t, os.WriteFile(p, nil, 0o600))
			must(t, os.Chmod(p, 0o606))
		}},
		{"directory world writable", func(t *testing.T, p string) {
			must(t, os.Chmod(filepath.Dir(p), 0o777))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, 0)
			dir := filepath.Join(e.cfg.StateDir, "offline-attempts")
			must(t, os.MkdirAll(dir, 0o700))
			path := filepath.Join(dir, "alice")
			tt.prep(t, path)

			dev := testDevice("a1")
			ch := "123412341234"
			ok, err := e.store.CheckAttempt("alice", []Device{dev}, ch, answer(t, dev, ch))
			if ok || err == nil {
				t.Errorf("CheckAttempt = %v, %v; want a refusal", ok, err)
			}
			if _, err := e.store.Fail("alice"); err == nil {
				t.Error("Fail succeeded on an insecure state")
			}
			if _, err := os.Stat(path + ".real"); !errors.Is(err, os.ErrNotExist) {
				t.Error("the symlink was followed")
			}
		})
	}
}

func TestConcurrentFailuresGoroutines(t *testing.T) {
	e := newTestEnv(t, 10)
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 10 {
		wg.Go(func() {
			// Each goroutine has its own Store, as separate logins would.
			if _, err := e.newStore().Fail("alice"); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	assertLockedWith(t, e, 10)
}

func TestConcurrentWrongCodesCheckedAtMostMax(t *testing.T) {
	e := newTestEnv(t, 0) // the default of 5
	dev := testDevice("a1")
	var mu sync.Mutex
	checked, refused := 0, 0
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			ch := fmt.Sprintf("%012d", i)
			ok, err := e.store.CheckAttempt("alice", []Device{dev}, ch, "000000")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case ok:
				t.Error("a wrong code was accepted")
			case err == nil:
				checked++
			case errors.Is(err, ErrLockedOut):
				refused++
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if checked != 5 || refused != 15 {
		t.Errorf("checked %d, refused %d; want 5 and 15", checked, refused)
	}
	assertLockedWith(t, e, 5)
}

func assertLockedWith(t *testing.T, e *testEnv, failures int) {
	t.Helper()
	n, err := e.store.Failures("alice")
	must(t, err)
	locked, _, err := e.store.Locked("alice")
	must(t, err)
	if n != failures || !locked {
		t.Errorf("failures %d, locked %v; want %d and locked", n, locked, failures)
	}
}

// The child side of the cross-process tests: it runs only when the parent sets
// lockoutChildEnv, waits for the parent's start file, and prints one line per attempt.
const lockoutChildEnv = "PINGID_OFFLINE_LOCKOUT_CHILD"

func TestLockoutChild(t *testing.T) {
	spec := os.Getenv(lockoutChildEnv)
	if spec == "" {
		t.Skip("runs only as a child of the cross-process tests")
	}
	// spec: dir|op|goroutines|maxAttempts|firstChallenge
	f := strings.Split(spec, "|")
	dir, op := f[0], f[1]
	n, _ := strconv.Atoi(f[2])
	max, _ := strconv.Atoi(f[3])
	first, _ := strconv.Atoi(f[4])

	start := filepath.Join(dir, "start")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(start); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no start signal")
		}
		time.Sleep(2 * time.Millisecond)
	}

	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			s := NewStore(testConfig(dir, max), Options{
				AllowInsecure: os.Geteuid() != 0, Log: zerolog.Nop()})
			var line string
			switch op {
			case "fail":
				_, err := s.Fail("alice")
				line = fmt.Sprintf("fail err=%v", err)
			case "check":
				ch := fmt.Sprintf("%012d", first+i)
				ok, err := s.CheckAttempt("alice", []Device{testDevice("a1")}, ch, "000000")
				switch {
				case ok:
					line = "accepted"
				case err == nil:
					line = "checked"
				case errors.Is(err, ErrLockedOut):
					line = "refused"
				default:
					line = "error " + err.Error()
				}
			}
			mu.Lock()
			fmt.Println("RESULT", line)
			mu.Unlock()
		})
	}
	wg.Wait()
}

// runChildren starts procs copies of this test binary running TestLockoutChild against the
// same tree, releases them together, and returns their RESULT lines.
func runChildren(t *testing.T, e *testEnv, op string, procs, perProc int) []string {
	t.Helper()
	cmds := make([]*exec.Cmd, procs)
	outs := make([]*bytes.Buffer, procs)
	for p := range procs {
		spec := fmt.Sprintf("%s|%s|%d|%d|%d", e.dir, op, perProc, e.cfg.OfflineMaxAttempts,
			p*perProc)
		cmd := exec.Command(os.Args[0], "-test.run=^TestLockoutChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), lockoutChildEnv+"="+spec)
		outs[p] = &bytes.Buffer{}
		cmd.Stdout, cmd.Stderr = outs[p], outs[p]
		must(t, cmd.Start())
		cmds[p] = cmd
	}
	must(t, os.WriteFile(filepath.Join(e.dir, "start"), nil, 0o600))

	var lines []string
	for p, cmd := range cmds {
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("child %d: %v\n%s", p, err, outs[p])
			}
		case <-time.After(2 * time.Minute):
			cmd.Process.Kill()
			t.Fatalf("child %d did not finish", p)
		}
		sc := bufio.NewScanner(outs[p])
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "RESULT "); ok {
				lines = append(lines, rest)
			}
		}
	}
	return lines
}

func TestConcurrentFailuresProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	e := newTestEnv(t, 10)
	lines := runChildren(t, e, "fail", 5, 2) // 5 processes of 2 goroutines
	if len(lines) != 10 {
		t.Fatalf("got %d results: %v", len(lines), lines)
	}
	for _, l := range lines {
		if l != "fail err=<nil>" {
			t.Errorf("child: %s", l)
		}
	}
	assertLockedWith(t, e, 10)
}

func TestConcurrentWrongCodesProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	e := newTestEnv(t, 0) // the default of 5
	lines := runChildren(t, e, "check", 4, 5)
	count := map[string]int{}
	for _, l := range lines {
		count[l]++
	}
	if count["checked"] != 5 || count["refused"] != 15 || len(lines) != 20 {
		t.Errorf("results %v; want 5 checked and 15 refused", count)
	}
	assertLockedWith(t, e, 5)
}
