package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pingid-ssh/pingid-ssh/online/pingidtest"
	"github.com/pingid-ssh/pingid-ssh/session"
)

// These tests run the real `pingid-ssh serve` process, built from source, against the
// simulator, and log in through its socket as the shim would. They need no sshd and no
// root (except the one about other users), so they run under plain `go test`.

// loginStatus logs in as root through the daemon, cancelling at any prompt.
func loginStatus(t *testing.T, p *Product) session.Status {
	t.Helper()
	l, err := p.Login("root", nil)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	return l.Status
}

// TestDaemonReload renames configs and override files into place under a running daemon
// while the service is down, and checks which one decides the next login.
func TestDaemonReload(t *testing.T) {
	p := NewProduct(t, t.TempDir(), BuildBinary(t), map[string]string{"fail_mode": "permissive"})
	if err := p.Sim.SetFault("", pingidtest.FaultRefuse); err != nil {
		t.Fatal(err)
	}
	d := p.StartDaemon(t)
	if got := loginStatus(t, p); got != session.StatusBypass {
		t.Fatalf("permissive, service down: %s, want bypass", got)
	}

	// A new config renamed into place decides the next login within a second.
	renamed := time.Now()
	p.WriteConfig(t, map[string]string{"fail_mode": "restrictive"})
	var took time.Duration
	ok := waitUntil(10*time.Second, func() bool {
		got := loginStatus(t, p)
		took = time.Since(renamed)
		if got != session.StatusBypass && got != session.StatusDeny {
			t.Fatalf("login during the switch: %s, want bypass or deny", got)
		}
		return got == session.StatusDeny
	})
	if !ok {
		t.Fatal("restrictive config renamed into place: logins still bypass after 10s")
	}
	t.Logf("rename to changed decision: %v", took)
	if took > time.Second {
		t.Errorf("the new config decided a login only after %v, want within 1s", took)
	}

	// Each step changes files and waits for the daemon's outcome: a reload that failed
	// (the watcher logs each distinct failure once) or a swap to a new generation.
	swaps := func() int { return d.Count(`"event":"configuration_active"`, `"revision"`) }
	failures := func() int { return d.Count("reload failed; keeping the last good set") }
	steps := []struct {
		name   string
		change func() error
		// fails says the change must be rejected; otherwise it must be swapped in.
		fails bool
		want  session.Status
	}{
		{name: "broken config keeps restrictive", fails: true, want: session.StatusDeny,
			change: func() error {
				return p.ReplaceFile(p.ConfigPath, p.ConfigText(map[string]string{
					"fail_mode": "sometimes"}))
			}},
		{name: "good config after a broken one", want: session.StatusBypass,
			change: func() error {
				return p.ReplaceFile(p.ConfigPath, p.ConfigText(map[string]string{
					"fail_mode": "permissive"}))
			}},
		{name: "override that does not compile keeps permissive", fails: true,
			want: session.StatusBypass,
			change: func() error {
				return p.ReplaceFile(filepath.Join(p.PolicyDir, "broken.rego"),
					"package pingid.overrides\n\ndeny contains \"everyone\" if {\n")
			}},
		{name: "broken override removed", want: session.StatusBypass,
			change: func() error { return os.Remove(filepath.Join(p.PolicyDir, "broken.rego")) }},
		{name: "good override applies", want: session.StatusDeny,
			change: func() error {
				return p.ReplaceFile(filepath.Join(p.PolicyDir, "freeze.rego"),
					"package pingid.overrides\n\ndeny contains \"freeze\" if {\n"+
						"\tinput.user.name == \"root\"\n}\n")
			}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			failed, swapped := failures(), swaps()
			if err := st.change(); err != nil {
				t.Fatal(err)
			}
			if st.fails {
				d.WaitCount(t, failed+1, "reload failed; keeping the last good set")
			} else {
				d.WaitCount(t, swapped+1, `"event":"configuration_active"`, `"revision"`)
			}
			if got := loginStatus(t, p); got != st.want {
				t.Errorf("login: %s, want %s", got, st.want)
			}
			if d.Exited() {
				t.Fatal("daemon exited")
			}
		})
	}
}

// TestDaemonReloadUnderLoad runs 40 offline logins through the daemon while another
// goroutine renames a config into place every 50 ms; no login may fail.
func TestDaemonReloadUnderLoad(t *testing.T) {
	const (
		logins  = 40
		workers = 4
		// pace spreads the logins over several of the watcher's longest reload delays,
		// so that reloads land among them.
		pace = 150 * time.Millisecond
	)
	p := NewProduct(t, t.TempDir(), BuildBinary(t),
		map[string]string{"fail_mode": "passive_offline_authentication"})
	d := p.StartDaemon(t)

	// One approved push stores the device file that offline logins need.
	if l, err := p.Login("root", nil); err != nil || l.Status != session.StatusSuccess {
		t.Fatalf("online login to store the device file: %+v, %v", l, err)
	}
	if err := p.Sim.SetFault("", pingidtest.FaultRefuse); err != nil {
		t.Fatal(err)
	}

	// Both configs send a login offline while the service is down; they differ in their
	// fail mode and timeouts, so every reload builds a different runtime.
	configs := []string{
		p.ConfigText(map[string]string{"fail_mode": "passive_offline_authentication"}),
		p.ConfigText(map[string]string{"fail_mode": "enforce_offline_authentication",
			"connect_timeout": "2s", "probe_interval": "2s"}),
	}
	stop := make(chan struct{})
	renamerDone := make(chan int)
	go func() {
		n := 0
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		// Bounded in count as well: 40 logins at their pace take a few seconds.
		for n < 2000 {
			select {
			case <-stop:
				renamerDone <- n
				return
			case <-tick.C:
			}
			if err := p.ReplaceFile(p.ConfigPath, configs[n%2]); err != nil {
				t.Errorf("rename config: %v", err)
			}
			n++
		}
		renamerDone <- n
	}()

	reloadsBefore := d.Count(`"event":"configuration_active"`, `"revision"`)
	start := time.Now()
	jobs := make(chan int)
	var mu sync.Mutex
	results := map[session.Status]int{}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				l, err := p.Login("root", p.OfflineAnswer(false))
				mu.Lock()
				results[l.Status]++
				mu.Unlock()
				if err != nil || l.Status != session.StatusSuccess || len(l.Prompts) != 1 {
					t.Errorf("login %d: %s, prompts %q, infos %q, err %v", i, l.Status,
						l.Prompts, l.Infos, err)
				}
			}
		}()
	}
	for i := 0; i < logins; i++ {
		time.Sleep(time.Until(start.Add(time.Duration(i) * pace)))
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	elapsed := time.Since(start)
	close(stop)
	renames := <-renamerDone
	reloads := d.Count(`"event":"configuration_active"`, `"revision"`) - reloadsBefore

	t.Logf("%d logins in %v: %v; %d renames, %d reloads", logins, elapsed, results, renames,
		reloads)
	if results[session.StatusSuccess] != logins {
		t.Errorf("successful logins: %d of %d", results[session.StatusSuccess], logins)
	}
	if reloads < 2 {
		t.Errorf("only %d reloads happened during the logins; the test did not exercise "+
			"reloading", reloads)
	}
	if n := d.Count("reload failed"); n != 0 {
		t.Errorf("%d reloads failed", n)
	}
}

// TestDaemonRefusesOtherUsers connects to the real daemon from a process running as
// nobody (uid 65534): through the socket's file mode it cannot connect, and when the test
// opens the socket's mode the daemon itself refuses the peer. Neither starts a session.
func TestDaemonRefusesOtherUsers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the daemon must run as root and the client as another uid")
	}
	const nobody = 65534
	dir := t.TempDir()
	// Let nobody reach the public config and, later, the socket.
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p := NewProduct(t, dir, BuildBinary(t), nil)
	d := p.StartDaemon(t)

	// The client reads a root-owned config that everyone may read; it only names the socket.
	pub := filepath.Join(dir, "public.conf")
	if err := os.WriteFile(pub, []byte("socket_path = "+p.SocketPath+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	asNobody := func(t *testing.T) (int, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, p.Bin, "login", "--config", pub, "--user", "root")
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		cmd.Dir = "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Credential: &syscall.Credential{Uid: nobody, Gid: nobody},
			Pdeathsig:  syscall.SIGKILL,
		}
		var out bytes.Buffer
		cmd.Stdout = &out
		cmd.Stderr = &out
		err := cmd.Run()
		code := cmd.ProcessState.ExitCode()
		if err != nil && code <= 0 {
			t.Fatalf("run as nobody: %v\n%s", err, out.String())
		}
		return code, out.String()
	}

	tests := []struct {
		name string
		// open makes the socket reachable for everyone, so that only the daemon's peer
		// check stands in the way.
		open bool
		// want is a part of the client's output; log a part of the daemon's log.
		want, log string
	}{
		{name: "socket mode refuses", want: "permission denied"},
		// The daemon closes the connection: the client fails to write or to read.
		{name: "daemon refuses the peer", open: true, want: "pingid-ssh login: ",
			log: `"uid":65534`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.open {
				if err := os.Chmod(filepath.Dir(p.SocketPath), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(p.SocketPath, 0o666); err != nil {
					t.Fatal(err)
				}
			}
			refusals := d.Count("connection refused", "uid not allowed")
			code, out := asNobody(t)
			if code != 1 || !strings.Contains(out, "result: deny") ||
				!strings.Contains(out, tc.want) {
				t.Errorf("client as nobody: exit %d, output %q; want exit 1, deny, %q", code,
					out, tc.want)
			}
			if tc.log != "" {
				d.WaitCount(t, refusals+1, "connection refused", "uid not allowed", tc.log)
			}
			if n := d.Count(`"event":"login"`); n != 0 {
				t.Errorf("the daemon ran %d sessions for nobody", n)
			}
		})
	}
	if n := p.Sim.Calls("startauthentication"); n != 0 {
		t.Errorf("the service saw %d authentications", n)
	}

	// Root is still served.
	if got := loginStatus(t, p); got != session.StatusSuccess {
		t.Errorf("root login after the refusals: %s, want success", got)
	}
}
