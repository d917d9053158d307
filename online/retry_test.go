package online_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pingid-ssh/pingid-ssh/config"
	"github.com/pingid-ssh/pingid-ssh/online"
)

// TestRetryAfterWithinDeadline: a probe honours Retry-After when the wait fits in its
// connect_timeout budget, and returns the 429 at once when it does not.
func TestRetryAfterWithinDeadline(t *testing.T) {
	cases := []struct {
		name      string
		connect   time.Duration
		want      online.Class
		wantCalls int32
	}{
		{"wait fits: retried", 5 * time.Second, online.ClassOK, 2},
		{"wait does not fit: 429 returned", 800 * time.Millisecond, online.ClassHTTP429, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int32
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter,
				r *http.Request) {
				if calls.Add(1) == 1 {
					w.Header().Set("Retry-After", "1")
					w.WriteHeader(http.StatusTooManyRequests)
					return
				}
				w.WriteHeader(http.StatusNotFound)
			}))
			defer srv.Close()
			caFile := filepath.Join(t.TempDir(), "ca.pem")
			os.WriteFile(caFile, certPEM(srv.TLS.Certificates[0]), 0o600)
			cfg := config.Default()
			cfg.ConnectTimeout = tc.connect
			cfg.CAFile = caFile
			props := &config.Properties{Key: make([]byte, 32), Token: "t", OrgAlias: "o",
				IDPURL: srv.URL + "/pingid"}
			c := newClient(t, &cfg, props)

			start := time.Now()
			res := c.Probe(context.Background())
			if res.Class != tc.want || calls.Load() != tc.wantCalls {
				t.Fatalf("class %s after %d calls, want %s after %d", res.Class, calls.Load(),
					tc.want, tc.wantCalls)
			}
			if elapsed := time.Since(start); elapsed > tc.connect+time.Second {
				t.Fatalf("took %s", elapsed)
			}
		})
	}
}
