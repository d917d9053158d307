package pingidtest

import (
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pingid-ssh/pingid-ssh/online/internal/wire"
)

// maxClockSkew is how far a request's timestamp may be from the simulator's clock.
const maxClockSkew = 5 * time.Minute

// pushTimeout bounds how long a synchronous authonline waits for a push never answered.
const pushTimeout = 2 * time.Minute

type session struct {
	id        string
	user      string
	state     string // push, otp, choose, done, cancelled
	otpTries  int
	device    int // index into the user's devices
	cancelled bool
}

// answer is what an operation replies before faults are applied.
type answer struct {
	status int
	body   map[string]any
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		s.serveProbe(w, r)
		return
	}
	op, ok := operation(r.URL.Path)
	if r.Method != http.MethodPost || !ok {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, wire.MaxMessage+1))
	if err != nil || len(data) > wire.MaxMessage {
		s.plainError(w, http.StatusBadRequest, ErrIDInvalidInput, "unreadable request")
		return
	}

	_, reqBody, err := s.verifyRequest(data)
	if err != nil {
		s.log.Debug().Str("op", op).Err(err).Msg("request refused")
		s.plainError(w, http.StatusUnauthorized, ErrIDBadSignature, "request not authenticated")
		return
	}
	user := s.userOf(reqBody)
	s.mu.Lock()
	s.calls[op]++
	s.mu.Unlock()

	f := s.fault(user)
	if s.preFault(w, r, f) {
		return
	}
	a := s.handle(r, op, reqBody)
	s.log.Debug().Str("op", op).Str("user", user).Int("error_id", a.body["errorId"].(int)).
		Msg("call")
	s.reply(w, r, a, f)
}

func operation(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, "/pingid/rest/4/")
	if !ok {
		return "", false
	}
	op, ok := strings.CutSuffix(rest, "/do")
	switch op {
	case "startauthentication", "authonline", "authoffline", "authstatus",
		"cancelauthentication":
		return op, ok
	}
	return "", false
}

// serveProbe answers a GET as a web server in front of the API would, faults included.
func (s *Server) serveProbe(w http.ResponseWriter, r *http.Request) {
	f := s.fault("")
	if s.preFault(w, r, f) {
		return
	}
	switch f {
	case Fault5xx, Fault429:
		s.reply(w, r, answer{}, f)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, "pingid-ssh simulator\n")
}

// verifyRequest checks the envelope as the service does: HS256 under the shared key, the
// org alias and token in the JOSE header and in reqHeader, a version and a fresh
// timestamp.
func (s *Server) verifyRequest(data []byte) (*wire.Request, map[string]json.RawMessage, error) {
	h, payload, err := wire.Verify(s.props.Key, data)
	if err != nil {
		return nil, nil, err
	}
	if h["org_alias"] != s.props.OrgAlias || h["token"] != s.props.Token {
		return nil, nil, errString("JOSE header does not name this organisation")
	}
	var req wire.Request
	if err := json.Unmarshal(payload, &req); err != nil {
		return nil, nil, err
	}
	rh := req.ReqHeader
	if rh.OrgAlias != s.props.OrgAlias || rh.SecretKey != s.props.Token {
		return nil, nil, errString("reqHeader credentials do not match")
	}
	if rh.Version == "" || rh.Locale == "" {
		return nil, nil, errString("reqHeader lacks version or locale")
	}
	ts, err := wire.ParseTimestamp(rh.Timestamp)
	if err != nil {
		return nil, nil, errString("reqHeader timestamp unreadable")
	}
	if d := time.Since(ts); d > maxClockSkew || d < -maxClockSkew {
		return nil, nil, errString("reqHeader timestamp out of range")
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(req.ReqBody, &body); err != nil {
		return nil, nil, err
	}
	return &req, body, nil
}

type errString string

func (e errString) Error() string { return string(e) }

func str(body map[string]json.RawMessage, key string) string {
	var v string
	json.Unmarshal(body[key], &v)
	return v
}

// userOf names the user a request is about, directly or through its session.
func (s *Server) userOf(body map[string]json.RawMessage) string {
	if u := str(body, "userName"); u != "" {
		return u
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess := s.sessions[str(body, "sessionId")]; sess != nil {
		return sess.user
	}
	return ""
}

// preFault applies the faults that replace the answer entirely; it reports whether it did.
func (s *Server) preFault(w http.ResponseWriter, r *http.Request, f Fault) bool {
	switch f {
	case FaultRefuse:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				if tc, ok := conn.(interface{ NetConn() net.Conn }); ok {
					if tcp, ok := tc.NetConn().(*net.TCPConn); ok {
						tcp.SetLinger(0)
					}
				}
				conn.Close()
				return true
			}
		}
		return true
	case FaultSilent:
		select {
		case <-r.Context().Done():
		case <-s.quit:
		}
		return true
	}
	return false
}

func (s *Server) handle(r *http.Request, op string, body map[string]json.RawMessage) answer {
	switch op {
	case "startauthentication":
		return s.start(body)
	case "authonline":
		return s.authOnline(r, body)
	case "authoffline":
		return s.authOffline(body)
	case "authstatus":
		return s.authStatus(body)
	default:
		return s.cancel(body)
	}
}

func ok(id int, msg string) answer {
	return answer{status: http.StatusOK, body: map[string]any{"errorId": id, "errorMsg": msg}}
}

func refusal(status, id int, msg string) answer {
	return answer{status: status, body: map[string]any{"errorId": id, "errorMsg": msg}}
}

func (s *Server) start(body map[string]json.RawMessage) answer {
	name := str(body, "userName")
	s.mu.Lock()
	defer s.mu.Unlock()
	u, known := s.users[name]
	if !known {
		return refusal(http.StatusBadRequest, wire.UserNotFound, "User does not exist.")
	}
	b, _ := parseBehavior(u.Behavior)
	var async bool
	json.Unmarshal(body["async"], &async)

	// A second call with sessionId and deviceId continues a device choice.
	if sid := str(body, "sessionId"); sid != "" {
		sess := s.sessions[sid]
		if sess == nil || sess.user != name || sess.state != "choose" {
			return refusal(http.StatusBadRequest, ErrIDBadSession, "Invalid session.")
		}
		var dev json.Number
		json.Unmarshal(body["deviceId"], &dev)
		n, err := strconv.Atoi(dev.String())
		if err != nil || n < 1 || n > len(u.Devices) {
			return refusal(http.StatusBadRequest, ErrIDInvalidInput, "Unknown device.")
		}
		sess.device = n - 1
		sess.state = "push"
		a := ok(wire.Online, "Continue the authentication flow using the online flow.")
		if async {
			a = ok(wire.Wait, "Asynchronous authentication: waiting for client response.")
		}
		a.body["sessionId"] = sess.id
		return a
	}

	sess := &session{id: "sim_" + randomHex(12), user: name}
	s.sessions[sess.id] = sess
	var a answer
	switch b.kind {
	case "otp":
		sess.state = "otp"
		a = ok(wire.OTPSMS, "Please enter the OTP from the SMS.")
	case "choose":
		sess.state = "choose"
		a = ok(wire.ChooseDevice, "Multiple devices selection flow.")
	default:
		sess.state = "push"
		a = ok(wire.Online, "Continue the authentication flow using the online flow.")
		if async {
			a = ok(wire.Wait, "Asynchronous authentication: waiting for client response.")
		}
	}
	a.body["sessionId"] = sess.id
	a.body["userDevices"] = userDevices(u)
	return a
}

func userDevices(u User) []map[string]any {
	out := make([]map[string]any, 0, len(u.Devices))
	for i, d := range u.Devices {
		role := "SECONDARY"
		if i == 0 {
			role = "PRIMARY"
		}
		out = append(out, map[string]any{
			"deviceId": i + 1, "deviceRole": role, "nickname": d.Name, "type": "Android",
		})
	}
	return out
}

func fallbackList(u User) []wire.FallbackDevice {
	out := make([]wire.FallbackDevice, 0, len(u.Devices))
	for _, d := range u.Devices {
		key, _ := hex.DecodeString(d.KeyHex)
		out = append(out, wire.FallbackDevice{ID: d.ID, Name: d.Name, Suite: d.Suite, Key: key})
	}
	return out
}

// session looks up a live session; the caller holds s.mu.
func (s *Server) liveSession(body map[string]json.RawMessage) (*session, *answer) {
	sess := s.sessions[str(body, "sessionId")]
	if sess == nil || sess.state == "done" || sess.state == "cancelled" {
		a := refusal(http.StatusBadRequest, ErrIDBadSession, "Invalid session.")
		return nil, &a
	}
	return sess, nil
}

func (s *Server) success(sess *session) answer {
	sess.state = "done"
	a := ok(wire.OK, "")
	a.body["localFallbackDeviceList"] = fallbackList(s.users[sess.user])
	return a
}

func (s *Server) authStatus(body map[string]json.RawMessage) answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, bad := s.liveSession(body)
	if bad != nil {
		return *bad
	}
	if sess.state != "push" {
		return refusal(http.StatusBadRequest, ErrIDBadSession, "No push in progress.")
	}
	b, _ := parseBehavior(s.users[sess.user].Behavior)
	switch b.kind {
	case "approve", "choose":
		return s.success(sess)
	case "reject":
		sess.state = "done"
		return refusal(http.StatusOK, ErrIDRejected, "Authentication rejected.")
	}
	return ok(wire.Wait, "Asynchronous authentication: waiting for client response.")
}

func (s *Server) authOnline(r *http.Request, body map[string]json.RawMessage) answer {
	s.mu.Lock()
	sess, bad := s.liveSession(body)
	if bad != nil {
		s.mu.Unlock()
		return *bad
	}
	b, _ := parseBehavior(s.users[sess.user].Behavior)
	if b.kind == "timeout" {
		s.mu.Unlock()
		select {
		case <-r.Context().Done():
		case <-s.quit:
		case <-time.After(pushTimeout):
		}
		return refusal(http.StatusOK, ErrIDRejected, "No answer from the device.")
	}
	defer s.mu.Unlock()
	if b.kind == "reject" {
		sess.state = "done"
		return refusal(http.StatusOK, ErrIDRejected, "Authentication rejected.")
	}
	return s.success(sess)
}

func (s *Server) authOffline(body map[string]json.RawMessage) answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, bad := s.liveSession(body)
	if bad != nil {
		return *bad
	}
	if sess.state != "otp" {
		return refusal(http.StatusBadRequest, ErrIDBadSession, "No passcode expected.")
	}
	b, _ := parseBehavior(s.users[sess.user].Behavior)
	if str(body, "otp") == b.otp {
		return s.success(sess)
	}
	sess.otpTries++
	if sess.otpTries >= maxOTPTries {
		sess.state = "done"
		return refusal(http.StatusBadRequest, ErrIDBlocked, "Too many wrong passcodes.")
	}
	return refusal(http.StatusBadRequest, ErrIDWrongOTP, "Wrong passcode.")
}

func (s *Server) cancel(body map[string]json.RawMessage) answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, bad := s.liveSession(body)
	if bad != nil {
		return *bad
	}
	sess.state = "cancelled"
	return ok(wire.OK, "")
}

// Cancelled reports how many sessions were cancelled by the client.
func (s *Server) Cancelled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, sess := range s.sessions {
		if sess.state == "cancelled" {
			n++
		}
	}
	return n
}

// reply encodes a, signed, and applies the faults that spoil an answer.
func (s *Server) reply(w http.ResponseWriter, r *http.Request, a answer, f Fault) {
	switch f {
	case Fault5xx:
		s.plainError(w, http.StatusServiceUnavailable, 503, "Service unavailable")
		return
	case Fault429:
		w.Header().Set("Retry-After", "1")
		s.plainError(w, http.StatusTooManyRequests, 429, "Too many requests")
		return
	case FaultMalformed:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "<html><body>Gateway</body></html>\n")
		return
	}

	a.body["uniqueMsgId"] = "sim_" + randomHex(8)
	payload, _ := json.Marshal(map[string]any{"responseBody": a.body})
	var out []byte
	switch f {
	case FaultUnsigned:
		out = payload
	case FaultBadSignature:
		other := make([]byte, 32)
		copy(other, "not the key shared with clients!")
		out = []byte(s.sign(other, payload))
	default:
		out = []byte(s.sign(s.props.Key, payload))
	}
	w.Header().Set("Content-Type", "application/json")
	if f != FaultDrip {
		w.WriteHeader(a.status)
		w.Write(out)
		return
	}
	w.WriteHeader(a.status)
	fl, _ := w.(http.Flusher)
	t := time.NewTicker(s.opts.DripInterval)
	defer t.Stop()
	for i := range out {
		select {
		case <-r.Context().Done():
			return
		case <-s.quit:
			return
		case <-t.C:
		}
		w.Write(out[i : i+1])
		if fl != nil {
			fl.Flush()
		}
	}
}

func (s *Server) sign(key, payload []byte) string {
	alias := "orgAlias"
	if s.opts.LegacyAliasHeader {
		alias = "org_alias"
	}
	out, err := wire.Sign(key, wire.Header{alias: s.props.OrgAlias, "token": s.props.Token},
		payload)
	if err != nil {
		s.log.Error().Err(err).Msg("sign answer")
	}
	return out
}

// plainError answers with an unsigned JSON error body, as the service does for requests
// it cannot authenticate.
func (s *Server) plainError(w http.ResponseWriter, status, id int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"responseBody": map[string]any{"errorId": id, "errorMsg": msg},
	})
}
