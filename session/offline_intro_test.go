package session

import (
	"slices"
	"testing"

	"github.com/pingid-ssh/pingid-ssh/config"
	"github.com/pingid-ssh/pingid-ssh/online/pingidtest"
)

// TestOfflineIntroSaysWhy checks that the offline flow calls the service unreachable only
// when it is: enforce_offline_authentication goes offline while the service answers.
func TestOfflineIntroSaysWhy(t *testing.T) {
	tests := []struct {
		name  string
		down  bool
		intro string
	}{
		{name: "service up", intro: "Offline authentication."},
		{name: "service down", down: true,
			intro: "PingID is unreachable: offline authentication."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, config.EnforceOffline)
			f.seedDevices(t, "alice")
			if tc.down {
				if err := f.sim.SetFault("", pingidtest.FaultRefuse); err != nil {
					t.Fatal(err)
				}
			}
			tr := f.drive(t, start("alice"), offlineCode(t, false))
			if tr.status != StatusSuccess {
				t.Fatalf("status %s, want success (transcript %+v)", tr.status, tr)
			}
			if len(tr.infos) == 0 || tr.infos[0] != tc.intro {
				t.Errorf("infos %q, want %q first", tr.infos, tc.intro)
			}
			if !tc.down && slices.ContainsFunc(tr.infos, func(s string) bool {
				return s == "PingID is unreachable: offline authentication."
			}) {
				t.Errorf("service up, but the user was told it is unreachable: %q", tr.infos)
			}
		})
	}
}
