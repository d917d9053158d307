package pingidtest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pingid-ssh/pingid-ssh/online/internal/wire"
)

func TestParseUsers(t *testing.T) {
	cases := []struct {
		name string
		json string
		want string // "" for valid
	}{
		{"valid", `{"a": {"behavior": "otp:123456", "devices": [{"id": "d1",
			"suite": "OCRA-1:HOTP-SHA256-6:QN12", "key_hex": "00ff"}]}}`, ""},
		{"unknown behavior", `{"a": {"behavior": "dance"}}`, "dance"},
		{"bad otp", `{"a": {"behavior": "otp:12"}}`, "otp:12"},
		{"choose with one device", `{"a": {"behavior": "choose", "devices": [{"id": "d",
			"suite": "OCRA-1:HOTP-SHA256-6:QN12", "key_hex": "00"}]}}`, "two devices"},
		{"device without id", `{"a": {"behavior": "approve", "devices": [{"suite":
			"OCRA-1:HOTP-SHA256-6:QN12", "key_hex": "00"}]}}`, "users: a: device 1 has no id"},
		{"device without suite", `{"a": {"behavior": "approve", "devices": [{"id": "d",
			"key_hex": "00"}]}}`,
			"users: a: device d: suite is required; use OCRA-1:HOTP-SHA256-6:QN12"},
		{"key missing", `{"a": {"behavior": "approve", "devices": [{"id": "d",
			"suite": "OCRA-1:HOTP-SHA256-6:QN12"}]}}`, "users: a: device d: key_hex is missing"},
		{"key not hex", `{"a": {"behavior": "approve", "devices": [{"id": "d",
			"suite": "OCRA-1:HOTP-SHA256-6:QN12", "key_hex": "zz"}]}}`,
			"users: a: device d: key_hex is not hex"},
		{"unknown field", `{"a": {"behavior": "approve", "colour": "red"}}`, "colour"},
		{"not JSON", `alice`, "users"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseUsers([]byte(tc.json))
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want mention of %q", err, tc.want)
			}
		})
	}
}

// TestRequestsMustBeSigned sends requests that the service must refuse and checks the
// answer is an unsigned 401 error, never a signed answer.
func TestRequestsMustBeSigned(t *testing.T) {
	s := New(map[string]User{"alice": {Behavior: "approve"}}, zerolog.Nop())
	defer s.Close()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CACertPEM())
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		Proxy: nil, TLSClientConfig: &tls.Config{RootCAs: pool}}}
	p := s.Properties()

	envelope := func(key []byte, alias, secret string, ts time.Time) string {
		body, _ := json.Marshal(wire.StartAuth{SpAlias: "web", UserName: "alice"})
		payload, _ := json.Marshal(wire.Request{ReqHeader: wire.ReqHeader{Locale: "en",
			OrgAlias: alias, SecretKey: secret, Timestamp: wire.Timestamp(ts),
			Version: wire.Version}, ReqBody: body})
		out, err := wire.Sign(key, wire.Header{"org_alias": p.OrgAlias, "token": p.Token},
			payload)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	cases := []struct {
		name   string
		body   string
		status int
	}{
		{"good", envelope(p.Key, p.OrgAlias, p.Token, time.Now()), http.StatusOK},
		{"wrong key", envelope(bytes.Repeat([]byte{9}, 32), p.OrgAlias, p.Token, time.Now()),
			http.StatusUnauthorized},
		{"wrong secret", envelope(p.Key, p.OrgAlias, "nope", time.Now()),
			http.StatusUnauthorized},
		{"stale timestamp", envelope(p.Key, p.OrgAlias, p.Token, time.Now().Add(-time.Hour)),
			http.StatusUnauthorized},
		{"unsigned", `{"reqHeader": {}, "reqBody": {"userName": "alice"}}`,
			http.StatusUnauthorized},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := client.Post(s.URL()+"/rest/4/startauthentication/do",
				"application/json", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			data, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, data)
			}
			_, _, verr := wire.Verify(p.Key, data)
			if signed := verr == nil; signed != (tc.status == http.StatusOK) {
				t.Fatalf("answer signed = %v for status %d", signed, tc.status)
			}
		})
	}
	if n := s.Calls("startauthentication"); n != 1 {
		t.Fatalf("%d requests counted as verified, want 1", n)
	}
}

func TestStartRefusesPublicAddress(t *testing.T) {
	if _, err := Start(Options{Listen: "0.0.0.0:0"}); err == nil {
		t.Fatal("listened on a public address")
	}
}

func TestParseFault(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want Fault
		err  string
	}{
		{"empty clears", "", FaultNone, ""},
		{"none clears", "none", FaultNone, ""},
		{"refuse", "refuse", FaultRefuse, ""},
		{"bad certificate", "badcert", FaultBadCert, ""},
		{"unknown lists the kinds", "down", "", `unknown fault "down"; valid kinds: refuse, ` +
			"silent, drip, 5xx, 429, malformed, badsig, unsigned, badcert, none"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseFault(tc.in)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseFault(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
	// Every listed kind parses.
	for _, f := range Faults {
		if got, err := ParseFault(string(f)); err != nil || got != f {
			t.Errorf("ParseFault(%q) = %q, %v", f, got, err)
		}
	}
}

func TestAdminUnknownFaultListsKinds(t *testing.T) {
	s := New(map[string]User{"alice": {Behavior: "approve"}}, zerolog.Nop())
	defer s.Close()
	rec := httptest.NewRecorder()
	s.AdminHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost,
		"/fault?user=alice&kind=down", nil))
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(),
		"valid kinds: refuse, silent, drip, 5xx, 429") {
		t.Fatalf("status %d, body %q", rec.Code, rec.Body.String())
	}
}
