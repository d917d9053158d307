package online

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/rs/zerolog"

	"github.com/pingid-ssh/pingid-ssh/config"
	"github.com/pingid-ssh/pingid-ssh/online/internal/wire"
)

// Retry tuning. A retry happens only when it fits in the call's deadline.
const (
	retryWaitMin = 100 * time.Millisecond
	retryWaitMax = 800 * time.Millisecond
	retryMax     = 2
	// minAttempt is the least time left that makes another attempt worth starting.
	minAttempt = 50 * time.Millisecond
	// maxRetryAfter caps a server's Retry-After.
	maxRetryAfter = 30 * time.Second
	// maxIdleConns bounds the kept-alive connections to the API per transport.
	maxIdleConns = 64
	// spAlias names the kind of service provider to PingID.
	spAlias = "web"
)

// Option changes how New builds a Client.
type Option func(*options)

type options struct {
	resolver     *net.Resolver
	pollInterval time.Duration
	loadOpts     config.LoadOptions
	now          func() time.Time
}

// WithResolver makes the client resolve names with r instead of the system resolver.
func WithResolver(r *net.Resolver) Option { return func(o *options) { o.resolver = r } }

// WithPollInterval sets how often authstatus is polled while a push waits (default 1s).
func WithPollInterval(d time.Duration) Option {
	return func(o *options) { o.pollInterval = d }
}

// WithLoadOptions sets how ca_file and proxy_ca_file are checked before they are trusted
// (default: they must be owned by root and writable by nobody else).
func WithLoadOptions(lo config.LoadOptions) Option {
	return func(o *options) { o.loadOpts = lo }
}

// Client talks to the PingID API described by a pingid.properties file. It is safe for
// concurrent use; all its settings are fixed by New.
type Client struct {
	log          zerolog.Logger
	key          []byte
	token        string
	orgAlias     string
	base         string // idp_url without trailing slash
	connect      time.Duration
	callTimeout  time.Duration
	pollInterval time.Duration
	now          func() time.Time

	resolver *net.Resolver
	dialer   *net.Dialer
	proxy    *url.URL
	proxyTLS *tls.Config

	short     *retryablehttp.Client // every call but authonline
	long      *retryablehttp.Client // authonline, which waits for the user
	transport *http.Transport

	observer atomic.Pointer[func(Class, time.Duration)]
	pending  sync.WaitGroup // background cancelauthentication calls
}

// New builds a client from pingid.conf and pingid.properties. It reads ca_file and
// proxy_ca_file; it never uses HTTP_PROXY or other proxy variables of the environment,
// and never switches certificate verification off for the API itself.
func New(cfg *config.Config, props *config.Properties, log zerolog.Logger,
	opts ...Option) (*Client, error) {
	o := options{pollInterval: time.Second, now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	if cfg == nil || props == nil {
		return nil, errors.New("new client: missing config or properties")
	}
	if len(props.Key) < wire.MinKeyLen {
		return nil, fmt.Errorf("new client: use_base64_key is %d bytes; HS256 needs at least %d",
			len(props.Key), wire.MinKeyLen)
	}
	base, err := url.Parse(props.IDPURL)
	if err != nil || base.Scheme != "https" || base.Host == "" {
		return nil, fmt.Errorf("new client: idp_url %q is not an https URL", props.IDPURL)
	}
	if cfg.ConnectTimeout <= 0 {
		return nil, errors.New("new client: connect_timeout must be positive")
	}
	if o.pollInterval <= 0 {
		o.pollInterval = time.Second
	}

	c := &Client{
		log:          log.With().Str("component", "online").Logger(),
		key:          append([]byte(nil), props.Key...),
		token:        props.Token,
		orgAlias:     props.OrgAlias,
		base:         trimSlash(props.IDPURL),
		connect:      cfg.ConnectTimeout,
		callTimeout:  2 * cfg.ConnectTimeout,
		pollInterval: o.pollInterval,
		now:          o.now,
		resolver:     o.resolver,
		dialer:       &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second},
	}
	if c.resolver == nil {
		c.resolver = net.DefaultResolver
	}

	roots, err := rootPool(cfg.CAFile, o.loadOpts)
	if err != nil {
		return nil, fmt.Errorf("new client: ca_file: %w", err)
	}
	if cfg.Proxy != "" {
		if c.proxy, err = parseProxy(cfg.Proxy); err != nil {
			return nil, fmt.Errorf("new client: %w", err)
		}
		if c.proxy.Scheme == "https" {
			proxyRoots, err := rootPool(cfg.ProxyCAFile, o.loadOpts)
			if err != nil {
				return nil, fmt.Errorf("new client: proxy_ca_file: %w", err)
			}
			c.proxyTLS = &tls.Config{
				RootCAs:            proxyRoots,
				ServerName:         c.proxy.Hostname(),
				MinVersion:         tls.VersionTLS12,
				InsecureSkipVerify: !cfg.ProxyVerifyCert, // only ever by explicit config
			}
		}
	}

	c.transport = &http.Transport{
		Proxy:                 nil, // the environment's proxy settings are never used
		DialContext:           c.dial,
		TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   cfg.ConnectTimeout,
		ResponseHeaderTimeout: cfg.ConnectTimeout,
		// The daemon runs many logins at once; a pool smaller than that makes most calls
		// pay a new TLS handshake on each side.
		MaxIdleConns:           maxIdleConns,
		MaxIdleConnsPerHost:    maxIdleConns,
		IdleConnTimeout:        60 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
	longTransport := c.transport.Clone()
	longTransport.ResponseHeaderTimeout = 0 // bounded by the login's deadline instead
	c.short = c.retrying(c.transport)
	c.long = c.retrying(longTransport)
	return c, nil
}

// Close ends idle connections and waits, at most connect_timeout, for background
// cancelauthentication calls started when a login's context ended.
func (c *Client) Close() {
	done := make(chan struct{})
	go func() { c.pending.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(c.connect):
	}
	c.transport.CloseIdleConnections()
	c.long.HTTPClient.CloseIdleConnections()
}

// setObserver registers f to hear the class and latency of every call.
func (c *Client) setObserver(f func(Class, time.Duration)) { c.observer.Store(&f) }

func (c *Client) observe(class Class, latency time.Duration) {
	if f := c.observer.Load(); f != nil {
		(*f)(class, latency)
	}
}

func (c *Client) retrying(t *http.Transport) *retryablehttp.Client {
	return &retryablehttp.Client{
		HTTPClient: &http.Client{
			Transport: t,
			// A redirect is never followed: the API does not send them, and following
			// one would carry a signed request elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		RetryWaitMin: retryWaitMin,
		RetryWaitMax: retryWaitMax,
		RetryMax:     retryMax,
		CheckRetry:   checkRetry,
		Backoff:      backoff,
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}
}

// checkRetry allows another attempt only when repeating is safe and fits in the deadline:
// a refused connection (the request never left) for any call; a reset connection, 429,
// 502, 503 or 504 only for idempotent calls. Timeouts are never retried: a silent server
// would otherwise cost the sum of the attempts.
func checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	tr := trackerFrom(ctx)
	if tr == nil {
		return false, nil
	}
	worst := retryWaitMax
	if err != nil {
		if !isRefused(err) && !(tr.idempotent && isReset(err)) {
			return false, nil
		}
	} else {
		switch resp.StatusCode {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable,
			http.StatusGatewayTimeout:
		default:
			return false, nil
		}
		if !tr.idempotent {
			return false, nil
		}
		if ra, ok := retryAfter(resp); ok {
			worst = ra
		}
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < worst+minAttempt {
		return false, nil
	}
	return true, nil
}

// backoff waits a jittered, doubling interval, or what a 429/503 asks in Retry-After.
func backoff(lo, hi time.Duration, attempt int, resp *http.Response) time.Duration {
	if resp != nil {
		if ra, ok := retryAfter(resp); ok {
			return ra
		}
	}
	d := lo << min(attempt, 10)
	if d > hi || d <= 0 {
		d = hi
	}
	return d/2 + rand.N(d/2+1)
}

// retryAfter reads Retry-After (seconds or an HTTP date) of a 429 or 503.
func retryAfter(resp *http.Response) (time.Duration, bool) {
	if resp.StatusCode != http.StatusTooManyRequests &&
		resp.StatusCode != http.StatusServiceUnavailable {
		return 0, false
	}
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = time.Until(t)
	} else {
		return 0, false
	}
	return max(0, min(d, maxRetryAfter)), true
}

// call sends one operation and returns its verified responseBody. Every failure is an
// *Error naming op and its class. The call is bounded by ctx and, unless long, by the
// client's per-call deadline.
func (c *Client) call(ctx context.Context, op string, body any, idempotent, long bool,
) (*wire.ResponseBody, error) {
	start := c.now()
	rb, status, err := c.roundTrip(ctx, op, body, idempotent, long)
	latency := c.now().Sub(start)
	class := Classify(err)
	if err != nil && ctx.Err() != nil {
		// The caller gave up (the login's deadline, a closed connection): that says
		// nothing about the service, and must not mark it down for other logins.
		c.log.Debug().Str("op", op).Err(err).Msg("pingid call abandoned by the caller")
		return nil, fmt.Errorf("%s: %w: %w", op, ErrTimeout, ctx.Err())
	}
	if !long || class != ClassOK {
		// A long call's latency is the user's time to answer, not the service's.
		c.observe(class, latency)
	}

	ev := c.log.Debug().Str("op", op).Str("class", string(class)).
		Int64("latency_ms", latency.Milliseconds())
	if status != 0 {
		ev = ev.Int("status", status)
	}
	if rb != nil {
		ev = ev.Str("unique_msg_id", safeText(rb.UniqueMsgID, 128)).Int("error_id", *rb.ErrorID)
	}
	if err != nil {
		ev = ev.Err(err)
	}
	ev.Msg("pingid call")
	return rb, err
}

func (c *Client) roundTrip(ctx context.Context, op string, body any, idempotent, long bool,
) (*wire.ResponseBody, int, error) {
	fail := func(class Class, err error) (*wire.ResponseBody, int, error) {
		return nil, 0, &Error{Op: op, Class: class, Err: err}
	}
	jws, err := c.sign(body)
	if err != nil {
		return fail(ClassMalformed, err)
	}

	if !long {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.callTimeout)
		defer cancel()
	}
	tr := &tracker{idempotent: idempotent}
	ctx = withTrace(context.WithValue(ctx, trackerKey{}, tr), tr)

	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodPost,
		c.base+"/rest/4/"+op+"/do", []byte(jws))
	if err != nil {
		return fail(ClassMalformed, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, application/jose, */*")

	client := c.short
	if long {
		client = c.long
	}
	resp, err := client.Do(req)
	if err != nil {
		return fail(classifyTransport(err, tr.get()), err)
	}
	defer resp.Body.Close()

	status := resp.StatusCode
	switch {
	case status >= 500:
		return nil, status, &Error{Op: op, Class: ClassHTTP5xx, Err: fmt.Errorf("HTTP %d", status)}
	case status == http.StatusTooManyRequests:
		return nil, status, &Error{Op: op, Class: ClassHTTP429, Err: errors.New("HTTP 429")}
	}

	tr.set(phaseBody)
	data, err := io.ReadAll(io.LimitReader(resp.Body, wire.MaxMessage+1))
	if err == nil && ctx.Err() != nil {
		// A body cut short by the deadline can read as a clean EOF; never trust it.
		err = ctx.Err()
	}
	if err != nil {
		return nil, status, &Error{Op: op, Class: classifyTransport(err, phaseBody),
			Err: fmt.Errorf("read body: %w", err)}
	}
	if len(data) > wire.MaxMessage {
		return nil, status, &Error{Op: op, Class: ClassMalformed,
			Err: fmt.Errorf("body larger than %d bytes", wire.MaxMessage)}
	}
	rb, class, err := c.decode(status, data)
	if err != nil {
		return rb, status, &Error{Op: op, Class: class, Err: err}
	}
	return rb, status, nil
}

// decode verifies and reads an answer. Only a body signed with the shared key, naming
// our organisation, is believed; an unsigned body is always a failure, whatever it says.
func (c *Client) decode(status int, data []byte) (*wire.ResponseBody, Class, error) {
	statusClass := func() Class {
		switch {
		case status == http.StatusUnauthorized || status == http.StatusForbidden:
			return ClassHTTP401
		case status >= 400:
			return ClassHTTP4xx
		}
		return ""
	}

	h, payload, err := wire.Verify(c.key, data)
	switch {
	case errors.Is(err, wire.ErrNotJWS):
		if sc := statusClass(); sc != "" {
			return nil, sc, fmt.Errorf("HTTP %d with an unsigned body", status)
		}
		var unsigned wire.Response
		if json.Unmarshal(data, &unsigned) == nil && unsigned.ResponseBody != nil {
			return nil, ClassHTTP401, fmt.Errorf("HTTP %d with an unsigned answer", status)
		}
		return nil, ClassMalformed, fmt.Errorf("HTTP %d: body is neither JWS nor an API answer",
			status)
	case err != nil:
		return nil, ClassHTTP401, fmt.Errorf("response signature: %w", err)
	}
	if alias := h.OrgAlias(); alias != c.orgAlias {
		return nil, ClassHTTP401, fmt.Errorf("response names org alias %q, not ours",
			safeText(alias, 64))
	}
	if tok, ok := h["token"]; ok && tok != c.token {
		return nil, ClassHTTP401, errors.New("response carries another token")
	}
	if sc := statusClass(); sc == ClassHTTP401 {
		return nil, sc, fmt.Errorf("HTTP %d", status)
	}
	if status != http.StatusOK && status < 400 {
		return nil, ClassMalformed, fmt.Errorf("unexpected HTTP %d", status)
	}

	var resp wire.Response
	dec := json.NewDecoder(bytes.NewReader(payload))
	if err := dec.Decode(&resp); err != nil {
		return nil, ClassMalformed, fmt.Errorf("response payload: %w", err)
	}
	if resp.ResponseBody == nil || resp.ResponseBody.ErrorID == nil {
		return nil, ClassMalformed, errors.New("response payload has no responseBody.errorId")
	}
	// A signed answer with an error status still carries an errorId the flow reads
	// (for example "user does not exist").
	return resp.ResponseBody, "", nil
}

// sign builds the request envelope for body.
func (c *Client) sign(body any) (string, error) {
	rawBody, err := json.Marshal(body)
	if err != nil {
		return "", fmt.Errorf("encode request: %w", err)
	}
	payload, err := json.Marshal(wire.Request{
		ReqHeader: wire.ReqHeader{
			Locale:    "en",
			OrgAlias:  c.orgAlias,
			SecretKey: c.token,
			Timestamp: wire.Timestamp(c.now()),
			Version:   wire.Version,
		},
		ReqBody: rawBody,
	})
	if err != nil {
		return "", fmt.Errorf("encode request: %w", err)
	}
	return wire.Sign(c.key, wire.Header{"org_alias": c.orgAlias, "token": c.token}, payload)
}

// withTrace records the phase a request reaches.
func withTrace(ctx context.Context, tr *tracker) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		TLSHandshakeStart:    func() { tr.set(phaseTLS) },
		WroteRequest:         func(httptrace.WroteRequestInfo) { tr.set(phaseWait) },
		GotFirstResponseByte: func() { tr.set(phaseBody) },
	})
}

// dial connects to the API host, directly or through the configured proxy, recording the
// phase for classification. Name resolution uses the client's resolver.
func (c *Client) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	tr := trackerFrom(ctx)
	if tr == nil {
		tr = &tracker{} // a dial not started by call (never expected); phases go nowhere
	}
	ctx, cancel := context.WithTimeout(ctx, c.connect)
	defer cancel()
	if c.proxy != nil {
		tr.set(phaseProxy)
		conn, err := c.dialProxy(ctx, addr)
		if err != nil {
			return nil, &proxyError{err}
		}
		return conn, nil
	}
	return c.dialDirect(ctx, tr, network, addr)
}

func (c *Client) dialDirect(ctx context.Context, tr *tracker, network, addr string,
) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var ips []net.IPAddr
	if ip := net.ParseIP(host); ip != nil {
		ips = []net.IPAddr{{IP: ip}}
	} else {
		tr.set(phaseDNS)
		if ips, err = c.resolver.LookupIPAddr(ctx, host); err != nil {
			return nil, err
		}
	}
	tr.set(phaseConnect)
	var last error
	for _, ip := range ips {
		conn, err := c.dialer.DialContext(ctx, network, net.JoinHostPort(ip.IP.String(), port))
		if err == nil {
			return conn, nil
		}
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	if last == nil {
		last = &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
	}
	return nil, last
}

// rootPool is the system roots plus the PEM certificates of file, when set.
func rootPool(file string, lo config.LoadOptions) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if file == "" {
		return pool, nil
	}
	data, err := config.ReadTrusted(file, lo)
	if err != nil {
		return nil, err
	}
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s: no PEM certificate found", file)
	}
	return pool, nil
}

func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
func isReset(err error) bool   { return errors.Is(err, syscall.ECONNRESET) }

func trimSlash(s string) string {
	for len(s) > 0 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	return s
}

// safeText makes server-provided text safe to show or log: no control characters, at
// most n characters.
func safeText(s string, n int) string {
	var b []rune
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			continue
		}
		if len(b) == n {
			break
		}
		b = append(b, r)
	}
	return string(b)
}
