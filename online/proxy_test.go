package online_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pingid-ssh/pingid-ssh/online"
)

func zerologNop() zerolog.Logger { return zerolog.Nop() }

// connectProxy runs a minimal HTTP CONNECT proxy on loopback that requires Basic
// credentials user:pass and tunnels only to loopback addresses.
func connectProxy(t *testing.T, user, pass string) string {
	addr, _ := countingProxy(t, user, pass, nil)
	return addr
}

// countingProxy is connectProxy that counts tunnels; with tlsCfg it speaks TLS itself.
func countingProxy(t *testing.T, user, pass string, tlsCfg *tls.Config) (string,
	*atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	t.Cleanup(func() { ln.Close() })
	var tunnels atomic.Int32
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil || req.Method != http.MethodConnect {
					io.WriteString(c, "HTTP/1.1 405 Method Not Allowed\r\n\r\n")
					return
				}
				if req.Header.Get("Proxy-Authorization") != want {
					io.WriteString(c, "HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
					return
				}
				host, _, _ := net.SplitHostPort(req.Host)
				if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
					io.WriteString(c, "HTTP/1.1 403 Forbidden\r\n\r\n")
					return
				}
				up, err := net.DialTimeout("tcp", req.Host, 2*time.Second)
				if err != nil {
					io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
					return
				}
				defer up.Close()
				up.SetDeadline(time.Now().Add(10 * time.Second))
				tunnels.Add(1)
				io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
				go io.Copy(up, br)
				io.Copy(c, up)
			}()
		}
	}()
	return ln.Addr().String(), &tunnels
}

func TestProxyWithEncodedCredentials(t *testing.T) {
	sim := newSim(t)
	addr, tunnels := countingProxy(t, "svc@corp", "p:ss w%rd", nil)
	cfg := testConfig(t, sim)
	cfg.Proxy = "http://svc%40corp:p%3Ass%20w%25rd@" + addr
	c := newClient(t, cfg, sim.Properties())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if res := c.Probe(ctx); res.Class != online.ClassOK {
		t.Fatalf("probe through proxy: %+v", res)
	}
	res, err := c.Authenticate(ctx, "alice", &prompter{}, 3)
	if err != nil || res == nil {
		t.Fatalf("login through proxy: %v", err)
	}
	if tunnels.Load() == 0 {
		t.Fatal("no tunnel went through the proxy")
	}
}

func TestEnvironmentProxyIgnored(t *testing.T) {
	// A proxy named by the environment must not be used: it points at a closed port, so
	// any use of it would fail the probe.
	closed := closedPort(t)
	t.Setenv("HTTPS_PROXY", "http://"+closed)
	t.Setenv("HTTP_PROXY", "http://"+closed)
	t.Setenv("NO_PROXY", "")
	sim := newSim(t)
	c := newClient(t, testConfig(t, sim), sim.Properties())
	if res := c.Probe(context.Background()); res.Class != online.ClassOK {
		t.Fatalf("probe = %+v; the environment's proxy was used", res)
	}
}

func TestHTTPSProxy(t *testing.T) {
	// The proxy's certificate comes from an httptest server: self-signed for 127.0.0.1.
	certSrc := httptest.NewTLSServer(http.NotFoundHandler())
	defer certSrc.Close()
	proxyCA := filepath.Join(t.TempDir(), "proxy-ca.pem")
	os.WriteFile(proxyCA, certPEM(certSrc.TLS.Certificates[0]), 0o600)

	cases := []struct {
		name   string
		caFile string
		verify bool
		want   online.Class
	}{
		{"proxy CA trusted", proxyCA, true, online.ClassOK},
		{"proxy CA unknown", "", true, online.ClassProxy},
		{"proxy verification off by config", "", false, online.ClassOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sim := newSim(t)
			addr, tunnels := countingProxy(t, "u", "p", certSrc.TLS.Clone())
			cfg := testConfig(t, sim)
			cfg.Proxy = "https://u:p@" + addr
			cfg.ProxyCAFile = tc.caFile
			cfg.ProxyVerifyCert = tc.verify
			c := newClient(t, cfg, sim.Properties())
			res := c.Probe(context.Background())
			if res.Class != tc.want {
				t.Fatalf("class %s, want %s (%v)", res.Class, tc.want, res.Err)
			}
			if (tunnels.Load() > 0) != (tc.want == online.ClassOK) {
				t.Fatalf("%d tunnels", tunnels.Load())
			}
		})
	}
}
