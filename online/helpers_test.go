package online_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pingid-ssh/pingid-ssh/config"
	"github.com/pingid-ssh/pingid-ssh/online"
	"github.com/pingid-ssh/pingid-ssh/online/pingidtest"
)

const testTimeout = time.Second

func testUsers() map[string]pingidtest.User {
	dev := func(id, name string) pingidtest.Device {
		return pingidtest.Device{ID: id, Name: name, Suite: "OCRA-1:HOTP-SHA256-6:QN12",
			KeyHex: "3132333435363738393031323334353637383930313233343536373839303132"}
	}
	return map[string]pingidtest.User{
		"alice": {Behavior: "approve", Devices: []pingidtest.Device{dev("d1", "phone")}},
		"bob":   {Behavior: "reject", Devices: []pingidtest.Device{dev("d1", "phone")}},
		"carol": {Behavior: "timeout", Devices: []pingidtest.Device{dev("d1", "phone")}},
		"dave":  {Behavior: "otp:123456", Devices: []pingidtest.Device{dev("d1", "token")}},
		"erin": {Behavior: "choose", Devices: []pingidtest.Device{
			dev("d1", "phone"), dev("d2", "tablet")}},
	}
}

func newSim(t *testing.T) *pingidtest.Server {
	t.Helper()
	s, err := pingidtest.Start(pingidtest.Options{Users: testUsers(), Log: zerolog.Nop(),
		DripInterval: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// testConfig is a config with a 1s connect_timeout that trusts sim's CA (if sim is set).
func testConfig(t *testing.T, sim *pingidtest.Server) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.ConnectTimeout = testTimeout
	if sim != nil {
		cfg.CAFile = filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(cfg.CAFile, sim.CACertPEM(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return &cfg
}

func newClient(t *testing.T, cfg *config.Config, props *config.Properties,
	opts ...online.Option) *online.Client {
	t.Helper()
	opts = append([]online.Option{
		online.WithLoadOptions(config.LoadOptions{AllowInsecure: true}),
		online.WithPollInterval(20 * time.Millisecond),
	}, opts...)
	c, err := online.New(cfg, props, zerolog.Nop(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// propsFor returns sim's properties pointed at another host:port (same credentials).
func propsAt(sim *pingidtest.Server, hostport string) *config.Properties {
	p := sim.Properties()
	p.IDPURL = "https://" + hostport + "/pingid"
	return p
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// plainHTTPServer answers every connection with a plain-text HTTP error: no TLS at all.
func plainHTTPServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 512)
				c.Read(buf)
				io.WriteString(c, "HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// fullBacklog returns the address of a listener whose accept queue is full, so the
// kernel drops further SYNs and a connect hangs until its timeout. The socket listens with
// a backlog of 0 and is never accepted from; connections are opened until one times out.
func fullBacklog(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := (&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*syscall.SockaddrInet4).Port}).String()
	for i := 0; i < 64; i++ {
		c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return addr // the queue is full
			}
			t.Fatalf("fill backlog: %v", err)
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatal("backlog never filled")
	return ""
}

// nxdomainResolver runs a DNS server on a 127.0.0.1 UDP socket that answers NXDOMAIN to
// every query, and returns a resolver that asks only it.
func nxdomainResolver(t *testing.T) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := nxdomain(buf[:n]); resp != nil {
				pc.WriteTo(resp, from)
			}
		}
	}()
	addr := pc.LocalAddr().String()
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", addr)
		},
	}
}

// nxdomain builds the answer to query: same id and question, RCODE 3, no records.
func nxdomain(q []byte) []byte {
	if len(q) < 12 {
		return nil
	}
	// Find the end of the first question: labels, a zero byte, then type and class.
	i := 12
	for i < len(q) && q[i] != 0 {
		i += int(q[i]) + 1
	}
	end := i + 5
	if end > len(q) {
		return nil
	}
	resp := make([]byte, end)
	copy(resp, q[:end])
	flags := binary.BigEndian.Uint16(q[2:4])
	flags = 0x8000 | flags&0x7900 | 0x0080 | 3 // QR, opcode+RD kept, RA, NXDOMAIN
	binary.BigEndian.PutUint16(resp[2:4], flags)
	binary.BigEndian.PutUint16(resp[4:6], 1)
	binary.BigEndian.PutUint16(resp[6:8], 0)
	binary.BigEndian.PutUint16(resp[8:10], 0)
	binary.BigEndian.PutUint16(resp[10:12], 0)
	return resp
}

// prompter plays the user: it answers prompts from a script and records what it saw.
type prompter struct {
	mu      sync.Mutex
	answers []string
	infos   []string
	prompts []string
	err     error
	onAsk   func(n int) // called before the n-th answer (from 0)
}

func (p *prompter) Prompt(ctx context.Context, text string, echo bool) (string, error) {
	p.mu.Lock()
	n := len(p.prompts)
	p.prompts = append(p.prompts, text)
	p.mu.Unlock()
	if p.onAsk != nil {
		p.onAsk(n)
	}
	if p.err != nil {
		return "", p.err
	}
	if n >= len(p.answers) {
		<-ctx.Done() // the user never answers
		return "", ctx.Err()
	}
	return p.answers[n], nil
}

func (p *prompter) Info(ctx context.Context, text string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.infos = append(p.infos, text)
	return nil
}

func b64lines(der []byte) string {
	s := base64.StdEncoding.EncodeToString(der)
	var b strings.Builder
	for len(s) > 64 {
		b.WriteString(s[:64] + "\n")
		s = s[64:]
	}
	b.WriteString(s + "\n")
	return b.String()
}

// silent is a listener that accepts and never answers.
func silent(t *testing.T) string { return pingidtest.SilentAddr(t) }
