package online_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pingid-ssh/pingid-ssh/config"
	"github.com/pingid-ssh/pingid-ssh/online"
	"github.com/pingid-ssh/pingid-ssh/online/pingidtest"
)

// budget is the most a failing call may take: connect_timeout plus a margin, well under
// the sum of the retries (3 x 2 x connect_timeout).
const budget = testTimeout + 1500*time.Millisecond

// faultCase sets up one real fault and returns the client to use.
type faultCase struct {
	name  string
	want  online.Class
	setup func(t *testing.T) *online.Client
}

func faultCases() []faultCase {
	simWith := func(f pingidtest.Fault) func(t *testing.T) *online.Client {
		return func(t *testing.T) *online.Client {
			sim := newSim(t)
			if err := sim.SetFault("", f); err != nil {
				t.Fatal(err)
			}
			return newClient(t, testConfig(t, sim), sim.Properties())
		}
	}
	elsewhere := func(addr func(t *testing.T) string) func(t *testing.T) *online.Client {
		return func(t *testing.T) *online.Client {
			sim := newSim(t)
			return newClient(t, testConfig(t, sim), propsAt(sim, addr(t)))
		}
	}
	return []faultCase{
		{"dns: NXDOMAIN from a local resolver", online.ClassDNS,
			func(t *testing.T) *online.Client {
				sim := newSim(t)
				return newClient(t, testConfig(t, sim), propsAt(sim, "api.pingid.invalid:443"),
					online.WithResolver(nxdomainResolver(t)))
			}},
		{"connect_refused: closed port", online.ClassConnectRefused, elsewhere(closedPort)},
		{"connect_refused: simulator refusing", online.ClassConnectRefused,
			simWith(pingidtest.FaultRefuse)},
		{"connect_timeout: full accept queue", online.ClassConnectTimeout,
			elsewhere(fullBacklog)},
		{"tls_handshake: plain HTTP server", online.ClassTLSHandshake,
			elsewhere(plainHTTPServer)},
		{"tls_verify: self-signed certificate", online.ClassTLSVerify,
			simWith(pingidtest.FaultBadCert)},
		{"tls_verify: CA not trusted", online.ClassTLSVerify,
			func(t *testing.T) *online.Client {
				sim := newSim(t)
				return newClient(t, testConfig(t, nil), sim.Properties())
			}},
		{"read_timeout: silent listener", online.ClassReadTimeout, elsewhere(silent)},
		{"read_timeout: simulator silent", online.ClassReadTimeout,
			simWith(pingidtest.FaultSilent)},
		{"read_timeout: slow drip", online.ClassReadTimeout, simWith(pingidtest.FaultDrip)},
		{"http_5xx", online.ClassHTTP5xx, simWith(pingidtest.Fault5xx)},
		{"http_429", online.ClassHTTP429, simWith(pingidtest.Fault429)},
		{"http_401: bad response signature", online.ClassHTTP401,
			simWith(pingidtest.FaultBadSignature)},
		{"http_401: unsigned success", online.ClassHTTP401, simWith(pingidtest.FaultUnsigned)},
		{"http_401: our key is wrong", online.ClassHTTP401,
			func(t *testing.T) *online.Client {
				sim := newSim(t)
				p := sim.Properties()
				p.Key[0] ^= 0xff
				return newClient(t, testConfig(t, sim), p)
			}},
		{"http_4xx: wrong path", online.ClassHTTP4xx,
			func(t *testing.T) *online.Client {
				sim := newSim(t)
				p := sim.Properties()
				p.IDPURL = "https://" + sim.Addr() + "/elsewhere"
				return newClient(t, testConfig(t, sim), p)
			}},
		{"malformed: HTML body", online.ClassMalformed, simWith(pingidtest.FaultMalformed)},
		{"proxy: unreachable proxy", online.ClassProxy,
			func(t *testing.T) *online.Client {
				sim := newSim(t)
				cfg := testConfig(t, sim)
				cfg.Proxy = "http://" + closedPort(t)
				return newClient(t, cfg, sim.Properties())
			}},
		{"proxy: proxy refuses credentials", online.ClassProxy,
			func(t *testing.T) *online.Client {
				sim := newSim(t)
				cfg := testConfig(t, sim)
				cfg.Proxy = "http://u:wrong@" + connectProxy(t, "u", "right")
				return newClient(t, cfg, sim.Properties())
			}},
	}
}

func TestAuthenticateClassifiesFaults(t *testing.T) {
	for _, tc := range faultCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := tc.setup(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			start := time.Now()
			res, err := c.Authenticate(ctx, "alice", &prompter{}, 3)
			elapsed := time.Since(start)

			if res != nil {
				t.Fatalf("got success %+v under a fault", res)
			}
			var e *online.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not an *online.Error", err, err)
			}
			if e.Class != tc.want || online.Classify(err) != tc.want {
				t.Fatalf("class %s, want %s (err: %v)", e.Class, tc.want, err)
			}
			if e.Started {
				t.Errorf("Started is true for a failure of the first call")
			}
			limit := budget
			if strings.Contains(tc.name, "drip") {
				// An answer that keeps trickling is cut by the call's total deadline,
				// twice connect_timeout.
				limit += testTimeout
			}
			if elapsed > limit {
				t.Errorf("took %s, more than %s", elapsed, limit)
			}
		})
	}
}

func TestProbeClassifiesFaults(t *testing.T) {
	for _, tc := range faultCases() {
		want := tc.want
		switch {
		case want == online.ClassHTTP401 || want == online.ClassMalformed ||
			want == online.ClassHTTP4xx || strings.Contains(tc.name, "drip"):
			// A probe does not read the body: any answer below 500 but 429 is reachability.
			want = online.ClassOK
		}
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := tc.setup(t)
			start := time.Now()
			res := c.Probe(context.Background())
			elapsed := time.Since(start)
			if res.Class != want {
				t.Fatalf("class %s, want %s (err: %v)", res.Class, want, res.Err)
			}
			if (res.Err == nil) != (want == online.ClassOK) {
				t.Errorf("Err = %v with class %s", res.Err, res.Class)
			}
			if !strings.HasPrefix(res.URL, "https://") {
				t.Errorf("URL %q", res.URL)
			}
			if elapsed > budget {
				t.Errorf("took %s, more than %s", elapsed, budget)
			}
		})
	}
}

func TestProbeOK(t *testing.T) {
	sim := newSim(t)
	c := newClient(t, testConfig(t, sim), sim.Properties())
	res := c.Probe(context.Background())
	if res.Class != online.ClassOK || res.Err != nil || res.URL != sim.URL() {
		t.Fatalf("probe = %+v", res)
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want online.Class
	}{
		{"nil", nil, online.ClassOK},
		{"rejected", online.ErrRejected, online.ClassOK},
		{"not registered", online.ErrNotRegistered, online.ClassOK},
		{"timeout", online.ErrTimeout, online.ClassOK},
		{"wrapped Error", errors.Join(errors.New("x"),
			&online.Error{Op: "authstatus", Class: online.ClassHTTP5xx}), online.ClassHTTP5xx},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := online.Classify(tc.err); got != tc.want {
				t.Fatalf("Classify = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestNewRejectsBadInput(t *testing.T) {
	sim := newSim(t)
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	cases := []struct {
		name   string
		mutate func(*config.Config, *config.Properties)
		want   string
	}{
		{"short key", func(_ *config.Config, p *config.Properties) { p.Key = p.Key[:16] },
			"use_base64_key"},
		{"http idp_url", func(_ *config.Config, p *config.Properties) {
			p.IDPURL = "http://" + sim.Addr()
		}, "idp_url"},
		{"missing ca_file", func(c *config.Config, _ *config.Properties) {
			c.CAFile = filepath.Join(dir, "absent.pem")
		}, "ca_file"},
		{"ca_file without PEM", func(c *config.Config, _ *config.Properties) {
			c.CAFile = notPEM
		}, "ca_file"},
		{"proxy scheme", func(c *config.Config, _ *config.Properties) {
			c.Proxy = "socks5://127.0.0.1:1080"
		}, "proxy"},
		{"proxy without port", func(c *config.Config, _ *config.Properties) {
			c.Proxy = "http://user:secret@127.0.0.1"
		}, "proxy"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, sim)
			props := sim.Properties()
			tc.mutate(cfg, props)
			_, err := online.New(cfg, props, zerologNop(),
				online.WithLoadOptions(config.LoadOptions{AllowInsecure: true}))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("error leaks the proxy password: %v", err)
			}
		})
	}
}
