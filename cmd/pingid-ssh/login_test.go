package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pingid-ssh/pingid-ssh/online/pingidtest"
)

func TestLoginStandalone(t *testing.T) {
	sim, err := pingidtest.Start(pingidtest.Options{Users: map[string]pingidtest.User{
		"root":   {Behavior: "approve"},
		"nobody": {Behavior: "otp:123456"}}, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	dir := t.TempDir()
	conf := probeSetup(t, sim, "", true, "policy_dir = "+filepath.Join(dir, "policy.d")+"\n"+
		"state_dir = "+filepath.Join(dir, "state")+"\n"+
		"offline_key_file = "+filepath.Join(dir, "key")+"\n"+
		"offline_devices_path = "+filepath.Join(dir, "${username}")+"\n")

	tests := []struct {
		name, user, stdin, config string
		code                      int
		out                       string
	}{
		{"push approved", "root", "", conf, 0, "result: success"},
		{"passcode typed on stdin", "nobody", "123456\n", conf, 0, "result: success"},
		{"wrong passcodes", "nobody", "1\n2\n3\n4\n5\n6\n7\n8\n", conf, 1, "result: deny"},
		{"stdin ends at the prompt", "nobody", "", conf, 1, "result: deny"},
		{"config that does not load", "root", "", filepath.Join(dir, "none.conf"), 1,
			"result: deny"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			type outcome struct {
				code        int
				out, errOut string
			}
			done := make(chan outcome, 1)
			go func() {
				code, out, errOut := runCmd(t, tc.stdin, insecure, "login", "--standalone",
					"--config", tc.config, "--user", tc.user)
				done <- outcome{code, out, errOut}
			}()
			select {
			case o := <-done:
				if o.code != tc.code || !strings.Contains(o.out, tc.out) {
					t.Fatalf("exit %d, stdout %q, stderr %q", o.code, o.out, o.errOut)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("login did not finish")
			}
		})
	}
}
