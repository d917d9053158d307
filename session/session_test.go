package session

import (
	"context"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pingid-ssh/pingid-ssh/config"
	"github.com/pingid-ssh/pingid-ssh/engine"
	"github.com/pingid-ssh/pingid-ssh/internal/testlog"
	"github.com/pingid-ssh/pingid-ssh/offline"
	"github.com/pingid-ssh/pingid-ssh/online"
	"github.com/pingid-ssh/pingid-ssh/online/pingidtest"
)

const deviceKeyHex = "3132333435363738393031323334353637383930313233343536373839303132"

func simUsers() map[string]pingidtest.User {
	dev := []pingidtest.Device{{ID: "d1", Name: "phone", Suite: offline.DefaultSuite,
		KeyHex: deviceKeyHex}}
	return map[string]pingidtest.User{
		"alice": {Behavior: "approve", Devices: dev},
		"bob":   {Behavior: "reject", Devices: dev},
		"carol": {Behavior: "otp:424242", Devices: dev},
		"dave":  {Behavior: "timeout", Devices: dev},
		"frank": {Behavior: "approve"}, // every device revoked
		"gina": {Behavior: "approve", Devices: append(dev, pingidtest.Device{ID: "d2",
			Name: "old token", Suite: "OCRA-1:HOTP-SHA1-4:QN08", KeyHex: deviceKeyHex})},
	}
}

type fixture struct {
	rt   *Runtime
	sim  *pingidtest.Server
	logs *testlog.Buffer
}

func newFixture(t *testing.T, mode config.FailMode) *fixture {
	t.Helper()
	dir := t.TempDir()
	logs := &testlog.Buffer{}
	log := zerolog.New(logs)
	sim, err := pingidtest.Start(pingidtest.Options{Users: simUsers(), Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)

	cfg := config.Default()
	cfg.FailMode = mode
	cfg.OfflineDevicesPath = filepath.Join(dir, "devices", "${username}", ".localFallbackDevices")
	cfg.StateDir = filepath.Join(dir, "state")
	cfg.OfflineKeyFile = filepath.Join(dir, "offline.key")
	cfg.CAFile = filepath.Join(dir, "ca.pem")
	cfg.ConnectTimeout = 2 * time.Second
	cfg.AuthTimeout = 20 * time.Second
	cfg.MaxPrompts = 2
	if err := os.WriteFile(cfg.CAFile, sim.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := offline.InitKey(cfg.OfflineKeyFile); err != nil {
		t.Fatal(err)
	}
	client, err := online.New(&cfg, sim.Properties(), log,
		online.WithLoadOptions(config.LoadOptions{AllowInsecure: true}),
		online.WithPollInterval(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	set, err := engine.Compile(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{
		rt: &Runtime{
			Config: &cfg,
			Engine: engine.New(set, 0),
			Client: client,
			Store:  offline.NewStore(&cfg, offline.Options{AllowInsecure: true, Log: log}),
			Log:    log,
			LookupUser: func(name string) (engine.User, error) {
				uid := int64(1000)
				if name == "MALLORY" { // a directory that answers with another account
					name = "alice"
				}
				return engine.User{Name: strings.ToLower(name), Exists: true, UID: &uid,
					Groups: []string{"users"}}, nil
			},
		},
		sim:  sim,
		logs: logs,
	}
}

// seedDevices gives user a ready device file, as an earlier online login would.
func (f *fixture) seedDevices(t *testing.T, user string) {
	t.Helper()
	key, _ := hex.DecodeString(deviceKeyHex)
	err := f.rt.Store.Save(user, []offline.Device{{ID: "d1", Name: "phone",
		Suite: offline.DefaultSuite, Key: key}})
	if err != nil {
		t.Fatal(err)
	}
}

// transcript is what the shim side saw.
type transcript struct {
	status  Status
	prompts []string
	infos   []string
	errors  []string
	key     string // the offline key shown, without spaces
}

// answerer decides the shim's reply to a prompt: an answer, or cancel.
type answerer func(tr *transcript, prompt string) (text string, cancel bool)

// drive plays the shim: it sends start, answers prompts, and returns what it saw.
func (f *fixture) drive(t *testing.T, start string, answer answerer) *transcript {
	t.Helper()
	shim, daemon := net.Pipe()
	done := make(chan Status, 1)
	go func() {
		defer daemon.Close()
		done <- f.rt.Run(context.Background(), daemon, daemon)
	}()
	defer shim.Close()

	// Written aside: the session may stop reading early (a line too long), and a pipe
	// has no buffer to absorb the rest.
	go func() { _, _ = shim.Write([]byte(start + "\n")) }()
	tr := &transcript{}
	r, w := NewReader(shim), NewWriter(shim)
	for {
		m, err := r.Read()
		if err != nil {
			t.Fatalf("read: %v (transcript %+v)", err, tr)
		}
		switch m.Type {
		case TypeInfo:
			tr.infos = append(tr.infos, m.Text)
			if _, k, ok := strings.Cut(m.Text, "PingID app: "); ok {
				tr.key = strings.ReplaceAll(k, " ", "")
			}
		case TypeError:
			tr.errors = append(tr.errors, m.Text)
		case TypePrompt:
			tr.prompts = append(tr.prompts, m.Text)
			text, cancel := answer(tr, m.Text)
			reply := &Message{Type: TypeAnswer, Text: text}
			if cancel {
				reply = &Message{Type: TypeCancel}
			}
			if err := w.Write(reply); err != nil {
				t.Fatalf("answer: %v", err)
			}
		case TypeResult:
			tr.status = m.Status
			if got := <-done; got != m.Status {
				t.Fatalf("Run returned %s but sent %s", got, m.Status)
			}
			return tr
		default:
			t.Fatalf("unexpected message %+v", m)
		}
	}
}

func start(user string) string {
	return `{"type":"start","user":"` + user + `","rhost":"203.0.113.9","service":"sshd",` +
		`"tty":"ssh"}`
}

func noAnswer(t *testing.T) answerer {
	return func(tr *transcript, prompt string) (string, bool) {
		t.Errorf("unexpected prompt %q", prompt)
		return "", true
	}
}

// offlineCode answers the offline prompt with the device's code for the shown key.
func offlineCode(t *testing.T, wrong bool) answerer {
	return func(tr *transcript, prompt string) (string, bool) {
		suite, err := offline.ParseSuite(offline.DefaultSuite)
		if err != nil {
			t.Fatal(err)
		}
		key, _ := hex.DecodeString(deviceKeyHex)
		code, err := suite.Compute(key, offline.Input{Question: tr.key})
		if err != nil {
			t.Errorf("compute for key %q: %v", tr.key, err)
			return "", true
		}
		if wrong {
			code = code[:5] + string('0'+(code[5]-'0'+1)%10)
		}
		return code, false
	}
}

func TestOnlineFlows(t *testing.T) {
	tests := []struct {
		name   string
		user   string
		answer func(t *testing.T) answerer
		want   Status
		saved  bool
	}{
		{"push approved", "alice", noAnswer, StatusSuccess, true},
		{"push rejected", "bob", noAnswer, StatusDeny, false},
		{"otp right", "carol", func(*testing.T) answerer {
			return func(*transcript, string) (string, bool) { return "424242", false }
		}, StatusSuccess, true},
		{"otp wrong", "carol", func(*testing.T) answerer {
			return func(*transcript, string) (string, bool) { return "000000", false }
		}, StatusDeny, false},
		{"otp cancelled", "carol", func(*testing.T) answerer {
			return func(*transcript, string) (string, bool) { return "", true }
		}, StatusDeny, false},
		{"not registered", "erin", noAnswer, StatusDeny, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, config.PassiveOffline)
			tr := f.drive(t, start(tc.user), tc.answer(t))
			if tr.status != tc.want {
				t.Fatalf("status %s, want %s (transcript %+v)", tr.status, tc.want, tr)
			}
			if got := f.rt.Store.Status(tc.user).Status == offline.StatusReady; got != tc.saved {
				t.Fatalf("device file ready = %v, want %v", got, tc.saved)
			}
			if strings.Contains(f.logs.String(), "424242") {
				t.Fatal("a code reached the log")
			}
			if n := strings.Count(f.logs.String(), `"event":"login"`); n != 1 {
				t.Fatalf("%d login events, want 1", n)
			}
		})
	}
}

func TestServiceDown(t *testing.T) {
	tests := []struct {
		name   string
		mode   config.FailMode
		seed   bool
		answer func(t *testing.T) answerer
		want   Status
	}{
		{"passive offline right code", config.PassiveOffline, true,
			func(t *testing.T) answerer { return offlineCode(t, false) }, StatusSuccess},
		{"passive offline wrong code", config.PassiveOffline, true,
			func(t *testing.T) answerer { return offlineCode(t, true) }, StatusDeny},
		{"passive without device file", config.PassiveOffline, false, noAnswer, StatusDeny},
		{"restrictive", config.Restrictive, true, noAnswer, StatusDeny},
		{"permissive", config.Permissive, false, noAnswer, StatusBypass},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.mode)
			if tc.seed {
				f.seedDevices(t, "alice")
			}
			if err := f.sim.SetFault("", pingidtest.FaultRefuse); err != nil {
				t.Fatal(err)
			}
			tr := f.drive(t, start("alice"), tc.answer(t))
			if tr.status != tc.want {
				t.Fatalf("status %s, want %s (transcript %+v)", tr.status, tc.want, tr)
			}
			if !strings.Contains(f.logs.String(), `"class":"connect_refused"`) {
				t.Fatalf("log lacks the failure class: %s", f.logs.String())
			}
		})
	}
}

func TestOfflineLockoutEndsInMaxTries(t *testing.T) {
	f := newFixture(t, config.EnforceOffline)
	f.rt.Config.OfflineMaxAttempts = 2
	f.rt.Store = offline.NewStore(f.rt.Config, offline.Options{AllowInsecure: true})
	f.seedDevices(t, "alice")

	want := []Status{StatusDeny, StatusMaxTries}
	for i, w := range want {
		tr := f.drive(t, start("alice"), offlineCode(t, true))
		if tr.status != w {
			t.Fatalf("attempt %d: status %s, want %s", i+1, tr.status, w)
		}
	}

	// Locked out, the device file reports locked_out and the policy denies before any
	// prompt: not even the right code is asked for.
	tr := f.drive(t, start("alice"), noAnswer(t))
	if tr.status != StatusDeny || len(tr.prompts) != 0 {
		t.Fatalf("while locked: status %s, prompts %q", tr.status, tr.prompts)
	}
}

func TestChallengePhaseAfterTheFlowBreaks(t *testing.T) {
	tests := []struct {
		name string
		mode config.FailMode
		want Status
	}{
		{"passive falls back to offline", config.PassiveOffline, StatusSuccess},
		{"permissive never bypasses once started", config.Permissive, StatusDeny},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.mode)
			f.seedDevices(t, "carol")
			offlineAnswer := offlineCode(t, false)
			answer := func(tr *transcript, prompt string) (string, bool) {
				if tr.key != "" {
					return offlineAnswer(tr, prompt)
				}
				// The service breaks while the user types the passcode.
				if err := f.sim.SetFault("", pingidtest.Fault5xx); err != nil {
					t.Error(err)
				}
				return "424242", false
			}
			tr := f.drive(t, start("carol"), answer)
			if tr.status != tc.want {
				t.Fatalf("status %s, want %s (transcript %+v)", tr.status, tc.want, tr)
			}
			if !strings.Contains(f.logs.String(), `"second_action"`) {
				t.Fatalf("no second decision logged: %s", f.logs.String())
			}
		})
	}
}

func TestBadStartIsDenied(t *testing.T) {
	tests := []struct {
		name, start string
	}{
		{"not json", `hello`},
		{"wrong type", `{"type":"answer","text":"x"}`},
		{"unknown field", `{"type":"start","user":"alice","admin":true}`},
		{"path in user", `{"type":"start","user":"../etc/alice"}`},
		{"empty user", `{"type":"start","user":""}`},
		{"control in user", `{"type":"start","user":"al\u0007ice"}`},
		{"control in rhost", `{"type":"start","user":"alice","rhost":"a\nb"}`},
		{"long tty", `{"type":"start","user":"alice","tty":"` + strings.Repeat("t", 300) + `"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, config.Permissive)
			if err := f.sim.SetFault("", pingidtest.FaultRefuse); err != nil {
				t.Fatal(err)
			}
			tr := f.drive(t, tc.start, noAnswer(t))
			if tr.status != StatusDeny {
				t.Fatalf("status %s, want deny", tr.status)
			}
		})
	}
}

func TestOversizedLineIsDenied(t *testing.T) {
	f := newFixture(t, config.Permissive)
	long := `{"type":"start","user":"alice","rhost":"` + strings.Repeat("a", MaxLine) + `"}`
	tr := f.drive(t, long, noAnswer(t))
	if tr.status != StatusDeny {
		t.Fatalf("status %s, want deny", tr.status)
	}
}

func TestAuthTimeoutBoundsTheLogin(t *testing.T) {
	f := newFixture(t, config.Restrictive)
	f.rt.Config.AuthTimeout = 1 * time.Second
	begin := time.Now()
	tr := f.drive(t, start("dave"), noAnswer(t)) // push never answered
	if tr.status != StatusDeny {
		t.Fatalf("status %s, want deny", tr.status)
	}
	if len(tr.errors) == 0 || !strings.Contains(tr.errors[len(tr.errors)-1], "Timed out") {
		t.Fatalf("the user was not told why: %q", tr.errors)
	}
	if took := time.Since(begin); took > 15*time.Second {
		t.Fatalf("login took %s past a 1s auth_timeout", took)
	}
}

func TestNotRegisteredAllowIsABypass(t *testing.T) {
	f := newFixture(t, config.Restrictive)
	f.rt.Config.PolicyUserNotRegistered = config.NotRegisteredAllow
	tr := f.drive(t, start("erin"), noAnswer(t))
	if tr.status != StatusBypass {
		t.Fatalf("status %s, want bypass", tr.status)
	}
	if !strings.Contains(f.logs.String(), `"fail_open":true`) {
		t.Fatal("bypass not logged as fail-open")
	}
}

func TestLookupUser(t *testing.T) {
	u, err := LookupUser("root")
	if err != nil {
		t.Fatal(err)
	}
	if !u.Exists || u.UID == nil || *u.UID != 0 || len(u.Groups) == 0 {
		t.Fatalf("root: %+v", u)
	}
	u, err = LookupUser("no-such-user-pingid-test")
	if err != nil || u.Exists || u.UID != nil || len(u.Groups) != 0 {
		t.Fatalf("unknown user: %+v, %v", u, err)
	}
}

func TestNormalizeHost(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"ipv4", "203.0.113.7", "203.0.113.7"},
		{"ipv6 long", "2001:db8:0:0:0:0:0:1", "2001:db8::1"},
		{"ipv6 brackets", "[2001:db8::1]", "2001:db8::1"},
		{"mapped ipv4", "::ffff:203.0.113.7", "203.0.113.7"},
		{"host name", "bastion.example.org", "bastion.example.org"},
		{"absent", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := normalizeHost(tc.in); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
