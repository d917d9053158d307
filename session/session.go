// Package session runs one login: it reads the shim's start message, gathers the policy
// input, asks the engine, and carries out the decision, relaying prompts over the shim
// protocol. The daemon, the pam-helper and the login command all run this one
// implementation.
package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/pingid-ssh/pingid-ssh/config"
	"github.com/pingid-ssh/pingid-ssh/engine"
	"github.com/pingid-ssh/pingid-ssh/offline"
	"github.com/pingid-ssh/pingid-ssh/online"
)

// maxField bounds rhost, service and tty of a start message.
const maxField = 255

// startTimeout bounds the wait for the start message.
const startTimeout = 10 * time.Second

// Runtime is what sessions share: one generation of config, policy and clients. A Runtime
// is immutable once built and safe for concurrent sessions; a reload builds a new one.
type Runtime struct {
	Config *config.Config
	Engine *engine.Engine
	Client *online.Client
	// Prober holds the background view of the service; nil in a standalone process,
	// where each login probes once itself.
	Prober *online.Prober
	Store  *offline.Store
	Log    zerolog.Logger
	// LookupUser resolves a local account; nil means NSS through LookupUser.
	LookupUser func(name string) (engine.User, error)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Run carries out one login over r and w (the shim's end of a connection, or a pipe pair)
// and returns its final status, which it has also sent as the result message. It never
// returns success or bypass but as the explicit outcome of an online success, an offline
// code, or the policy's bypass. The whole login is bounded by auth_timeout.
func (rt *Runtime) Run(ctx context.Context, r io.Reader, w io.Writer) Status {
	ctx, cancel := context.WithTimeout(ctx, rt.Config.AuthTimeout)
	defer cancel()
	ctx, hangUp := context.WithCancelCause(ctx)
	defer hangUp(nil)

	s := &login{rt: rt, out: NewWriter(w), in: readLoop(ctx, hangUp, NewReader(r)),
		start: rt.now()}
	status := s.run(ctx)
	if err := s.out.Write(&Message{Type: TypeResult, Status: status}); err != nil {
		s.fail("send result", err)
	}
	s.logEvent(status)
	return status
}

func (rt *Runtime) now() time.Time {
	if rt.Now != nil {
		return rt.Now()
	}
	return time.Now()
}

// login is the state of one Run.
type login struct {
	rt    *Runtime
	out   *Writer
	in    <-chan incoming
	start time.Time

	req       Message
	input     *engine.Input
	decisions []engine.Decision
	problem   string // why the login failed, for the log

	// ownEvidence says the service's health in input was seen by this login (a probe or
	// its own failed call), not only reported by the background prober. A bypass needs it:
	// another user's failed call must not switch MFA off for this one.
	ownEvidence bool
}

func (s *login) run(ctx context.Context) Status {
	startCtx, cancel := context.WithTimeout(ctx, startTimeout)
	m, err := s.next(startCtx)
	cancel()
	if err != nil {
		s.fail("read start", err)
		return StatusDeny
	}
	if err := checkStart(m); err != nil {
		s.fail("start message", err)
		return StatusDeny
	}
	s.req = *m

	in, err := s.gather(ctx)
	if err != nil {
		s.fail("gather input", err)
		return StatusDeny
	}
	s.input = in
	return s.carryOut(ctx, s.decide(ctx))
}

// decide asks the engine and records the decision for the login's log event.
func (s *login) decide(ctx context.Context) engine.Decision {
	d := s.rt.Engine.Decide(ctx, s.input)
	s.decisions = append(s.decisions, d)
	return d
}

func (s *login) carryOut(ctx context.Context, d engine.Decision) Status {
	switch d.Action {
	case engine.Bypass:
		if !s.ownEvidence {
			return s.confirmOutage(ctx)
		}
		return StatusBypass
	case engine.Online:
		return s.online(ctx)
	case engine.Offline:
		return s.offline(ctx)
	default:
		s.tell(ctx, TypeError, "Multi-factor authentication refused access.")
		return StatusDeny
	}
}

// confirmOutage probes the service for this login before a bypass and asks the policy
// again with what it saw. The background view may come from someone else's failed call
// (a 5xx that one user's name provokes, say); only this login's own evidence may switch
// MFA off for it.
func (s *login) confirmOutage(ctx context.Context) Status {
	res := s.rt.Client.Probe(ctx)
	if ctx.Err() != nil {
		s.fail("confirm outage", context.Cause(ctx))
		return StatusDeny
	}
	s.ownEvidence = true
	s.input.Online.Class = string(res.Class)
	s.input.Online.LatencyMS = res.Latency.Milliseconds()
	s.input.Online.CheckedMSAgo = 0
	return s.carryOut(ctx, s.decide(ctx))
}

// checkStart validates the start message: a safe user name and bounded fields.
func checkStart(m *Message) error {
	if m.Type != TypeStart {
		return fmt.Errorf("%w: first message is %q, not start", ErrProtocol, m.Type)
	}
	if err := config.CheckUserName(m.User); err != nil {
		return fmt.Errorf("user: %w", err)
	}
	for name, v := range map[string]string{"rhost": m.RHost, "service": m.Service,
		"tty": m.TTY} {
		if len(v) > maxField || strings.ContainsFunc(v, isControl) {
			return fmt.Errorf("%s: longer than %d bytes or has control characters", name,
				maxField)
		}
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// gather builds the policy input for the login's start message.
func (s *login) gather(ctx context.Context) (*engine.Input, error) {
	in, probed, err := s.rt.input(ctx, s.req.User, s.req.RHost, s.req.Service, s.req.TTY)
	if err != nil {
		return nil, err
	}
	s.ownEvidence = probed
	if in.User.Name != s.req.User {
		// A case-insensitive directory answered for "ALICE" with alice: PingID, the device
		// file and the lockout must all see the account's own name. Any other difference
		// is a directory we cannot trust to mean the same account.
		if !strings.EqualFold(in.User.Name, s.req.User) {
			return nil, fmt.Errorf("look up user: NSS answered %q for %q", in.User.Name,
				s.req.User)
		}
		s.req.User = in.User.Name
	}
	return in, nil
}

// Input builds the policy input for a login: the account from NSS, the service's health,
// the state of the device file. It is what a session decides on, and what
// "decide --user" prints a decision for.
func (rt *Runtime) Input(ctx context.Context, user, rhost, service, tty string,
) (*engine.Input, error) {
	in, _, err := rt.input(ctx, user, rhost, service, tty)
	return in, err
}

// input is Input, and also says whether the service's health was probed for this login
// rather than read from the background prober.
func (rt *Runtime) input(ctx context.Context, user, rhost, service, tty string,
) (*engine.Input, bool, error) {
	if err := config.CheckUserName(user); err != nil {
		return nil, false, err
	}
	lookup := rt.LookupUser
	if lookup == nil {
		lookup = LookupUser
	}
	u, err := lookupWithin(ctx, lookup, user)
	if err != nil {
		return nil, false, err
	}

	now := rt.now()
	rep := rt.Store.Status(user)
	svc, probed := rt.service(ctx, now)
	file := engine.DeviceFile{Status: string(rep.Status), Devices: rep.Devices}
	if rep.Devices > 0 {
		age := rep.Age.Milliseconds()
		file.AgeMS = &age
	}
	return &engine.Input{
		FailMode: string(rt.Config.FailMode),
		Phase:    engine.PhaseProbe,
		User:     u,
		Request:  engine.Request{Service: service, RHost: normalizeHost(rhost), TTY: tty},
		Online:   svc,
		Offline:  file,
		Time:     now,
	}, probed, nil
}

// lookupWithin bounds an NSS lookup by ctx: a hung directory server must not hold a login
// past its deadline. The abandoned lookup finishes in the background.
func lookupWithin(ctx context.Context, lookup func(string) (engine.User, error), name string,
) (engine.User, error) {
	type answer struct {
		u   engine.User
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		u, err := lookup(name)
		ch <- answer{u, err}
	}()
	select {
	case a := <-ch:
		return a.u, a.err
	case <-ctx.Done():
		return engine.User{}, fmt.Errorf("look up user: %w", ctx.Err())
	}
}

// service reports the PingID API's health: the prober's view when it has one, otherwise
// one probe now, bounded by connect_timeout.
func (rt *Runtime) service(ctx context.Context, now time.Time) (engine.Service, bool) {
	var st online.ProbeState
	if rt.Prober != nil {
		st = rt.Prober.State()
	}
	probed := !st.Known
	if probed {
		res := rt.Client.Probe(ctx)
		st = online.ProbeState{Class: res.Class, Latency: res.Latency, Checked: rt.now(),
			Known: true}
		if res.Class == online.ClassOK {
			st.LastSuccess = st.Checked
		}
	}
	svc := engine.Service{
		Class:        string(st.Class),
		LatencyMS:    st.Latency.Milliseconds(),
		CheckedMSAgo: max(now.Sub(st.Checked).Milliseconds(), 0),
	}
	if !st.LastSuccess.IsZero() {
		ago := max(now.Sub(st.LastSuccess).Milliseconds(), 0)
		svc.LastSuccessMSAgo = &ago
	}
	return svc, probed
}

// normalizeHost writes an IP address in its canonical form (so overrides compare one
// spelling) and leaves host names and the empty string as they are.
func normalizeHost(h string) string {
	if a, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
		return a.Unmap().String()
	}
	return h
}

// tell sends an info or error line; a failure to send shows up at the next read.
func (s *login) tell(ctx context.Context, typ, text string) {
	if ctx.Err() != nil {
		return
	}
	if err := s.out.Write(&Message{Type: typ, Text: text}); err != nil {
		s.fail("send "+typ, err)
	}
}

func (s *login) fail(what string, err error) {
	if s.problem == "" {
		s.problem = what + ": " + err.Error()
	}
}

// logEvent writes the one decision event of the login.
func (s *login) logEvent(status Status) {
	ev := s.rt.Log.Info()
	if status == StatusBypass {
		ev = s.rt.Log.Warn().Bool("fail_open", true)
	}
	ev = ev.Str("event", "login").Str("user", s.req.User).Str("rhost", s.req.RHost).
		Str("service", s.req.Service).Str("result", string(status))
	if s.input != nil {
		ev = ev.Str("class", s.input.Online.Class).Str("offline", s.input.Offline.Status).
			Str("phase", string(s.input.Phase))
	}
	// A second decision follows a failed online flow (phase challenge) or a bypass that
	// this login had to confirm with its own probe.
	for i, d := range s.decisions {
		prefix := ""
		if i > 0 {
			prefix = "second_"
		}
		ev = ev.Str(prefix+"decision_id", d.ID).Str(prefix+"action", string(d.Action)).
			Strs(prefix+"reasons", d.Reasons).Str(prefix+"revision", d.Revision).
			Int64(prefix+"decide_us", d.Elapsed.Microseconds())
	}
	if s.problem != "" {
		ev = ev.Str("problem", s.problem)
	}
	ev.Int64("total_ms", s.rt.now().Sub(s.start).Milliseconds()).Msg("login finished")
}

// incoming is one message from the shim, or the error that ended the stream.
type incoming struct {
	m   *Message
	err error
}

// errHungUp ends a login whose client closed the connection or cancelled outside a
// prompt, so that nothing (a push wait, say) goes on for nobody.
var errHungUp = errors.New("the client hung up")

// readLoop reads messages in the background so that every wait can also watch ctx. It
// stops at the first error; the caller's closing of the connection ends a pending read.
// The end of the stream or a cancel message also ends the login through hangUp.
func readLoop(ctx context.Context, hangUp context.CancelCauseFunc, r *Reader,
) <-chan incoming {
	ch := make(chan incoming)
	go func() {
		defer close(ch)
		for {
			m, err := r.Read()
			if err != nil || m.Type == TypeCancel {
				hangUp(errHungUp)
			}
			select {
			case ch <- incoming{m, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return ch
}

// errCancelled says the shim cancelled the conversation (Ctrl-C, conversation error).
var errCancelled = errors.New("cancelled by the client")

// next waits for the next message, or ctx.
func (s *login) next(ctx context.Context) (*Message, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case in, ok := <-s.in:
		if !ok {
			return nil, io.ErrUnexpectedEOF
		}
		if in.err != nil {
			return nil, in.err
		}
		if in.m.Type == TypeCancel {
			return nil, errCancelled
		}
		return in.m, nil
	}
}

// Prompt asks the user through the shim and returns the answer. It implements
// online.Prompter for the online flow.
func (s *login) Prompt(ctx context.Context, text string, echo bool) (string, error) {
	if err := s.out.Write(&Message{Type: TypePrompt, Text: text, Echo: &echo}); err != nil {
		return "", err
	}
	m, err := s.next(ctx)
	if err != nil {
		return "", err
	}
	if m.Type != TypeAnswer {
		return "", fmt.Errorf("%w: got %q while waiting for an answer", ErrProtocol, m.Type)
	}
	return m.Text, nil
}

// Info shows a line to the user. It implements online.Prompter.
func (s *login) Info(ctx context.Context, text string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.out.Write(&Message{Type: TypeInfo, Text: text})
}
