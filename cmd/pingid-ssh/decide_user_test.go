package main

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/pingid-ssh/pingid-ssh/online/pingidtest"
)

func TestDecideForALocalUser(t *testing.T) {
	sim, err := pingidtest.Start(pingidtest.Options{Users: map[string]pingidtest.User{
		"root": {Behavior: "approve"}}, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()

	tests := []struct {
		name       string
		failMode   string
		fault      pingidtest.Fault
		wantClass  string
		wantAction string
	}{
		{"service up", "restrictive", pingidtest.FaultNone, "ok", "online"},
		{"refused, restrictive", "restrictive", pingidtest.FaultRefuse, "connect_refused", "deny"},
		{"refused, permissive", "permissive", pingidtest.FaultRefuse, "connect_refused", "bypass"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := sim.SetFault("", tc.fault); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			conf := probeSetup(t, sim, "", true, "fail_mode = "+tc.failMode+"\n"+
				"policy_dir = "+filepath.Join(dir, "policy.d")+"\n"+
				"state_dir = "+filepath.Join(dir, "state")+"\n"+
				"offline_key_file = "+filepath.Join(dir, "key")+"\n"+
				"offline_devices_path = "+filepath.Join(dir, "${username}")+"\n")
			code, stdout, stderr := runCmd(t, "", insecure, "decide", "--config", conf,
				"--user", "root", "--rhost", "203.0.113.7", "--json")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var out struct {
				Input struct {
					User struct {
						Name   string   `json:"name"`
						Exists bool     `json:"exists"`
						Groups []string `json:"groups"`
					} `json:"user"`
					Online  struct{ Class string }  `json:"online"`
					Offline struct{ Status string } `json:"offline"`
				} `json:"input"`
				Decision struct{ Action string } `json:"decision"`
			}
			if err := json.Unmarshal([]byte(stdout), &out); err != nil {
				t.Fatalf("%q: %v", stdout, err)
			}
			in := out.Input
			if in.User.Name != "root" || !in.User.Exists || len(in.User.Groups) == 0 ||
				in.Online.Class != tc.wantClass || in.Offline.Status != "no_key" ||
				out.Decision.Action != tc.wantAction {
				t.Fatalf("got %+v", out)
			}
		})
	}

	code, _, stderr := runCmd(t, "", insecure, "decide", "--user", "../etc", "--config",
		probeSetup(t, sim, "", true, ""))
	if code != 2 || stderr == "" {
		t.Fatalf("unsafe user name: code %d, stderr %q", code, stderr)
	}
}
