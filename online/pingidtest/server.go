// Package pingidtest is a local simulator of the PingID API operations that pingid-ssh
// uses (startauthentication, authonline, authoffline, authstatus, cancelauthentication),
// for tests and demos. It checks request signatures with the shared key, signs its
// answers, plays scripted users, and injects faults per user or for the whole server:
// a refused port, a silent listener, a slow drip, 5xx, 429, a malformed body, a bad or
// missing signature and an untrusted certificate.
//
// It listens on loopback only. The errorId values it uses for a rejected push, a wrong
// passcode, a blocked user and a bad request signature are its own; the client treats
// every signed refusal alike, so the exact values do not matter to it.
package pingidtest

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/pingid-ssh/pingid-ssh/config"
)

// errorId values of the simulator's own refusals.
const (
	ErrIDRejected     = 10570 // push rejected on the device
	ErrIDWrongOTP     = 10571 // passcode does not match
	ErrIDBlocked      = 10572 // too many wrong passcodes
	ErrIDBadSession   = 10573 // unknown, finished or cancelled session
	ErrIDBadSignature = 10574 // request signature or credentials do not check
	ErrIDInvalidInput = 400
)

// maxOTPTries is how many wrong passcodes block a session.
const maxOTPTries = 5

// Fault is a failure the simulator injects.
type Fault string

// The faults. FaultRefuse, FaultSilent and FaultBadCert act on connections and apply
// only server-wide; for a single user, FaultRefuse drops the connection once the request
// is read and FaultSilent holds the request unanswered.
const (
	FaultNone         Fault = ""
	FaultRefuse       Fault = "refuse"    // connections refused (port closed)
	FaultSilent       Fault = "silent"    // accepted, never answered
	FaultDrip         Fault = "drip"      // 200 and a body that trickles a byte at a time
	Fault5xx          Fault = "5xx"       // 503
	Fault429          Fault = "429"       // 429 with Retry-After: 1
	FaultMalformed    Fault = "malformed" // 200 with an HTML body
	FaultBadSignature Fault = "badsig"    // answer signed with another key
	FaultUnsigned     Fault = "unsigned"  // answer as plain JSON, no signature
	FaultBadCert      Fault = "badcert"   // a self-signed certificate no client trusts
)

// Faults lists every fault name that ParseFault accepts, FaultNone as "none".
var Faults = []Fault{FaultRefuse, FaultSilent, FaultDrip, Fault5xx, Fault429,
	FaultMalformed, FaultBadSignature, FaultUnsigned, FaultBadCert}

// ParseFault reads a fault name; "" and "none" clear a fault.
func ParseFault(s string) (Fault, error) {
	if s == "" || s == "none" {
		return FaultNone, nil
	}
	for _, f := range Faults {
		if string(f) == s {
			return f, nil
		}
	}
	names := make([]string, 0, len(Faults)+1)
	for _, f := range Faults {
		names = append(names, string(f))
	}
	names = append(names, "none")
	return "", fmt.Errorf("unknown fault %q; valid kinds: %s", s, strings.Join(names, ", "))
}

// Options configure Start.
type Options struct {
	Users map[string]User
	// Listen is a loopback address; default 127.0.0.1:0.
	Listen string
	// CertFile and KeyFile name a server certificate; when empty a fresh CA and a
	// certificate for 127.0.0.1, ::1 and localhost are generated (see CACertPEM).
	CertFile, KeyFile string
	Log               zerolog.Logger
	// LegacyAliasHeader signs answers with "org_alias" in the JOSE header instead of
	// "orgAlias", as older service versions did.
	LegacyAliasHeader bool
	// DripInterval is the pause between bytes of FaultDrip; default 200ms.
	DripInterval time.Duration
}

// Server is a running simulator. Its methods are safe for concurrent use.
type Server struct {
	log   zerolog.Logger
	ln    *switchListener
	srv   *http.Server
	auth  *authority
	cert  tls.Certificate
	props config.Properties
	opts  Options
	quit  chan struct{}

	mu       sync.Mutex
	users    map[string]User
	faults   map[string]Fault // "" is the server-wide fault
	sessions map[string]*session
	calls    map[string]int
	closed   bool
}

// New starts a simulator for users on a random loopback port with a generated
// certificate. It panics if it cannot start, as httptest servers do; use Start to get the
// error instead.
func New(users map[string]User, log zerolog.Logger) *Server {
	s, err := Start(Options{Users: users, Log: log})
	if err != nil {
		panic("pingidtest: " + err.Error())
	}
	return s
}

// Start validates o.Users and starts a simulator. It refuses non-loopback addresses.
func Start(o Options) (*Server, error) {
	if err := validateUsers(o.Users); err != nil {
		return nil, err
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	if err := checkLoopback(o.Listen); err != nil {
		return nil, err
	}
	if o.DripInterval <= 0 {
		o.DripInterval = 200 * time.Millisecond
	}

	s := &Server{
		log:      o.Log.With().Str("component", "pingidtest").Logger(),
		opts:     o,
		quit:     make(chan struct{}),
		users:    o.Users,
		faults:   map[string]Fault{},
		sessions: map[string]*session{},
		calls:    map[string]int{},
	}
	if s.users == nil {
		s.users = map[string]User{}
	}
	var err error
	if s.auth, err = newAuthority(); err != nil {
		return nil, err
	}
	s.cert = s.auth.good
	if o.CertFile != "" || o.KeyFile != "" {
		if s.cert, err = tls.LoadX509KeyPair(o.CertFile, o.KeyFile); err != nil {
			return nil, fmt.Errorf("load certificate: %w", err)
		}
		s.auth.caPEM = nil
	}

	if s.ln, err = newSwitchListener(o.Listen); err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	rand.Read(key)
	s.props = config.Properties{
		Key:          key,
		UseSignature: true,
		Token:        randomHex(16),
		OrgAlias:     randomAlias(),
		IDPURL:       "https://" + s.ln.addr + "/pingid",
	}
	s.props.AdminURL = s.props.IDPURL
	s.props.AuthenticatorURL = s.props.IDPURL

	tlsCfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: s.getCertificate,
	}
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(debugWriter{s.log}, "", 0),
	}
	s.srv.SetKeepAlivesEnabled(true)
	go s.srv.Serve(tls.NewListener(s.ln, tlsCfg))
	s.log.Info().Str("url", s.props.IDPURL).Int("users", len(s.users)).Msg("simulator started")
	return s, nil
}

func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("listen address %q is not a loopback address", addr)
	}
	return nil
}

func (s *Server) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if s.fault("") == FaultBadCert {
		return &s.auth.bad, nil
	}
	return &s.cert, nil
}

// URL is the idp_url of the simulator, such as https://127.0.0.1:41234/pingid.
func (s *Server) URL() string { return s.props.IDPURL }

// Addr is the host:port the simulator listens on.
func (s *Server) Addr() string { return s.ln.addr }

// Properties returns a copy of the pingid.properties that fits this simulator: its
// fresh random key, token and org alias, and its URL.
func (s *Server) Properties() *config.Properties {
	p := s.props
	p.Key = append([]byte(nil), s.props.Key...)
	return &p
}

// PropertiesText is Properties in the pingid.properties file format.
func (s *Server) PropertiesText() string {
	p := s.props
	return fmt.Sprintf("# pingid-ssh simulator at %s\nuse_base64_key=%s\nuse_signature=true\n"+
		"token=%s\nidp_url=%s\norg_alias=%s\nadmin_url=%s\nauthenticator_url=%s\n",
		s.ln.addr, base64.StdEncoding.EncodeToString(p.Key), p.Token, p.IDPURL, p.OrgAlias,
		p.AdminURL, p.AuthenticatorURL)
}

// WriteProperties writes PropertiesText to path with mode 0600.
func (s *Server) WriteProperties(path string) error {
	return os.WriteFile(path, []byte(s.PropertiesText()), 0o600)
}

// CACertPEM is the PEM of the generated CA that signed the server certificate, or nil
// when the certificate came from files.
func (s *Server) CACertPEM() []byte { return append([]byte(nil), s.auth.caPEM...) }

// SetFault switches fault f on for user, or for the whole server when user is "";
// FaultNone clears it. A user's own fault wins over the server-wide one.
func (s *Server) SetFault(user string, f Fault) error {
	if user != "" && (f == FaultBadCert) {
		return fmt.Errorf("fault %s applies to the whole server only", f)
	}
	s.mu.Lock()
	prev := s.faults[user]
	if f == FaultNone {
		delete(s.faults, user)
	} else {
		s.faults[user] = f
	}
	s.mu.Unlock()

	if user == "" {
		if prev == FaultRefuse && f != FaultRefuse {
			if err := s.ln.setRefuse(false); err != nil {
				return err
			}
		}
		if f == FaultRefuse {
			if err := s.ln.setRefuse(true); err != nil {
				return err
			}
		}
		s.ln.setSilent(f == FaultSilent)
	}
	s.log.Info().Str("user", user).Str("fault", string(f)).Msg("fault set")
	return nil
}

func (s *Server) fault(user string) Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.faults[user]; ok && user != "" {
		return f
	}
	return s.faults[""]
}

// Calls reports how many verified requests op has received.
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// Close stops the simulator and releases held connections and waiting requests.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.quit)
	s.mu.Unlock()
	s.ln.Close()
	s.srv.Close()
}

// AdminHandler serves fault switching for other processes: POST /fault?user=U&kind=K
// (user empty for the whole server, kind "none" to clear) and GET /healthz. Serve it on a
// loopback listener only.
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/fault", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "use POST", http.StatusMethodNotAllowed)
			return
		}
		f, err := ParseFault(r.URL.Query().Get("kind"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := s.SetFault(r.URL.Query().Get("user"), f); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	return mux
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func randomAlias() string {
	h := randomHex(16)
	return strings.Join([]string{h[:8], h[8:12], h[12:16], h[16:20], h[20:]}, "-")
}

// debugWriter sends the HTTP server's own messages (TLS handshake failures the faults
// provoke) to the debug log.
type debugWriter struct{ log zerolog.Logger }

func (w debugWriter) Write(p []byte) (int, error) {
	w.log.Debug().Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}
