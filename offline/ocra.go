// Package offline is the offline half of pingid-ssh's MFA: OCRA challenge/response
// (RFC 6287), the sealed per-user device file, and the per-user lockout after wrong codes.
//
// The parts are independent. ParseSuite, Compute and VerifyCode are pure functions of their
// arguments, and NewChallenge draws from crypto/rand. Store reads and writes the device files
// and the lockout state, and is the only part that touches the file system.
package offline

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// DefaultSuite is the product's suite: HMAC-SHA256, a 12-digit numeric challenge and a
// 6-digit answer, with no counter, PIN, session or time input.
const DefaultSuite = "OCRA-1:HOTP-SHA256-6:QN12"

// ErrSuite is wrapped by every rejection of ParseSuite.
var ErrSuite = errors.New("invalid OCRA suite")

// ErrInput is wrapped by every rejection of Compute's key or inputs.
var ErrInput = errors.New("invalid OCRA input")

// ChallengeFormat is the alphabet of a suite's challenge ("QN", "QA" or "QH").
type ChallengeFormat byte

// The challenge formats of RFC 6287 section 6.3.
const (
	Numeric      ChallengeFormat = 'N' // decimal digits
	Alphanumeric ChallengeFormat = 'A' // printable ASCII without spaces
	Hex          ChallengeFormat = 'H' // hexadecimal digits
)

// HashAlg names one of the three hash functions that OCRA suites may use.
type HashAlg string

// The hash functions of RFC 6287.
const (
	SHA1   HashAlg = "SHA1"
	SHA256 HashAlg = "SHA256"
	SHA512 HashAlg = "SHA512"
)

func (h HashAlg) new() func() hash.Hash {
	switch h {
	case SHA1:
		return sha1.New
	case SHA256:
		return sha256.New
	case SHA512:
		return sha512.New
	}
	return nil
}

func (h HashAlg) size() int {
	switch h {
	case SHA1:
		return sha1.Size
	case SHA256:
		return sha256.Size
	case SHA512:
		return sha512.Size
	}
	return 0
}

func parseHashAlg(s string) (HashAlg, bool) {
	switch h := HashAlg(s); h {
	case SHA1, SHA256, SHA512:
		return h, true
	}
	return "", false
}

const (
	maxSuiteLen    = 128
	questionBytes  = 128 // the Q field of the data input, RFC 6287 section 5.1
	minDigits      = 4
	maxDigits      = 10
	minChallenge   = 4
	maxChallenge   = 64
	maxSessionSize = 512
)

// Suite is a parsed OCRA suite such as "OCRA-1:HOTP-SHA256-6:QN12". The zero value is not a
// valid suite; get one from ParseSuite. A Suite is a value and safe to share.
type Suite struct {
	text string

	Hash   HashAlg // the HMAC hash of the crypto function
	Digits int     // length of the answer, 4 to 10

	Counter bool // C: an 8-byte counter is part of the input

	Challenge    ChallengeFormat
	ChallengeLen int // xx of QFxx, 4 to 64: the length of a generated challenge

	PIN HashAlg // P: the hash applied to the PIN; "" when the suite has no PIN

	SessionLen int // S: session information length in bytes; 0 when absent

	TimeStep time.Duration // T: the time step; 0 when absent
}

// String returns the suite text as parsed; it is what enters the HMAC.
func (s Suite) String() string { return s.text }

// ParseSuite parses an OCRA suite, "OCRA-1:HOTP-SHAx-t:DataInput", where DataInput is
// "[C-]QFxx[-PH][-Snnn][-TG]" (RFC 6287 section 6). It accepts HOTP-SHA1, -SHA256 and
// -SHA512 with 4 to 10 digits, challenges "QN", "QA" or "QH" of 04 to 64 characters, a PIN
// hash of SHA1, SHA256 or SHA512, sessions of 001 to 512 bytes, and time steps of 1-59 S,
// 1-59 M, 1-48 H, 1-99 D or 1-52 W. P, S and T may come in any order after Q, each at most
// once. Truncation 0 (the raw HMAC) is refused: every answer here is typed by a person.
// Errors wrap ErrSuite and never echo more than a short prefix of the input.
func ParseSuite(text string) (Suite, error) {
	if len(text) > maxSuiteLen {
		return Suite{}, fmt.Errorf("%w: longer than %d bytes", ErrSuite, maxSuiteLen)
	}
	parts := strings.Split(text, ":")
	if len(parts) != 3 {
		return Suite{}, fmt.Errorf("%w: %q does not have the form OCRA-1:CRYPTO:DATA",
			ErrSuite, text)
	}
	if parts[0] != "OCRA-1" {
		return Suite{}, fmt.Errorf("%w: version %q is not OCRA-1", ErrSuite, parts[0])
	}

	s := Suite{text: text}
	if err := s.parseCrypto(parts[1]); err != nil {
		return Suite{}, err
	}
	if err := s.parseDataInput(parts[2]); err != nil {
		return Suite{}, err
	}
	return s, nil
}

// parseCrypto reads "HOTP-SHAx-t".
func (s *Suite) parseCrypto(f string) error {
	fields := strings.Split(f, "-")
	if len(fields) != 3 || fields[0] != "HOTP" {
		return fmt.Errorf("%w: crypto function %q is not HOTP-SHAx-t", ErrSuite, f)
	}
	h, ok := parseHashAlg(fields[1])
	if !ok {
		return fmt.Errorf("%w: hash %q is not SHA1, SHA256 or SHA512", ErrSuite, fields[1])
	}
	d, ok := smallInt(fields[2], 1, 2)
	if !ok || d < minDigits || d > maxDigits {
		return fmt.Errorf("%w: truncation %q is not %d to %d digits",
			ErrSuite, fields[2], minDigits, maxDigits)
	}
	s.Hash, s.Digits = h, d
	return nil
}

// parseDataInput reads "[C-]QFxx[-PH][-Snnn][-TG]".
func (s *Suite) parseDataInput(d string) error {
	fields := strings.Split(d, "-")
	if fields[0] == "C" {
		s.Counter = true
		fields = fields[1:]
	}
	if len(fields) == 0 || !strings.HasPrefix(fields[0], "Q") {
		return fmt.Errorf("%w: data input %q has no challenge (QFxx)", ErrSuite, d)
	}
	if err := s.parseQuestion(fields[0]); err != nil {
		return err
	}

	seen := map[byte]bool{}
	for _, f := range fields[1:] {
		if f == "" {
			return fmt.Errorf("%w: empty field in data input %q", ErrSuite, d)
		}
		if seen[f[0]] {
			return fmt.Errorf("%w: %c given twice in data input %q", ErrSuite, f[0], d)
		}
		seen[f[0]] = true

		var err error
		switch f[0] {
		case 'P':
			err = s.parsePIN(f)
		case 'S':
			err = s.parseSession(f)
		case 'T':
			err = s.parseTime(f)
		default:
			err = fmt.Errorf("%w: unknown field %q in data input (want P, S or T after Q)",
				ErrSuite, f)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *Suite) parseQuestion(f string) error {
	if len(f) != 4 {
		return fmt.Errorf("%w: challenge %q is not QFxx", ErrSuite, f)
	}
	switch ChallengeFormat(f[1]) {
	case Numeric, Alphanumeric, Hex:
		s.Challenge = ChallengeFormat(f[1])
	default:
		return fmt.Errorf("%w: challenge format %q is not A, N or H", ErrSuite, f[1:2])
	}
	n, ok := smallInt(f[2:], 2, 2)
	if !ok || n < minChallenge || n > maxChallenge {
		return fmt.Errorf("%w: challenge length %q is not %02d to %02d",
			ErrSuite, f[2:], minChallenge, maxChallenge)
	}
	s.ChallengeLen = n
	return nil
}

func (s *Suite) parsePIN(f string) error {
	h, ok := parseHashAlg(f[1:])
	if !ok {
		return fmt.Errorf("%w: PIN hash %q is not SHA1, SHA256 or SHA512", ErrSuite, f[1:])
	}
	s.PIN = h
	return nil
}

func (s *Suite) parseSession(f string) error {
	n, ok := smallInt(f[1:], 3, 3)
	if !ok || n < 1 || n > maxSessionSize {
		return fmt.Errorf("%w: session length %q is not 001 to %03d", ErrSuite, f[1:],
			maxSessionSize)
	}
	s.SessionLen = n
	return nil
}

func (s *Suite) parseTime(f string) error {
	if len(f) < 3 {
		return fmt.Errorf("%w: time step %q is not TG (such as T1M)", ErrSuite, f)
	}
	unit := f[len(f)-1]
	var step time.Duration
	var hi int
	switch unit {
	case 'S':
		step, hi = time.Second, 59
	case 'M':
		step, hi = time.Minute, 59
	case 'H':
		step, hi = time.Hour, 48
	case 'D':
		step, hi = 24*time.Hour, 99
	case 'W':
		step, hi = 7*24*time.Hour, 52
	default:
		return fmt.Errorf("%w: time step unit %q is not S, M, H, D or W", ErrSuite, f[len(f)-1:])
	}
	n, ok := smallInt(f[1:len(f)-1], 1, 2)
	if !ok || n < 1 || n > hi {
		return fmt.Errorf("%w: time step %q is not 1 to %d%c", ErrSuite, f[1:], hi, unit)
	}
	s.TimeStep = time.Duration(n) * step
	return nil
}

// smallInt parses a decimal of minLen to maxLen ASCII digits, nothing else.
func smallInt(s string, minLen, maxLen int) (int, bool) {
	if len(s) < minLen || len(s) > maxLen {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// Input holds the data inputs of one OCRA computation. Compute reads only the fields the
// suite names and ignores the others.
type Input struct {
	// Counter is C, used when the suite names C.
	Counter uint64

	// Question is the challenge, in the suite's alphabet. It may be up to twice the suite's
	// challenge length, which is how mutual challenge-response concatenates the client's and
	// the server's challenge (RFC 6287 section 7.3). Spaces are not allowed; strip the
	// grouping first.
	Question string

	// PIN is the raw PIN, hashed by Compute with the suite's PIN hash. Set PIN or PINHash,
	// not both, when the suite names P.
	PIN []byte
	// PINHash is the PIN already hashed with the suite's PIN hash.
	PINHash []byte

	// Session is the session information, at most the suite's Snnn bytes; shorter values are
	// padded with zero bytes on the left, as the RFC's reference code does.
	Session []byte

	// Time is the current time, used when the suite names T. Times before 1970 are refused.
	Time time.Time
}

// Compute returns the OCRA answer, a string of s.Digits decimal digits, for key and in.
// It fails, wrapping ErrInput, on an empty key, a challenge outside the suite's alphabet
// or length, or an input the suite names but in does not carry. Compute does not retain key
// or in and never logs them.
func (s Suite) Compute(key []byte, in Input) (string, error) {
	if s.text == "" {
		return "", fmt.Errorf("%w: zero suite", ErrInput)
	}
	if len(key) == 0 {
		return "", fmt.Errorf("%w: empty key", ErrInput)
	}
	msg, err := s.dataInput(in)
	if err != nil {
		return "", err
	}

	mac := hmac.New(s.Hash.new(), key)
	mac.Write(msg)
	sum := mac.Sum(nil)

	// Dynamic truncation as in HOTP (RFC 4226 section 5.3).
	off := int(sum[len(sum)-1] & 0x0f)
	bin := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint64(1)
	for range s.Digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", s.Digits, uint64(bin)%mod), nil
}

// dataInput builds OCRASuite | 00 | C | Q | P | S | T (RFC 6287 section 5.1).
func (s Suite) dataInput(in Input) ([]byte, error) {
	q, err := s.questionField(in.Question)
	if err != nil {
		return nil, err
	}

	msg := make([]byte, 0, len(s.text)+1+8+questionBytes+64+s.SessionLen+8)
	msg = append(msg, s.text...)
	msg = append(msg, 0)
	if s.Counter {
		msg = binary.BigEndian.AppendUint64(msg, in.Counter)
	}
	msg = append(msg, q...)

	if s.PIN != "" {
		p, err := s.pinField(in)
		if err != nil {
			return nil, err
		}
		msg = append(msg, p...)
	}

	if s.SessionLen > 0 {
		if len(in.Session) == 0 {
			return nil, fmt.Errorf("%w: the suite needs session information", ErrInput)
		}
		if len(in.Session) > s.SessionLen {
			return nil, fmt.Errorf("%w: session information is %d bytes, more than %d",
				ErrInput, len(in.Session), s.SessionLen)
		}
		msg = append(msg, make([]byte, s.SessionLen-len(in.Session))...)
		msg = append(msg, in.Session...)
	}

	if s.TimeStep > 0 {
		if in.Time.IsZero() {
			return nil, fmt.Errorf("%w: the suite needs a time", ErrInput)
		}
		secs := in.Time.Unix()
		if secs < 0 {
			return nil, fmt.Errorf("%w: time is before 1970", ErrInput)
		}
		msg = binary.BigEndian.AppendUint64(msg, uint64(secs)/uint64(s.TimeStep/time.Second))
	}
	return msg, nil
}

func (s Suite) pinField(in Input) ([]byte, error) {
	switch {
	case in.PIN != nil && in.PINHash != nil:
		return nil, fmt.Errorf("%w: give the PIN or its hash, not both", ErrInput)
	case in.PINHash != nil:
		if len(in.PINHash) != s.PIN.size() {
			return nil, fmt.Errorf("%w: PIN hash is %d bytes, want %d for %s",
				ErrInput, len(in.PINHash), s.PIN.size(), s.PIN)
		}
		return in.PINHash, nil
	case in.PIN != nil:
		h := s.PIN.new()()
		h.Write(in.PIN)
		return h.Sum(nil), nil
	}
	return nil, fmt.Errorf("%w: the suite needs a PIN", ErrInput)
}

// questionField encodes the challenge into the 128-byte Q field. As in the RFC's reference
// code, a numeric challenge becomes the hexadecimal digits of its value and a hexadecimal
// challenge stays as it is, both left-aligned and padded with zero nibbles; an alphanumeric
// challenge is its ASCII bytes padded with zero bytes.
func (s Suite) questionField(q string) ([]byte, error) {
	if err := s.checkQuestion(q); err != nil {
		return nil, err
	}

	var nibbles string
	switch s.Challenge {
	case Alphanumeric:
		field := make([]byte, questionBytes)
		copy(field, q)
		return field, nil
	case Numeric:
		n, ok := new(big.Int).SetString(q, 10)
		if !ok {
			return nil, fmt.Errorf("%w: challenge is not a decimal number", ErrInput)
		}
		nibbles = n.Text(16)
	case Hex:
		nibbles = strings.ToLower(q)
	}
	if len(nibbles) > 2*questionBytes {
		return nil, fmt.Errorf("%w: challenge does not fit in %d bytes", ErrInput, questionBytes)
	}
	nibbles += strings.Repeat("0", 2*questionBytes-len(nibbles))
	return hex.DecodeString(nibbles)
}

// checkQuestion accepts 1 to twice ChallengeLen characters of the suite's alphabet.
func (s Suite) checkQuestion(q string) error {
	if q == "" {
		return fmt.Errorf("%w: empty challenge", ErrInput)
	}
	if len(q) > 2*s.ChallengeLen {
		return fmt.Errorf("%w: challenge is %d characters, more than %d",
			ErrInput, len(q), 2*s.ChallengeLen)
	}
	for i := 0; i < len(q); i++ {
		if !s.Challenge.allows(q[i]) {
			return fmt.Errorf("%w: challenge character %d is not in the %s alphabet",
				ErrInput, i+1, s.Challenge)
		}
	}
	return nil
}

func (f ChallengeFormat) allows(c byte) bool {
	switch f {
	case Numeric:
		return c >= '0' && c <= '9'
	case Hex:
		return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
	case Alphanumeric:
		return c > ' ' && c < 0x7f
	}
	return false
}

// String names the alphabet for messages.
func (f ChallengeFormat) String() string {
	switch f {
	case Numeric:
		return "numeric"
	case Hex:
		return "hexadecimal"
	case Alphanumeric:
		return "alphanumeric"
	}
	return "unknown"
}
