package engine

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/pingid-ssh/pingid-ssh/config"
)

func login(failMode, class, status string, phase Phase) *Input {
	uid := int64(1001)
	last := int64(3_600_000)
	return &Input{
		FailMode: failMode,
		Phase:    phase,
		User:     User{Name: "alice", Exists: true, UID: &uid, Groups: []string{"dev", "wheel"}},
		Request:  Request{Service: "sshd", RHost: "203.0.113.7", TTY: "ssh"},
		Online: Service{Class: class, LatencyMS: 2003, CheckedMSAgo: 40,
			LastSuccessMSAgo: &last},
		Offline: DeviceFile{Status: status, Devices: 1},
		Time:    time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC),
	}
}

func mustCompile(t testing.TB, overrides ...Source) *Engine {
	t.Helper()
	set, err := Compile(context.Background(), overrides)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return New(set, 0)
}

func TestDecideFollowsTheFailModeTable(t *testing.T) {
	e := mustCompile(t)
	tests := []struct {
		name                   string
		failMode, class, state string
		phase                  Phase
		want                   Action
	}{
		{"restrictive up", "restrictive", "ok", "missing", PhaseProbe, Online},
		{"restrictive down", "restrictive", "connect_timeout", "ready", PhaseProbe, Deny},
		{"passive down ready", "passive_offline_authentication", "dns", "ready", PhaseProbe,
			Offline},
		{"passive down locked", "passive_offline_authentication", "dns", "locked_out",
			PhaseProbe, Deny},
		{"enforce up", "enforce_offline_authentication", "ok", "ready", PhaseProbe, Offline},
		{"permissive down", "permissive", "http_5xx", "missing", PhaseProbe, Bypass},
		{"permissive bad cert", "permissive", "tls_verify", "missing", PhaseProbe, Deny},
		{"permissive challenge", "permissive", "read_timeout", "missing", PhaseChallenge, Deny},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := e.Decide(context.Background(), login(tc.failMode, tc.class, tc.state, tc.phase))
			if d.Action != tc.want || d.Failure != "" {
				t.Fatalf("got %s (failure %q, reasons %q), want %s", d.Action, d.Failure,
					d.Reasons, tc.want)
			}
			if len(d.ID) != 16 || d.Revision == "" || len(d.Reasons) == 0 {
				t.Fatalf("decision lacks id, revision or reasons: %+v", d)
			}
		})
	}
}

func TestDecideJSONDeniesWhatItCannotRead(t *testing.T) {
	e := mustCompile(t)
	tests := []struct {
		name    string
		doc     any
		failure Failure
		reason  string
	}{
		{"array", []any{1, 2}, FailInput, "not a JSON object"},
		{"string", "hello", FailInput, "not a JSON object"},
		{"empty object", map[string]any{}, "", "input: fail_mode"},
		{"mistyped phase", map[string]any{"fail_mode": "permissive", "phase": 1}, "",
			"input: phase"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := e.DecideJSON(context.Background(), tc.doc)
			if d.Action != Deny || d.Failure != tc.failure {
				t.Fatalf("got %s failure %q, want deny failure %q", d.Action, d.Failure,
					tc.failure)
			}
			if !strings.Contains(strings.Join(d.Reasons, "\n"), tc.reason) {
				t.Fatalf("reasons %q lack %q", d.Reasons, tc.reason)
			}
		})
	}
}

func TestPolicyFailuresDeny(t *testing.T) {
	base := func(body string) Source {
		return Source{Name: "policy/failmode.rego", Text: "package pingid.failmode\n" + body}
	}
	tests := []struct {
		name    string
		base    Source
		timeout time.Duration
		want    Failure
	}{
		{"undefined", base(`decision := 1 if false`), 0, FailUndefined},
		{"not an object", base(`decision := "bypass"`), 0, FailWrongType},
		{"extra key", base(`decision := {"action": "bypass", "reasons": [], "x": 1}`), 0,
			FailWrongType},
		{"reasons not strings", base(`decision := {"action": "bypass", "reasons": [1]}`), 0,
			FailWrongType},
		{"action not a string", base(`decision := {"action": true, "reasons": []}`), 0,
			FailWrongType},
		{"unknown action", base(`decision := {"action": "allow", "reasons": []}`), 0,
			FailUnknownAction},
		{"eval error", base(`decision := {"action": "bypass", "reasons": [x]} if {
	x := to_number("nope")
}`), 0, FailEval},
		{"timeout", base(`decision := {"action": "bypass", "reasons": [sprintf("%d", [n])]} if {
	n := count([x | some x in numbers.range(1, 100000000); x % 7 == 0])
}`), 20 * time.Millisecond, FailTimeout},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set, err := compile(context.Background(), tc.base, nil)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			e := New(set, tc.timeout)
			d := e.Decide(context.Background(), login("permissive", "dns", "ready", PhaseProbe))
			if d.Action != Deny || d.Failure != tc.want {
				t.Fatalf("got %s failure %q (%q), want deny %q", d.Action, d.Failure,
					d.Reasons, tc.want)
			}
			if !strings.HasPrefix(d.Reasons[0], "policy failure: "+string(tc.want)) {
				t.Fatalf("first reason %q does not name the failure", d.Reasons[0])
			}
		})
	}
}

func TestNoPolicyDenies(t *testing.T) {
	d := New(nil, 0).Decide(context.Background(), login("permissive", "dns", "ready",
		PhaseProbe))
	if d.Action != Deny || d.Failure != FailNoPolicy {
		t.Fatalf("got %+v", d)
	}
}

func TestOverrides(t *testing.T) {
	ov := func(name, body string) Source {
		return Source{Name: "/etc/pingid/policy.d/" + name,
			Text: "package pingid.overrides\n" + body}
	}
	tests := []struct {
		name      string
		overrides []Source
		want      Action
		failure   Failure
	}{
		{"deny by group", []Source{ov("wheel.rego", `deny contains "wheel" if {
	"wheel" in input.user.groups
}`)}, Deny, ""},
		{"action replaces", []Source{ov("off.rego", `action := "offline"`)}, Offline, ""},
		{"conflicting actions", []Source{
			ov("a.rego", `action := "offline"`),
			ov("b.rego", `action := "deny"`),
		}, Deny, FailEval},
		{"override reads the fail-mode action", []Source{ov("nb.rego",
			`import data.pingid.failmode
deny contains "no bypass for wheel" if {
	failmode.fail_mode_action == "bypass"
	"wheel" in input.user.groups
}`)}, Deny, ""},
		{"tests are not compiled into the set", []Source{{
			Name: "/p/x_test.rego",
			Text: "package x_test\ntest_a if { false }\n",
		}}, Bypass, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := mustCompile(t, tc.overrides...)
			d := e.Decide(context.Background(), login("permissive", "dns", "ready", PhaseProbe))
			if d.Action != tc.want || d.Failure != tc.failure {
				t.Fatalf("got %s failure %q (%q), want %s %q", d.Action, d.Failure, d.Reasons,
					tc.want, tc.failure)
			}
		})
	}
}

func TestBadOverridesAreRejectedWithFileAndLine(t *testing.T) {
	tests := []struct {
		name string
		text string
		want string
	}{
		{"syntax error", "package pingid.overrides\naction := \n", "bad.rego:3"},
		{"wrong package", "package pingid.failmode\ndecision := {}\n", "bad.rego:1"},
		{"http.send", "package pingid.overrides\n\ndeny contains x if {\n" +
			"\tx := http.send({\"method\": \"get\", \"url\": \"https://127.0.0.1/\"}).body\n}\n",
			"bad.rego:4"},
		{"net.lookup_ip_addr", "package pingid.overrides\n\ndeny contains \"x\" if {\n" +
			"\tnet.lookup_ip_addr(\"localhost\")\n}\n", "bad.rego:4"},
		{"opa.runtime", "package pingid.overrides\n\naction := opa.runtime().env.A\n",
			"bad.rego:3"},
		{"strict: unused var", "package pingid.overrides\n\ndeny contains \"x\" if {\n" +
			"\tsome y\n\tinput.user.name == \"a\"\n}\n", "bad.rego:4"},
		{"conflicting rule kinds", "package pingid.overrides\n\ndeny := true\n\n" +
			"deny contains \"x\"\n", "bad.rego:"},
		{"test file in overrides package", "package pingid.overrides\n", "bad_test.rego:1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := "/etc/pingid/policy.d/bad.rego"
			if strings.HasPrefix(tc.want, "bad_test") {
				name = "/etc/pingid/policy.d/bad_test.rego"
				_, err := RunTests(context.Background(), []Source{{name, tc.text}}, time.Second)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err = %v, want it to name %s", err, tc.want)
				}
				return
			}
			_, err := Compile(context.Background(), []Source{{name, tc.text}})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to name %s", err, tc.want)
			}
		})
	}
}

func TestRunTests(t *testing.T) {
	override := Source{"/p/ov.rego", "package pingid.overrides\n\naction := \"offline\" if {\n" +
		"\t\"contractors\" in input.user.groups\n}\n"}
	test := func(want string) Source {
		return Source{"/p/ov_test.rego", `package pingid.overrides_test

import data.pingid.failmode

test_contractors_go_offline if {
	d := failmode.decision with input as {
		"fail_mode": "restrictive", "phase": "probe", "user": {"name": "c", "groups": ["contractors"]},
		"online": {"class": "ok"}, "offline": {"status": "ready"},
	}
	d.action == "` + want + `"
}
`}
	}
	tests := []struct {
		name string
		want string
		pass bool
	}{
		{"passing", "offline", true},
		{"failing", "online", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := RunTests(context.Background(), []Source{override, test(tc.want)},
				time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != 1 || res[0].Pass != tc.pass {
				t.Fatalf("results %+v, want one with pass=%v", res, tc.pass)
			}
			if !strings.HasPrefix(res[0].Location, "/p/ov_test.rego:") {
				t.Fatalf("location %q", res[0].Location)
			}
		})
	}
}

func TestRevisionFollowsSources(t *testing.T) {
	a := mustCompile(t).Set().Revision()
	b := mustCompile(t, Source{"/p/a.rego", "package pingid.overrides\n"}).Set().Revision()
	c := mustCompile(t, Source{"/p/a.rego", "package pingid.overrides\n\n"}).Set().Revision()
	if a == b || b == c || a == c {
		t.Fatalf("revisions must differ: %s %s %s", a, b, c)
	}
	if again := mustCompile(t).Set().Revision(); again != a {
		t.Fatalf("revision not stable: %s vs %s", a, again)
	}
}

func TestSwapDuringDecisions(t *testing.T) {
	e := mustCompile(t)
	sets := []*Set{e.Set(), mustCompile(t, Source{"/p/d.rego",
		"package pingid.overrides\n\ndeny contains \"always\"\n"}).Set()}
	in := login("permissive", "dns", "ready", PhaseProbe)

	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				d := e.Decide(context.Background(), in)
				want := Bypass
				if d.Revision == sets[1].Revision() {
					want = Deny
				}
				if d.Action != want || d.Failure != "" {
					t.Errorf("revision %s gave %s (%q)", d.Revision, d.Action, d.Reasons)
					return
				}
			}
		}()
	}
	for i := 0; i < 100; i++ {
		e.Swap(sets[i%2])
	}
	wg.Wait()
}

func TestReadDir(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string, mode os.FileMode) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	write("b.rego", "package pingid.overrides\n", 0o644)
	write("a.rego", "package pingid.overrides\n", 0o644)
	write(".a.rego.swp", "junk", 0o644)
	write("README", "junk", 0o644)
	if err := os.Mkdir(filepath.Join(dir, "..data"), 0o755); err != nil {
		t.Fatal(err)
	}

	srcs, err := ReadDir(dir, config.LoadOptions{AllowInsecure: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) != 2 || filepath.Base(srcs[0].Name) != "a.rego" ||
		filepath.Base(srcs[1].Name) != "b.rego" {
		t.Fatalf("got %+v", srcs)
	}

	if srcs, err := ReadDir(filepath.Join(dir, "none"), config.LoadOptions{}); err != nil ||
		srcs != nil {
		t.Fatalf("missing dir: %v %v", srcs, err)
	}

	write("c.rego", "package pingid.overrides\n", 0o666)
	_, err = ReadDir(dir, config.LoadOptions{})
	// As root c.rego is the one at fault; as another user the directory itself is.
	if !errors.Is(err, config.ErrInsecureFile) || !strings.Contains(err.Error(), "c.rego") &&
		!strings.Contains(err.Error(), "a.rego") && !strings.Contains(err.Error(), dir) {
		t.Fatalf("insecure file: err = %v", err)
	}
}

func TestRefusedBuiltinsAreExplained(t *testing.T) {
	for _, call := range []string{`net.cidr_contains("10.0.0.0/8", input.request.rhost)`,
		`time.now_ns() > 0`, `rand.intn("x", 10) == 1`, `uuid.rfc4122("x") != ""`} {
		text := "package pingid.overrides\n\ndeny contains \"x\" if {\n\t" + call + "\n}\n"
		_, err := Compile(context.Background(), []Source{{"/p/a.rego", text}})
		if err == nil || !strings.Contains(err.Error(), "/p/a.rego:4") ||
			!strings.Contains(err.Error(), "may depend only on its input") {
			t.Errorf("%s: err = %v", call, err)
		}
	}
}

// The capabilities file shipped for the opa CLI must refuse exactly what the engine does.
func TestShippedCapabilitiesMatchTheEngine(t *testing.T) {
	want, err := Capabilities()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../policy/capabilities.json")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(got)) != strings.TrimSpace(string(want)) {
		t.Fatal("policy/capabilities.json is stale: run pingid-ssh policy capabilities " +
			"> policy/capabilities.json")
	}
}

func TestSweep(t *testing.T) {
	ov := func(body string) Source {
		return Source{Name: "/p/o.rego", Text: "package pingid.overrides\n\n" + body + "\n"}
	}
	tests := []struct {
		name     string
		override Source
		problem  string
		warning  string
	}{
		{"clean", ov(`deny contains "no ops" if "ops" in input.user.groups`), "", ""},
		{"clash on a group only the override names", ov(`action := "offline" if "ops" in input.user.groups

action := "bypass" if "ops" in input.user.groups`), "eval_error", ""},
		{"clash on an address", ov(`action := "offline" if input.request.rhost == "198.51.100.9"

action := "deny" if startswith(input.request.rhost, "198.51.100.")`), "eval_error", ""},
		{"invalid action", ov(`action := "maybe"`), "is not one of", ""},
		{"deny of numbers", ov(`deny contains 5 if true`), "deny must be a set of strings", ""},
		{"bypass with the service up", ov(`action := "bypass" if input.user.name == "ops"`), "",
			"bypass while the PingID service is up"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep := Sweep(context.Background(), mustCompile(t, tc.override))
			check := func(what string, got []string, want string) {
				joined := strings.Join(got, "\n")
				if want == "" && len(got) > 0 || want != "" && !strings.Contains(joined, want) {
					t.Errorf("%s: got %q, want %q", what, joined, want)
				}
			}
			check("problems", rep.Problems, tc.problem)
			check("warnings", rep.Warnings, tc.warning)
		})
	}
}

// The typed input must reach the policy exactly as its JSON form would.
func TestInputValueMatchesItsJSON(t *testing.T) {
	in := login("permissive", "dns", "ready", PhaseProbe)
	age := int64(86_400_000)
	in.Offline.AgeMS = &age
	raw, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ast.ParseTerm(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	if got := in.value(); got.Compare(want.Value) != 0 {
		t.Fatalf("value() = %v\nJSON    = %v", got, want.Value)
	}
}

func TestOverrideRuleShapesAreReportedAtTheOverride(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"action as a set", `action contains "bypass"`, "action must be one value"},
		{"action as a function", `action(x) := x`, "action must be one value"},
		{"deny as one value", `deny := "no"`, "deny must be a set of reasons"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := "package pingid.overrides\n\n" + tc.body + "\n"
			_, err := Compile(context.Background(), []Source{{"/p/o.rego", text}})
			if err == nil || !strings.Contains(err.Error(), "/p/o.rego:3") ||
				!strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}
