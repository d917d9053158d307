package config

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxUserNameLen bounds user names; longer ones are refused before any lookup or path.
const MaxUserNameLen = 256

// ErrUnsafeUserName is wrapped by every rejection of CheckUserName.
var ErrUnsafeUserName = errors.New("unsafe user name")

// CheckUserName accepts a name that is safe to put into a path and a log line: valid UTF-8,
// 1 to 256 bytes, no '/', no control bytes, not "." or "..", and not starting with '-'.
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
	case hasControl(name):
		return fmt.Errorf("%w: contains control characters", ErrUnsafeUserName)
	case strings.HasPrefix(name, "-"):
		return fmt.Errorf("%w: starts with '-'", ErrUnsafeUserName)
	}
	return nil
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
