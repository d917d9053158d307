package session

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pingid-ssh/pingid-ssh/config"
	"github.com/pingid-ssh/pingid-ssh/offline"
	"github.com/pingid-ssh/pingid-ssh/online"
	"github.com/pingid-ssh/pingid-ssh/online/pingidtest"
)

// A push left to the login's deadline ends calls in flight; that must not mark the
// service down, or the next login of anyone could be bypassed in permissive mode.
func TestTimedOutPushDoesNotMarkTheServiceDown(t *testing.T) {
	for run := 0; run < 3; run++ {
		f := newFixture(t, config.Permissive)
		f.rt.Config.AuthTimeout = time.Second
		// Polling every millisecond makes it likely that the deadline cuts a call.
		client, err := online.New(f.rt.Config, f.sim.Properties(), zerolog.Nop(),
			online.WithLoadOptions(config.LoadOptions{AllowInsecure: true}),
			online.WithPollInterval(time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(client.Close)
		f.rt.Client = client
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		f.rt.Prober = online.NewProber(client, time.Hour, zerolog.Nop(), nil)
		go f.rt.Prober.Run(ctx)
		for i := 0; i < 500 && !f.rt.Prober.State().Known; i++ {
			time.Sleep(10 * time.Millisecond)
		}

		if tr := f.drive(t, start("dave"), noAnswer(t)); tr.status != StatusDeny {
			t.Fatalf("run %d: unanswered push gave %s", run, tr.status)
		}
		if c := f.rt.Prober.State().Class; c != online.ClassOK {
			t.Fatalf("run %d: the prober now says %s", run, c)
		}
		if tr := f.drive(t, start("alice"), noAnswer(t)); tr.status != StatusSuccess {
			t.Fatalf("run %d: the next login gave %s, want an approved push", run, tr.status)
		}
	}
}

// A name the API cannot carry is a local refusal, never a failure class for the policy.
func TestNameTooLongForTheAPIIsDenied(t *testing.T) {
	f := newFixture(t, config.Permissive)
	f.rt.Config.DomainPostfix = "@corp.example.com"
	tr := f.drive(t, start(strings.Repeat("a", 250)), noAnswer(t))
	if tr.status != StatusDeny {
		t.Fatalf("status %s, want deny", tr.status)
	}
}

// A client that hangs up during a push ends the login at once, not at auth_timeout.
func TestHangUpDuringPushEndsTheLogin(t *testing.T) {
	f := newFixture(t, config.Restrictive)
	shim, daemon := net.Pipe()
	done := make(chan Status, 1)
	go func() {
		defer daemon.Close()
		done <- f.rt.Run(context.Background(), daemon, daemon)
	}()
	if _, err := shim.Write([]byte(start("dave") + "\n")); err != nil {
		t.Fatal(err)
	}
	go func() { // read the session's lines, and hang up once the push is announced
		r := NewReader(shim)
		for {
			m, err := r.Read()
			if err != nil {
				return
			}
			if m.Type == TypeInfo {
				shim.Close()
				return
			}
		}
	}()
	select {
	case st := <-done:
		if st != StatusDeny {
			t.Fatalf("status %s, want deny", st)
		}
	case <-time.After(f.rt.Config.AuthTimeout / 2):
		t.Fatal("the login went on after the client hung up")
	}
}

// A success whose device list is empty revokes the offline file.
func TestEmptyDeviceListRemovesTheOfflineFile(t *testing.T) {
	f := newFixture(t, config.PassiveOffline)
	f.seedDevices(t, "frank")
	if tr := f.drive(t, start("frank"), noAnswer(t)); tr.status != StatusSuccess {
		t.Fatalf("status %s", tr.status)
	}
	if st := f.rt.Store.Status("frank").Status; st != offline.StatusMissing {
		t.Fatalf("device file is %s after its devices were revoked", st)
	}
}

// One device the offline check cannot use does not cost the user the others.
func TestUnusableDeviceIsLeftOut(t *testing.T) {
	f := newFixture(t, config.PassiveOffline)
	if tr := f.drive(t, start("gina"), noAnswer(t)); tr.status != StatusSuccess {
		t.Fatalf("status %s", tr.status)
	}
	rep := f.rt.Store.Status("gina")
	if rep.Status != offline.StatusReady || rep.Devices != 1 {
		t.Fatalf("device file: %+v, want ready with the one usable device", rep)
	}
	if !strings.Contains(f.logs.String(), "offline device left out") ||
		strings.Contains(f.logs.String(), deviceKeyHex) {
		t.Fatal("the left-out device is not logged, or its key is")
	}
}

// One user's failed call must not switch MFA off for the next: before a bypass, a login
// probes the service itself.
func TestAnotherUsersFailureIsNoBypass(t *testing.T) {
	f := newFixture(t, config.Permissive)
	f.rt.Prober = online.NewProber(f.rt.Client, time.Hour, zerolog.Nop(), nil)
	f.rt.Client.Probe(context.Background()) // the prober now knows the service is up

	if err := f.sim.SetFault("carol", pingidtest.Fault5xx); err != nil {
		t.Fatal(err)
	}
	// carol's own call fails with a 5xx: her own evidence, so permissive bypasses her.
	if tr := f.drive(t, start("carol"), noAnswer(t)); tr.status != StatusBypass {
		t.Fatalf("carol: %s", tr.status)
	}
	if c := f.rt.Prober.State().Class; c != online.ClassHTTP5xx {
		t.Fatalf("the prober says %s after carol's failure", c)
	}
	before := f.sim.Calls("startauthentication")
	tr := f.drive(t, start("alice"), noAnswer(t))
	if tr.status != StatusSuccess || f.sim.Calls("startauthentication") != before+1 {
		t.Fatalf("alice: %s after %d calls; want her own approved push",
			tr.status, f.sim.Calls("startauthentication")-before)
	}
}

// A real outage still bypasses in permissive mode, with the login's own probe as proof.
func TestOutageSeenByTheProberStillBypasses(t *testing.T) {
	f := newFixture(t, config.Permissive)
	f.rt.Prober = online.NewProber(f.rt.Client, time.Hour, zerolog.Nop(), nil)
	if err := f.sim.SetFault("", pingidtest.FaultRefuse); err != nil {
		t.Fatal(err)
	}
	f.rt.Client.Probe(context.Background())
	if tr := f.drive(t, start("alice"), noAnswer(t)); tr.status != StatusBypass {
		t.Fatalf("status %s, want bypass", tr.status)
	}
}

// The account's own spelling is what PingID, the device file and the lockout see.
func TestAccountNameFromNSS(t *testing.T) {
	f := newFixture(t, config.PassiveOffline)
	if tr := f.drive(t, start("ALICE"), noAnswer(t)); tr.status != StatusSuccess {
		t.Fatalf("ALICE: %s", tr.status)
	}
	if st := f.rt.Store.Status("alice").Status; st != offline.StatusReady {
		t.Fatalf("alice's device file is %s", st)
	}
	if tr := f.drive(t, start("MALLORY"), noAnswer(t)); tr.status != StatusDeny {
		t.Fatalf("a name NSS maps to another account: %s", tr.status)
	}
}
