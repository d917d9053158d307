package online_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pingid-ssh/pingid-ssh/config"
	"github.com/pingid-ssh/pingid-ssh/online"
	"github.com/pingid-ssh/pingid-ssh/online/internal/wire"
	"github.com/pingid-ssh/pingid-ssh/online/pingidtest"
)

func TestAuthenticateFlows(t *testing.T) {
	cases := []struct {
		name      string
		user      string
		answers   []string
		timeout   time.Duration
		wantErr   error
		wantDevs  int
		wantCalls map[string]int
	}{
		{name: "push approved", user: "alice", wantDevs: 1,
			wantCalls: map[string]int{"startauthentication": 1, "authstatus": 1}},
		{name: "push rejected", user: "bob", wantErr: online.ErrRejected},
		{name: "push never answered", user: "carol", timeout: 700 * time.Millisecond,
			wantErr: online.ErrTimeout},
		{name: "passcode right", user: "dave", answers: []string{"123456"}, wantDevs: 1,
			wantCalls: map[string]int{"authoffline": 1}},
		{name: "passcode right after a wrong one", user: "dave",
			answers: []string{"000000", "123456"}, wantDevs: 1,
			wantCalls: map[string]int{"authoffline": 2}},
		{name: "passcode not plausible, then right", user: "dave",
			answers: []string{"12", "123456"}, wantDevs: 1,
			wantCalls: map[string]int{"authoffline": 1}},
		{name: "passcode wrong every time", user: "dave",
			answers: []string{"000000", "111111", "222222"}, wantErr: online.ErrRejected,
			wantCalls: map[string]int{"authoffline": 3}},
		{name: "passcode never typed", user: "dave", timeout: 500 * time.Millisecond,
			wantErr: online.ErrTimeout},
		{name: "device chosen", user: "erin", answers: []string{"2"}, wantDevs: 2,
			wantCalls: map[string]int{"startauthentication": 2}},
		{name: "device choice invalid, then valid", user: "erin",
			answers: []string{"7", "x", "1"}, wantDevs: 2},
		{name: "device choice never valid", user: "erin", answers: []string{"0", "9", "-1"},
			wantErr: online.ErrRejected},
		{name: "unknown user", user: "mallory", wantErr: online.ErrNotRegistered},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sim := newSim(t)
			c := newClient(t, testConfig(t, sim), sim.Properties())
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 20 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()

			p := &prompter{answers: tc.answers}
			res, err := c.Authenticate(ctx, tc.user, p, 3)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || res != nil {
					t.Fatalf("got (%v, %v), want %v", res, err, tc.wantErr)
				}
				if online.Classify(err) != online.ClassOK {
					t.Errorf("a user-side outcome classified as %s", online.Classify(err))
				}
			} else {
				if err != nil {
					t.Fatalf("Authenticate: %v", err)
				}
				if len(res.Devices) != tc.wantDevs || res.UniqueMsgID == "" {
					t.Fatalf("result %+v", res)
				}
				d := res.Devices[0]
				if d.ID != "d1" || d.Suite != "OCRA-1:HOTP-SHA256-6:QN12" || len(d.Key) != 32 {
					t.Errorf("device %v with %d key bytes", d, len(d.Key))
				}
			}
			for op, n := range tc.wantCalls {
				if got := sim.Calls(op); got != n {
					t.Errorf("%s called %d times, want %d", op, got, n)
				}
			}
		})
	}
}

func TestFirstStatusPollIsImmediate(t *testing.T) {
	cases := []struct {
		name    string
		user    string
		timeout time.Duration
		wantErr error
	}{
		// With an hour between polls, only a poll sent at once can see the approval
		// before the deadline.
		{name: "approved push", user: "alice", timeout: 20 * time.Second},
		{name: "unanswered push waits the interval after the first poll", user: "carol",
			timeout: 500 * time.Millisecond, wantErr: online.ErrTimeout},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sim := newSim(t)
			c := newClient(t, testConfig(t, sim), sim.Properties(),
				online.WithPollInterval(time.Hour))
			ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
			defer cancel()

			_, err := c.Authenticate(ctx, tc.user, &prompter{}, 3)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("got %v, want %v", err, tc.wantErr)
			}
			if n := sim.Calls("authstatus"); n != 1 {
				t.Fatalf("authstatus called %d times, want 1", n)
			}
		})
	}
}

func TestTimeoutCancelsSession(t *testing.T) {
	sim := newSim(t)
	c := newClient(t, testConfig(t, sim), sim.Properties())
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := c.Authenticate(ctx, "carol", &prompter{}, 3)
	if !errors.Is(err, online.ErrTimeout) {
		t.Fatalf("err = %v", err)
	}
	c.Close() // waits for the background cancel
	if sim.Cancelled() != 1 {
		t.Fatalf("%d sessions cancelled, want 1", sim.Cancelled())
	}
}

func TestPrompterFailureCancelsSession(t *testing.T) {
	sim := newSim(t)
	c := newClient(t, testConfig(t, sim), sim.Properties())
	p := &prompter{err: errors.New("terminal gone")}
	_, err := c.Authenticate(context.Background(), "dave", p, 3)
	if !errors.Is(err, online.ErrConversation) {
		t.Fatalf("err = %v", err)
	}
	if sim.Cancelled() != 1 {
		t.Fatalf("%d sessions cancelled, want 1", sim.Cancelled())
	}
}

func TestFailureAfterStartIsStarted(t *testing.T) {
	cases := []struct {
		name  string
		fault pingidtest.Fault
		want  online.Class
	}{
		{"5xx", pingidtest.Fault5xx, online.ClassHTTP5xx},
		{"bad signature", pingidtest.FaultBadSignature, online.ClassHTTP401},
		{"unsigned success", pingidtest.FaultUnsigned, online.ClassHTTP401},
		{"dropped", pingidtest.FaultRefuse, online.ClassReadTimeout},
		{"silent", pingidtest.FaultSilent, online.ClassReadTimeout},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sim := newSim(t)
			c := newClient(t, testConfig(t, sim), sim.Properties())
			// The fault starts once the passcode is asked for: startauthentication worked.
			p := &prompter{answers: []string{"123456"}, onAsk: func(int) {
				sim.SetFault("dave", tc.fault)
			}}
			start := time.Now()
			res, err := c.Authenticate(context.Background(), "dave", p, 3)
			var e *online.Error
			if res != nil || !errors.As(err, &e) {
				t.Fatalf("got (%v, %v)", res, err)
			}
			// The cancel of the broken session must not add another timeout.
			if elapsed := time.Since(start); elapsed > budget {
				t.Errorf("took %s, more than %s", elapsed, budget)
			}
			if !e.Started || e.Class != tc.want || e.Op != "authoffline" {
				t.Fatalf("error %+v, want Started, class %s, op authoffline", e, tc.want)
			}
		})
	}
}

func TestLegacyAliasHeaderAccepted(t *testing.T) {
	sim, err := pingidtest.Start(pingidtest.Options{Users: testUsers(), Log: zerolog.Nop(),
		LegacyAliasHeader: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	c := newClient(t, testConfig(t, sim), sim.Properties())
	if _, err := c.Authenticate(context.Background(), "alice", &prompter{}, 3); err != nil {
		t.Fatalf("org_alias header refused: %v", err)
	}
}

// scripted is a TLS server that answers every operation with a body chosen by the test,
// signed with key (or not at all when key is nil).
func scripted(t *testing.T, key []byte, alias string,
	answer func(op string) (status int, body map[string]any)) (*httptest.Server, string) {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter,
		r *http.Request) {
		io.Copy(io.Discard, r.Body)
		op := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/pingid/rest/4/"), "/do")
		status, body := answer(op)
		payload, _ := json.Marshal(map[string]any{"responseBody": body})
		out := payload
		if key != nil {
			s, err := wire.Sign(key, wire.Header{"orgAlias": alias}, payload)
			if err != nil {
				t.Error(err)
			}
			out = []byte(s)
		}
		w.WriteHeader(status)
		w.Write(out)
	}))
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pemFile := filepath.Join(t.TempDir(), "ca.pem")
	var buf bytes.Buffer
	for _, c := range srv.TLS.Certificates {
		buf.Write(certPEM(c))
	}
	os.WriteFile(pemFile, buf.Bytes(), 0o600)
	return srv, pemFile
}

func certPEM(c tls.Certificate) []byte {
	return []byte("-----BEGIN CERTIFICATE-----\n" + b64lines(c.Certificate[0]) +
		"-----END CERTIFICATE-----\n")
}

func TestUnexpectedAnswersNeverSucceed(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	const alias = "org-1"
	cases := []struct {
		name   string
		key    []byte
		alias  string
		answer func(op string) (int, map[string]any)
		check  func(t *testing.T, err error)
	}{
		{"unknown errorId at start", key, alias, func(string) (int, map[string]any) {
			return 200, map[string]any{"errorId": 12345, "sessionId": "s"}
		}, wantRejected},
		{"unknown errorId while polling", key, alias, func(op string) (int, map[string]any) {
			if op == "startauthentication" {
				return 200, map[string]any{"errorId": wire.Wait, "sessionId": "s"}
			}
			return 200, map[string]any{"errorId": 12345, "sessionId": "s"}
		}, func(t *testing.T, err error) {
			if !errors.Is(err, online.ErrRejected) {
				t.Fatalf("err = %v, want ErrRejected", err)
			}
		}},
		{"success signed for another org", key, "org-2", func(string) (int, map[string]any) {
			return 200, map[string]any{"errorId": 200}
		}, wantClass(online.ClassHTTP401, false)},
		{"success without errorId", key, alias, func(string) (int, map[string]any) {
			return 200, map[string]any{"errorMsg": "fine"}
		}, wantClass(online.ClassMalformed, false)},
		{"unsigned user-not-found is not trusted", nil, alias,
			func(string) (int, map[string]any) {
				return 400, map[string]any{"errorId": wire.UserNotFound}
			}, wantClass(online.ClassHTTP4xx, false)},
		{"signed 401", key, alias, func(string) (int, map[string]any) {
			return 401, map[string]any{"errorId": 200}
		}, wantClass(online.ClassHTTP401, false)},
		{"other session's success", key, alias, func(op string) (int, map[string]any) {
			if op == "startauthentication" {
				return 200, map[string]any{"errorId": wire.Wait, "sessionId": "s"}
			}
			return 200, map[string]any{"errorId": 200, "sessionId": "other"}
		}, wantRejected},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, caFile := scripted(t, tc.key, tc.alias, tc.answer)
			cfg := config.Default()
			cfg.ConnectTimeout = testTimeout
			cfg.CAFile = caFile
			props := &config.Properties{Key: key, Token: "tok", OrgAlias: alias,
				IDPURL: srv.URL + "/pingid"}
			c := newClient(t, &cfg, props)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := c.Authenticate(ctx, "alice", &prompter{}, 3)
			if res != nil {
				t.Fatalf("success %+v", res)
			}
			tc.check(t, err)
		})
	}
}

// wantRejected expects a signed refusal: final, and never a class for the policy.
func wantRejected(t *testing.T, err error) {
	t.Helper()
	var e *online.Error
	if !errors.Is(err, online.ErrRejected) || errors.As(err, &e) {
		t.Fatalf("err = %v, want ErrRejected and no failure class", err)
	}
}

func wantClass(class online.Class, started bool) func(t *testing.T, err error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var e *online.Error
		if !errors.As(err, &e) || e.Class != class || e.Started != started {
			t.Fatalf("err = %v, want class %s started=%v", err, class, started)
		}
	}
}
