package session

import (
	"context"
	"errors"

	"github.com/pingid-ssh/pingid-ssh/config"
	"github.com/pingid-ssh/pingid-ssh/engine"
	"github.com/pingid-ssh/pingid-ssh/offline"
	"github.com/pingid-ssh/pingid-ssh/online"
)

// online runs the PingID flow. A refusal by the service or the user is final; a failure
// to reach the service asks the policy again with what was learned.
func (s *login) online(ctx context.Context) Status {
	cfg := s.rt.Config
	res, err := s.rt.Client.Authenticate(ctx, cfg.PingIDUser(s.req.User), s, cfg.MaxPrompts)
	if err == nil {
		s.keepDevices(res)
		return StatusSuccess
	}

	var oerr *online.Error
	switch {
	case ctx.Err() != nil:
		// The deadline passed or the client hung up: whatever failed, it is over.
		s.fail("online", context.Cause(ctx))
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			// Said even though the login's context is over: the result line follows.
			_ = s.out.Write(&Message{Type: TypeError,
				Text: "Timed out waiting for multi-factor authentication."})
		}
		return StatusDeny
	case errors.Is(err, online.ErrNotRegistered):
		return s.notRegistered(ctx)
	case errors.As(err, &oerr) && len(s.decisions) == 1:
		s.fail("online", err)
		return s.retry(ctx, oerr)
	default:
		// Rejected, timed out, cancelled, or a second failure: never the policy's to undo.
		s.fail("online", err)
		s.tell(ctx, TypeError, "Multi-factor authentication failed.")
		return StatusDeny
	}
}

// retry asks the policy again after the online flow failed to reach the service: in
// phase challenge if the service had answered first, so no bypass is possible then.
func (s *login) retry(ctx context.Context, oerr *online.Error) Status {
	if s.rt.Prober != nil {
		s.rt.Prober.Observe(oerr.Class, 0)
	}
	s.ownEvidence = true
	s.input.Online.Class = string(oerr.Class)
	s.input.Online.CheckedMSAgo = 0
	if oerr.Started {
		s.input.Phase = engine.PhaseChallenge
	}
	d := s.decide(ctx)
	switch {
	case d.Action == engine.Online:
		// The policy would send the login back to the service that just failed.
	case d.Action == engine.Bypass && oerr.Started:
		// The shipped policy never does this; an override cannot either. Checked here too
		// because a bypass after the user saw a prompt is exactly what must not happen.
		s.fail("policy", errors.New("bypass in phase challenge refused"))
	default:
		return s.carryOut(ctx, d)
	}
	s.tell(ctx, TypeError, "Multi-factor authentication failed.")
	return StatusDeny
}

// notRegistered applies policy_user_not_registered. Registration itself happens in the
// PingID portal; a login cannot enrol a device, so "register" and "grace_fail" refuse
// with a message that says where to go.
func (s *login) notRegistered(ctx context.Context) Status {
	switch s.rt.Config.PolicyUserNotRegistered {
	case config.NotRegisteredAllow:
		s.fail("online", online.ErrNotRegistered)
		return StatusBypass
	case config.NotRegisteredFail:
		s.fail("online", online.ErrNotRegistered)
		s.tell(ctx, TypeError, "Multi-factor authentication refused access.")
	default:
		s.fail("online", online.ErrNotRegistered)
		s.tell(ctx, TypeError, "You are not registered for PingID multi-factor "+
			"authentication. Register in the PingID portal, then try again.")
	}
	return StatusDeny
}

// keepDevices stores the device list of a successful online login for offline use. A
// device the offline check cannot use is left out (and logged by ID) rather than costing
// the user the others; a list with nothing usable, or an explicitly empty one, removes the
// file, so a revoked device stops working offline. A failure to store is logged; the
// login itself has succeeded.
func (s *login) keepDevices(res *online.Result) {
	if !res.DevicesListed {
		return
	}
	devs := make([]offline.Device, 0, len(res.Devices))
	for _, d := range res.Devices {
		dev := offline.Device{ID: d.ID, Name: d.Name, Suite: d.Suite, Key: d.Key}
		if err := offline.CheckDevice(dev); err != nil {
			s.rt.Log.Warn().Str("user", s.req.User).Err(err).
				Msg("offline device left out: it cannot be checked offline")
			continue
		}
		devs = append(devs, dev)
	}
	if err := s.rt.Store.Save(s.req.User, devs); err != nil {
		s.rt.Log.Error().Str("user", s.req.User).Err(err).Msg("store offline devices")
	}
}

// offline shows a fresh challenge and checks the one code typed back. A wrong code is
// final for this login and counts toward the lockout.
func (s *login) offline(ctx context.Context) Status {
	devs, st, err := s.rt.Store.Load(s.req.User)
	if st != offline.StatusReady {
		s.fail("offline devices", errors.Join(errors.New(string(st)), err))
		s.tell(ctx, TypeError, "Offline authentication is not available.")
		return StatusDeny
	}
	suite, err := offline.ParseSuite(devs[0].Suite)
	if err != nil {
		s.fail("offline suite", err)
		return StatusDeny
	}
	challenge, err := offline.NewChallenge(suite)
	if err != nil {
		s.fail("offline challenge", err)
		return StatusDeny
	}

	// enforce_offline_authentication (or an override) sends logins offline while the
	// service answers; saying it is unreachable then would mislead the user.
	intro := "PingID is unreachable: offline authentication."
	if s.input.Online.Class == string(online.ClassOK) {
		intro = "Offline authentication."
	}
	s.tell(ctx, TypeInfo, intro)
	s.tell(ctx, TypeInfo, "Enter this key in your PingID app: "+
		offline.FormatChallenge(challenge))
	code, err := s.Prompt(ctx, "Code from your PingID app: ", false)
	if err != nil {
		s.fail("offline prompt", err)
		return StatusDeny
	}

	ok, err := s.rt.Store.CheckAttempt(s.req.User, devs, challenge, code)
	switch {
	case ctx.Err() != nil:
		// The check may have waited on another login's lock past the deadline.
		s.fail("offline", context.Cause(ctx))
		return StatusDeny
	case errors.Is(err, offline.ErrLockedOut):
		s.fail("offline", err)
		s.tell(ctx, TypeError, "Too many wrong codes; offline authentication is locked.")
		return StatusMaxTries
	case err != nil:
		s.fail("offline", err)
		return StatusDeny
	case ok:
		return StatusSuccess
	}
	s.fail("offline", errors.New("wrong code"))
	if locked, _, _ := s.rt.Store.Locked(s.req.User); locked {
		s.tell(ctx, TypeError, "Wrong code. Too many wrong codes; offline authentication "+
			"is locked.")
		return StatusMaxTries
	}
	s.tell(ctx, TypeError, "Wrong code.")
	return StatusDeny
}
