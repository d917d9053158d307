package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/pingid-ssh/pingid-ssh/online/pingidtest"
)

// probeSetup writes a pingid.conf and pingid.properties for sim (with idp_url moved to
// hostport when set) and returns the config path.
func probeSetup(t *testing.T, sim *pingidtest.Server, hostport string, trustCA bool,
	extra string) string {
	t.Helper()
	dir := t.TempDir()
	props := sim.PropertiesText()
	if hostport != "" {
		props = strings.ReplaceAll(props, sim.Addr(), hostport)
	}
	propsFile := filepath.Join(dir, "pingid.properties")
	conf := "pingid_properties_file = " + propsFile + "\nconnect_timeout = 1\n" + extra
	if trustCA {
		caFile := filepath.Join(dir, "ca.pem")
		if err := os.WriteFile(caFile, sim.CACertPEM(), 0o600); err != nil {
			t.Fatal(err)
		}
		conf += "ca_file = " + caFile + "\n"
	}
	confFile := filepath.Join(dir, "pingid.conf")
	for name, data := range map[string]string{propsFile: props, confFile: conf} {
		if err := os.WriteFile(name, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return confFile
}

func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestProbeCommand(t *testing.T) {
	users := map[string]pingidtest.User{"alice": {Behavior: "approve"}}
	cases := []struct {
		name  string
		fault pingidtest.Fault
		addr  func(t *testing.T) string
		trust bool
		extra func(t *testing.T) string
		want  string
	}{
		{name: "reachable", trust: true, want: "ok"},
		{name: "closed port", addr: closedAddr, trust: true, want: "connect_refused"},
		{name: "silent listener", addr: silent, trust: true, want: "read_timeout"},
		{name: "5xx", fault: pingidtest.Fault5xx, trust: true, want: "http_5xx"},
		{name: "429", fault: pingidtest.Fault429, trust: true, want: "http_429"},
		{name: "self-signed certificate", fault: pingidtest.FaultBadCert, trust: true,
			want: "tls_verify"},
		{name: "untrusted certificate", trust: false, want: "tls_verify"},
		{name: "unreachable proxy", trust: true, want: "proxy",
			extra: func(t *testing.T) string { return "proxy = http://" + closedAddr(t) + "\n" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sim, err := pingidtest.Start(pingidtest.Options{Users: users, Log: zerolog.Nop()})
			if err != nil {
				t.Fatal(err)
			}
			defer sim.Close()
			if err := sim.SetFault("", tc.fault); err != nil {
				t.Fatal(err)
			}
			addr, extra := "", ""
			if tc.addr != nil {
				addr = tc.addr(t)
			}
			if tc.extra != nil {
				extra = tc.extra(t)
			}
			conf := probeSetup(t, sim, addr, tc.trust, extra)

			code, stdout, stderr := runCmd(t, "", insecure, "probe", "--config", conf, "--json")
			if code != 0 {
				t.Fatalf("exit %d, stderr %s", code, stderr)
			}
			var out struct {
				Class     string `json:"class"`
				LatencyMS *int64 `json:"latency_ms"`
				URL       string `json:"url"`
			}
			if err := json.Unmarshal([]byte(stdout), &out); err != nil {
				t.Fatalf("output %q: %v", stdout, err)
			}
			if out.Class != tc.want || out.LatencyMS == nil || !strings.HasPrefix(out.URL,
				"https://127.0.0.1:") {
				t.Fatalf("output %s, want class %s", stdout, tc.want)
			}
		})
	}
}

func TestProbeCommandBadInput(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "pingid.conf")
	os.WriteFile(conf, []byte("pingid_properties_file = "+filepath.Join(dir, "absent")+"\n"),
		0o600)
	cases := []struct {
		name string
		args []string
	}{
		{"missing properties", []string{"probe", "--config", conf}},
		{"missing config", []string{"probe", "--config", filepath.Join(dir, "nope.conf")}},
		{"stray argument", []string{"probe", "extra"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCmd(t, "", insecure, tc.args...)
			if code != 2 || stderr == "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
		})
	}
}

// silent is a listener that accepts and never answers.
func silent(t *testing.T) string { return pingidtest.SilentAddr(t) }
