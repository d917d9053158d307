package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pingid-ssh/pingid-ssh/internal/testlog"
)

// waitFor polls cond every 20ms for up to 20s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestSimulateCommand(t *testing.T) {
	dir := t.TempDir()
	usersFile := filepath.Join(dir, "users.json")
	os.WriteFile(usersFile, []byte(`{"alice": {"behavior": "approve", "devices": [{"id": "d1",
		"name": "phone", "suite": "OCRA-1:HOTP-SHA256-6:QN12", "key_hex": "00112233"}]}}`),
		0o600)
	propsFile := filepath.Join(dir, "pingid.properties")
	caFile := filepath.Join(dir, "ca.pem")
	adminAddr := closedAddr(t) // a free port, taken again by the admin listener

	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &testlog.Buffer{}, &testlog.Buffer{}
	e := &env{stdin: strings.NewReader(""), stdout: stdout, stderr: stderr,
		getenv: func(string) string { return "" }}
	done := make(chan int)
	go func() {
		done <- simulate(ctx, e, []string{"--users", usersFile, "--properties-out", propsFile,
			"--ca-out", caFile, "--admin", adminAddr})
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("simulate exited %d: %s", code, stderr.String())
		}
	}()
	waitFor(t, "simulator start", func() bool {
		return strings.Contains(stdout.String(), "admin:")
	})

	conf := filepath.Join(dir, "pingid.conf")
	os.WriteFile(conf, []byte("pingid_properties_file = "+propsFile+"\nca_file = "+caFile+
		"\nconnect_timeout = 1\n"), 0o600)
	probe := func() string {
		code, out, errOut := runCmd(t, "", insecure, "probe", "--config", conf, "--json")
		if code != 0 {
			t.Fatalf("probe exit %d: %s", code, errOut)
		}
		var r struct{ Class string }
		json.Unmarshal([]byte(out), &r)
		return r.Class
	}
	setFault := func(kind string) {
		resp, err := http.Post("http://"+adminAddr+"/fault?user=&kind="+kind, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("admin answered %s", resp.Status)
		}
	}

	if c := probe(); c != "ok" {
		t.Fatalf("probe = %s, want ok", c)
	}
	setFault("refuse")
	if c := probe(); c != "connect_refused" {
		t.Fatalf("probe with the service down = %s", c)
	}
	setFault("none")
	if c := probe(); c != "ok" {
		t.Fatalf("probe after recovery = %s", c)
	}

	resp, err := http.Post("http://"+adminAddr+"/fault?kind=bogus", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("unknown fault answered %s", resp.Status)
	}
}

func TestSimulateCommandBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"alice": {"behavior": "sing"}}`), 0o600)
	noSuite := filepath.Join(dir, "nosuite.json")
	os.WriteFile(noSuite, []byte(`{"alice": {"behavior": "approve", "devices": [{"id": "d1",
		"key_hex": "00112233"}]}}`), 0o600)
	good := filepath.Join(dir, "good.json")
	os.WriteFile(good, []byte(`{"alice": {"behavior": "approve"}}`), 0o600)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no users", nil, "--users is required"},
		{"bad behavior", []string{"--users", bad}, "sing"},
		{"device without suite", []string{"--users", noSuite},
			"alice: device d1: suite is required; use OCRA-1:HOTP-SHA256-6:QN12"},
		{"cert without key", []string{"--users", good, "--cert", "x.pem"}, "go together"},
		{"public listen address", []string{"--users", good, "--listen", "0.0.0.0:0"},
			"loopback"},
		{"public admin address", []string{"--users", good, "--admin", "0.0.0.0:0"},
			"loopback"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut,
				getenv: func(string) string { return "" }}
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // a run that got this far would stop at once
			code := simulate(ctx, e, tc.args)
			if code == 0 || !strings.Contains(errOut.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q, want %q", code, errOut.String(), tc.want)
			}
		})
	}
}
