package config

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxUserNameLen bounds user names; longer ones are refused before any lookup or path.
const MaxUserNameLen = 256

// ErrUnsafeUserName is wrapped by every rejection of CheckUserName.
var ErrUnsafeUserName = errors.New("unsafe user name")

// CheckUserName accepts a name that is safe to put into a path and a log line: valid UTF-8,
// 1 to 256 bytes, no '/', no control or bidirectional formatting characters, no "..", and
// not starting with '-'.
func CheckUserName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrUnsafeUserName)
	case len(name) > MaxUserNameLen:
		return fmt.Errorf("%w: longer than %d bytes", ErrUnsafeUserName, MaxUserNameLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: not valid UTF-8", ErrUnsafeUserName)
	case name == "." || name == ".." || strings.Contains(name, ".."):
		return fmt.Errorf("%w: contains '..'", ErrUnsafeUserName)
	case strings.ContainsRune(name, '/'):
		return fmt.Errorf("%w: contains '/'", ErrUnsafeUserName)
	case strings.ContainsFunc(name, unsafeRune):
		return fmt.Errorf("%w: contains control or bidirectional formatting characters",
			ErrUnsafeUserName)
	case strings.HasPrefix(name, "-"):
		return fmt.Errorf("%w: starts with '-'", ErrUnsafeUserName)
	}
	return nil
}

// unsafeRune reports C0 and C1 controls and the bidirectional formatting characters, which
// can rewrite how a log line or a terminal shows what follows them.
func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || r == '\u200e' || r == '\u200f' ||
		r >= '\u202a' && r <= '\u202e' || r >= '\u2066' && r <= '\u2069'
}

// DevicesPath expands offline_devices_path for user. It refuses unsafe names, so the
// result never leaves the directory the template names.
func (c *Config) DevicesPath(user string) (string, error) {
	if err := CheckUserName(user); err != nil {
		return "", err
	}
	return strings.ReplaceAll(c.OfflineDevicesPath, "${username}", user), nil
}

// PingIDUser is the name sent to PingID: the local name plus domain_postfix.
func (c *Config) PingIDUser(user string) string {
	return user + c.DomainPostfix
}
