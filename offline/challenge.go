package offline

import (
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
)

// Device is one authenticator that can answer offline challenges. Key is the OCRA secret:
// never log it, print it or put it in an error. A Device returned by the Store is owned by
// the caller.
type Device struct {
	ID    string `json:"id"`
	Name  string `json:"name,omitempty"`
	Suite string `json:"suite"`
	Key   []byte `json:"key"`
}

// String hides the key, so a Device printed by mistake leaks nothing.
func (d Device) String() string {
	return fmt.Sprintf("Device{id=%q name=%q suite=%s}", d.ID, d.Name, d.Suite)
}

// GoString hides the key from %#v as well.
func (d Device) GoString() string { return d.String() }

const (
	maxDevices   = 64
	maxIDLen     = 256
	maxNameLen   = 256
	minKeyLen    = 16
	maxKeyLen    = 128
	alphaCharset = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	hexCharset   = "0123456789ABCDEF"
	digitCharset = "0123456789"
)

// minDeviceDigits is the shortest code an offline device may use.
const minDeviceDigits = 6

// errDevice is wrapped by every rejection of a device record.
var errDevice = errors.New("invalid device")

// CheckDevice accepts a device that a login can verify: an ID and name of printable text,
// a key of 16 to 128 bytes, and a suite of codes of at least 6 digits whose only input is
// the challenge, since an offline login has no counter, PIN, session or clock shared with
// the authenticator. Store.Save applies it to every device; errors name the device by ID
// and never include the key.
func CheckDevice(d Device) error {
	if d.ID == "" || len(d.ID) > maxIDLen || hasControl(d.ID) {
		return fmt.Errorf("%w: id is empty, longer than %d bytes or not printable",
			errDevice, maxIDLen)
	}
	if len(d.Name) > maxNameLen || hasControl(d.Name) {
		return fmt.Errorf("%w %q: name is longer than %d bytes or not printable",
			errDevice, d.ID, maxNameLen)
	}
	if len(d.Key) < minKeyLen || len(d.Key) > maxKeyLen {
		return fmt.Errorf("%w %q: key is %d bytes, not %d to %d",
			errDevice, d.ID, len(d.Key), minKeyLen, maxKeyLen)
	}
	s, err := ParseSuite(d.Suite)
	if err != nil {
		return fmt.Errorf("%w %q: %w", errDevice, d.ID, err)
	}
	if s.Digits < minDeviceDigits {
		// Each device is one more way to guess a code: short codes multiply that chance.
		return fmt.Errorf("%w %q: suite %s gives %d-digit codes; offline devices need at "+
			"least %d", errDevice, d.ID, d.Suite, s.Digits, minDeviceDigits)
	}
	if s.Counter || s.PIN != "" || s.SessionLen > 0 || s.TimeStep > 0 {
		return fmt.Errorf("%w %q: suite %s needs inputs besides the challenge",
			errDevice, d.ID, d.Suite)
	}
	return nil
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

// NewChallenge returns a fresh challenge for s: s.ChallengeLen characters drawn uniformly
// from crypto/rand over the suite's alphabet (digits; upper-case hexadecimal; or letters
// and digits). It fails only when the system's random source fails, and never falls back
// to a weaker one. Every challenge is meant to be checked once: Store.CheckAttempt refuses
// a challenge it has already seen.
func NewChallenge(s Suite) (string, error) {
	var set string
	switch s.Challenge {
	case Numeric:
		set = digitCharset
	case Hex:
		set = hexCharset
	case Alphanumeric:
		set = alphaCharset
	default:
		return "", fmt.Errorf("new challenge: %w: zero suite", ErrInput)
	}

	// Rejection sampling keeps every character uniform: bytes at or above the largest
	// multiple of len(set) are drawn again.
	limit := 256 - 256%len(set)
	out := make([]byte, 0, s.ChallengeLen)
	buf := make([]byte, 2*s.ChallengeLen)
	for len(out) < s.ChallengeLen {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("new challenge: %w", err)
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < s.ChallengeLen {
				out = append(out, set[int(b)%len(set)])
			}
		}
	}
	return string(out), nil
}

// FormatChallenge groups a challenge in fours from the left for display:
// "482199301174" becomes "4821 9930 1174".
func FormatChallenge(ch string) string {
	var b strings.Builder
	for i := 0; i < len(ch); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(ch[i:min(i+4, len(ch))])
	}
	return b.String()
}

// NormalizeCode removes the spaces and tabs a person may type inside or around a code.
func NormalizeCode(code string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, code)
}

// VerifyCode checks code against every device's OCRA answer to challenge and returns the ID
// of a matching device. Every device is computed and compared, in constant time per
// comparison, whether or not an earlier one matched, so the time taken does not depend on
// which device (if any) matched. Devices whose suite cannot take this challenge are
// skipped. Spaces in challenge and code are ignored. It never returns true for an empty
// code or an empty device list.
func VerifyCode(devs []Device, challenge, code string) (string, bool) {
	challenge = NormalizeCode(challenge)
	code = NormalizeCode(code)
	if code == "" || challenge == "" {
		return "", false
	}

	matched := ""
	found := 0
	for _, d := range devs {
		s, err := ParseSuite(d.Suite)
		if err != nil || len(d.Key) == 0 {
			continue
		}
		want, err := s.Compute(d.Key, Input{Question: challenge})
		if err != nil {
			continue
		}
		eq := subtle.ConstantTimeCompare([]byte(want), []byte(code))
		if eq == 1 && found == 0 {
			matched = d.ID
		}
		found |= eq
	}
	return matched, found == 1
}
