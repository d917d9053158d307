package online

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pingid-ssh/pingid-ssh/online/internal/wire"
)

// maxSteps bounds the number of flow transitions (device choice, push, passcode) in one
// login, so a service that keeps answering "next step" cannot loop forever.
const maxSteps = 8

// ErrConversation wraps a failure of the Prompter (the user's side hung up or the relay
// broke). It is a deny and is never handed to the policy.
var ErrConversation = errors.New("conversation with the user failed")

// FallbackDevice is the material of one device for offline checks, from a successful
// login's localFallbackDeviceList. Key is secret: never log it.
type FallbackDevice struct {
	ID    string
	Name  string
	Suite string // an OCRA suite, such as OCRA-1:HOTP-SHA256-6:QN12
	Key   []byte
}

// String hides the key.
func (d FallbackDevice) String() string {
	return fmt.Sprintf("FallbackDevice{id=%s name=%s suite=%s}", d.ID, d.Name, d.Suite)
}

// Prompter is how the online flow talks to the user (the session relays it over PAM).
// Prompt returns the user's answer; echo says whether the answer may be shown as typed.
// Both must return when ctx ends.
type Prompter interface {
	Prompt(ctx context.Context, text string, echo bool) (string, error)
	Info(ctx context.Context, text string) error
}

// Result is a successful online login.
type Result struct {
	// Devices is the localFallbackDeviceList of the final answer (possibly empty); the
	// offline package stores it. The caller owns it.
	Devices []FallbackDevice
	// DevicesListed says the answer carried localFallbackDeviceList, even an empty one:
	// an empty list means the user has no devices left, and the offline file must go.
	DevicesListed bool
	UniqueMsgID   string
}

// Authenticate runs the whole online flow for user: startauthentication (asking for an
// asynchronous push), then, as the service directs, device choice, push with authstatus
// polling, or passcode prompts (up to maxPrompts) checked with authoffline. If ctx ends or
// the prompter fails after the service opened a session, the session is cancelled.
//
// It returns a Result only on a signed success. Otherwise: ErrNotRegistered (signed "user
// does not exist" from startauthentication), ErrRejected (any other signed refusal once
// the flow began, or maxPrompts wrong passcodes), ErrTimeout (ctx ended while waiting for
// the user), ErrConversation (the prompter failed), or an *Error whose Started says
// whether startauthentication had answered.
func (c *Client) Authenticate(ctx context.Context, user string, p Prompter, maxPrompts int,
) (*Result, error) {
	if user == "" || len(user) > 256 || strings.ContainsAny(user, "\x00\r\n") {
		// A local refusal, not a service failure: it must never reach the policy as a class.
		return nil, ErrInvalidUser
	}
	if maxPrompts < 1 {
		maxPrompts = 1
	}
	f := &flow{c: c, user: user, p: p, maxPrompts: maxPrompts}
	res, err := f.run(ctx)
	if err != nil && f.session != "" && !f.finished {
		f.cancel(ctx, err)
	}
	return res, err
}

type flow struct {
	c          *Client
	user       string
	p          Prompter
	maxPrompts int

	session  string
	started  bool
	finished bool // the service closed the session itself (success or refusal)
}

func (f *flow) run(ctx context.Context) (*Result, error) {
	rb, err := f.c.call(ctx, "startauthentication",
		wire.StartAuth{SpAlias: spAlias, UserName: f.user, Async: true}, false, false)
	if err != nil {
		return nil, f.wrap(err)
	}
	switch id := *rb.ErrorID; {
	case id == wire.UserNotFound:
		f.finished = true
		return nil, ErrNotRegistered
	case !knownStep(id):
		// A signed answer we cannot follow is the service's refusal (a suspended user,
		// say); falling back to offline would undo it.
		f.finished = true
		return nil, fmt.Errorf("%w: startauthentication errorId %d: %s", ErrRejected, id,
			safeText(rb.ErrorMsg, 160))
	}
	f.started = true
	f.session = rb.SessionID

	for step := 0; step < maxSteps; step++ {
		if rb.SessionID != "" && f.session != "" && rb.SessionID != f.session {
			f.finished = true
			return nil, fmt.Errorf("%w: answer belongs to another session", ErrRejected)
		}
		id := *rb.ErrorID
		switch {
		case id == wire.OK:
			f.finished = true
			return result(rb), nil
		case id == wire.ChooseDevice:
			rb, err = f.choose(ctx, rb)
		case id == wire.Online:
			rb, err = f.online(ctx, rb)
		case id == wire.Wait:
			rb, err = f.poll(ctx)
		case wire.IsOTP(id):
			rb, err = f.passcode(ctx, rb)
		default:
			f.finished = true
			return nil, fmt.Errorf("%w: errorId %d", ErrRejected, id)
		}
		if err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("%w: no result after %d steps", ErrRejected, maxSteps)
}

// knownStep reports whether a startauthentication errorId begins a flow we can follow.
func knownStep(id int) bool {
	return id == wire.OK || id == wire.ChooseDevice || id == wire.Online || id == wire.Wait ||
		wire.IsOTP(id)
}

// wrap marks call errors with whether the flow had begun, and turns the end of ctx while
// the flow waits on the user into ErrTimeout.
func (f *flow) wrap(err error) error {
	var e *Error
	if errors.As(err, &e) {
		e.Started = f.started
	}
	return err
}

func (f *flow) userWait(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %w", ErrTimeout, ctx.Err())
	}
	return f.wrap(err)
}

func (f *flow) info(ctx context.Context, text string) error {
	if err := f.p.Info(ctx, text); err != nil {
		return f.convErr(ctx, err)
	}
	return nil
}

func (f *flow) prompt(ctx context.Context, text string, echo bool) (string, error) {
	ans, err := f.p.Prompt(ctx, text, echo)
	if err != nil {
		return "", f.convErr(ctx, err)
	}
	return ans, nil
}

func (f *flow) convErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %w", ErrTimeout, ctx.Err())
	}
	return fmt.Errorf("%w: %w", ErrConversation, err)
}

// choose lets the user pick one of userDevices and restarts the flow on that device.
func (f *flow) choose(ctx context.Context, rb *wire.ResponseBody) (*wire.ResponseBody, error) {
	devs := rb.UserDevices
	if len(devs) == 0 {
		f.finished = true
		return nil, &Error{Op: "startauthentication", Class: ClassMalformed, Started: true,
			Err: errors.New("device choice without devices")}
	}
	if len(devs) > 20 {
		devs = devs[:20]
	}
	var b strings.Builder
	b.WriteString("Choose a device:")
	for i, d := range devs {
		fmt.Fprintf(&b, "\n  %d. %s", i+1, deviceLabel(d))
	}
	if err := f.info(ctx, b.String()); err != nil {
		return nil, err
	}
	for try := 0; try < f.maxPrompts; try++ {
		ans, err := f.prompt(ctx, fmt.Sprintf("Device number [1-%d]: ", len(devs)), true)
		if err != nil {
			return nil, err
		}
		n, err := strconv.Atoi(strings.TrimSpace(ans))
		if err != nil || n < 1 || n > len(devs) {
			if err := f.info(ctx, "Not a device number."); err != nil {
				return nil, err
			}
			continue
		}
		id := devs[n-1].DeviceID
		next, err := f.c.call(ctx, "startauthentication", wire.StartAuth{SpAlias: spAlias,
			UserName: f.user, Async: true, SessionID: f.session, DeviceID: &id}, false, false)
		if err != nil {
			return nil, f.wrap(err)
		}
		return next, nil
	}
	return nil, fmt.Errorf("%w: no valid device chosen", ErrRejected)
}

func deviceLabel(d wire.Device) string {
	name := d.Nickname
	if name == "" {
		name = d.DisplayID
	}
	if name == "" {
		name = d.Type
	}
	if name == "" {
		name = "device " + d.DeviceID.String()
	}
	label := safeText(name, 60)
	if d.DeviceRole == "PRIMARY" {
		label += " (primary)"
	}
	return label
}

// online calls authonline, which blocks until the user answers the push; only the login's
// deadline bounds it.
func (f *flow) online(ctx context.Context, rb *wire.ResponseBody) (*wire.ResponseBody, error) {
	if err := f.info(ctx, "Approve the sign-in request sent to your device."); err != nil {
		return nil, err
	}
	body := wire.AuthOnline{SpAlias: spAlias, UserName: f.user, AuthType: "CONFIRM",
		SessionID: f.session, DeviceID: primaryDevice(rb.UserDevices)}
	next, err := f.c.call(ctx, "authonline", body, false, true)
	if err != nil {
		return nil, f.userWait(ctx, err)
	}
	if id := *next.ErrorID; id != wire.OK && id != wire.Wait && !wire.IsOTP(id) {
		f.finished = true
		return nil, fmt.Errorf("%w: errorId %d", ErrRejected, id)
	}
	return next, nil
}

func primaryDevice(devs []wire.Device) *json.Number {
	for _, d := range devs {
		if d.DeviceRole == "PRIMARY" {
			id := d.DeviceID
			return &id
		}
	}
	return nil
}

// poll asks authstatus until the push is answered, refused, or ctx ends.
func (f *flow) poll(ctx context.Context) (*wire.ResponseBody, error) {
	if err := f.info(ctx, "Approve the sign-in request sent to your device."); err != nil {
		return nil, err
	}
	// The first poll goes out at once: a push answered as fast as the service can ask
	// (or approved by the service itself) then costs no poll interval. Later polls wait.
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", ErrTimeout, ctx.Err())
		case <-t.C:
		}
		rb, err := f.c.call(ctx, "authstatus", wire.SessionRef{SessionID: f.session}, true, false)
		if err != nil {
			return nil, f.userWait(ctx, err)
		}
		switch id := *rb.ErrorID; {
		case id == wire.Wait:
			t.Reset(f.c.pollInterval)
		case id == wire.OK || wire.IsOTP(id):
			return rb, nil
		default:
			f.finished = true
			return nil, fmt.Errorf("%w: errorId %d", ErrRejected, id)
		}
	}
}

// passcode prompts for a one-time passcode and checks it with authoffline, up to
// maxPrompts times.
func (f *flow) passcode(ctx context.Context, rb *wire.ResponseBody) (*wire.ResponseBody, error) {
	msg := safeText(rb.ErrorMsg, 160)
	if msg == "" {
		msg = "Enter the passcode from your device."
	}
	if err := f.info(ctx, msg); err != nil {
		return nil, err
	}
	device := primaryDevice(rb.UserDevices)
	for try := 0; try < f.maxPrompts; try++ {
		ans, err := f.prompt(ctx, "Passcode: ", false)
		if err != nil {
			return nil, err
		}
		otp := strings.TrimSpace(ans)
		if !plausibleOTP(otp) {
			if err := f.info(ctx, "That is not a passcode."); err != nil {
				return nil, err
			}
			continue
		}
		next, err := f.c.call(ctx, "authoffline", wire.AuthOffline{SpAlias: spAlias,
			UserName: f.user, OTP: otp, SessionID: f.session, DeviceID: device}, false, false)
		if err != nil {
			return nil, f.userWait(ctx, err)
		}
		if *next.ErrorID == wire.OK {
			return next, nil
		}
		// Any signed refusal counts as a wrong passcode; the service decides when the
		// user is blocked, and maxPrompts bounds the attempts here.
		if err := f.info(ctx, "Wrong passcode."); err != nil {
			return nil, err
		}
	}
	f.finished = true
	return nil, fmt.Errorf("%w: %d wrong passcodes", ErrRejected, f.maxPrompts)
}

// plausibleOTP accepts 4 to 64 letters and digits (YubiKey passcodes are 44 letters).
func plausibleOTP(s string) bool {
	if len(s) < 4 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

func result(rb *wire.ResponseBody) *Result {
	res := &Result{UniqueMsgID: safeText(rb.UniqueMsgID, 128), DevicesListed: rb.Fallback != nil}
	for _, d := range rb.Fallback {
		res.Devices = append(res.Devices, FallbackDevice{
			ID: d.ID, Name: d.Name, Suite: d.Suite, Key: append([]byte(nil), d.Key...),
		})
	}
	return res
}

// cancel tells the service to drop the session. After a prompter failure, with ctx
// alive and the service answering, it runs now under ctx. Otherwise (ctx ended, or the
// service itself failed and could make the caller wait another timeout) it runs in the
// background, bounded by connect_timeout, and Close waits for it.
func (f *flow) cancel(ctx context.Context, cause error) {
	body := wire.SessionRef{SessionID: f.session, CancelType: "DEFAULT"}
	var e *Error
	if ctx.Err() == nil && !errors.As(cause, &e) {
		f.c.call(ctx, "cancelauthentication", body, true, false)
		return
	}
	f.c.pending.Add(1)
	go func() {
		defer f.c.pending.Done()
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.c.connect)
		defer cancel()
		f.c.call(cctx, "cancelauthentication", body, true, false)
	}()
}
