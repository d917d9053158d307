package online

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxConnectAnswer bounds the proxy's answer to CONNECT.
const maxConnectAnswer = 64 << 10

// parseProxy reads the proxy key: "http://[user:password@]host:port",
// "https://[user:password@]host:port" or a bare "host:port" (plain HTTP). Credentials may
// be percent-encoded; they are decoded before use and never logged.
func parseProxy(s string) (*url.URL, error) {
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		// url.Parse errors quote the input, which may hold a password.
		return nil, errors.New("proxy: not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("proxy: scheme %q is not http or https", u.Scheme)
	}
	if u.Hostname() == "" || u.Port() == "" {
		return nil, errors.New("proxy: needs a host and a port")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("proxy: must not have a path, query or fragment")
	}
	return u, nil
}

// dialProxy opens a CONNECT tunnel to addr through the proxy. TLS to an https proxy uses
// the proxy's own settings (proxy_verify_cert, proxy_ca_file); the API's TLS then runs
// inside the tunnel with the API's settings.
func (c *Client) dialProxy(ctx context.Context, addr string) (net.Conn, error) {
	proxyAddr := c.proxy.Host
	conn, err := c.dialDirect(ctx, &tracker{}, "tcp", proxyAddr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", proxyAddr, err)
	}
	ok := false
	defer func() {
		if !ok {
			conn.Close()
		}
	}()
	if dl, has := ctx.Deadline(); has {
		conn.SetDeadline(dl)
	} else {
		conn.SetDeadline(time.Now().Add(c.connect))
	}

	if c.proxyTLS != nil {
		tconn := tls.Client(conn, c.proxyTLS)
		if err := tconn.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("TLS to %s: %w", proxyAddr, err)
		}
		conn = tconn
	}

	req := &http.Request{
		Method: http.MethodConnect,
		URL:    &url.URL{Opaque: addr},
		Host:   addr,
		Header: http.Header{},
	}
	if u := c.proxy.User; u != nil {
		pass, _ := u.Password()
		cred := base64.StdEncoding.EncodeToString([]byte(u.Username() + ":" + pass))
		req.Header.Set("Proxy-Authorization", "Basic "+cred)
	}
	if err := req.Write(conn); err != nil {
		return nil, fmt.Errorf("CONNECT %s: %w", addr, err)
	}
	// The proxy's answer is bounded: a proxy that sends headers without end is a failure,
	// not a way to make the client allocate.
	br := bufio.NewReaderSize(io.LimitReader(conn, maxConnectAnswer), 4096)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, fmt.Errorf("CONNECT %s: %w", addr, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("CONNECT %s: proxy answered %s", addr, resp.Status)
	}
	if br.Buffered() > 0 {
		return nil, fmt.Errorf("CONNECT %s: proxy sent data before the tunnel opened", addr)
	}
	conn.SetDeadline(time.Time{})
	ok = true
	return conn, nil
}
