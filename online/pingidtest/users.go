package pingidtest

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
)

// User is one scripted user of the simulator.
//
// Behavior is one of:
//   - "approve": a push that is approved at the first status poll
//   - "reject": a push that is rejected
//   - "timeout": a push that is never answered
//   - "otp:NNNNNN": a passcode device that accepts exactly that code
//   - "choose": the user has several devices and is asked to choose; the chosen one is
//     sent a push that is approved
//
// A successful login returns Devices as localFallbackDeviceList.
type User struct {
	Behavior string   `json:"behavior"`
	Devices  []Device `json:"devices"`
}

// Device is a device of a User. ID, Suite (an OCRA suite, normally defaultSuite) and
// KeyHex, its offline secret in hex, are required; Name is what the user is shown.
type Device struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Suite  string `json:"suite"`
	KeyHex string `json:"key_hex"`
}

// defaultSuite is the OCRA suite of the offline codes that pingid-ssh shows and checks.
// The simulator hands a device's suite on as given; pingid-ssh checks it before storing.
const defaultSuite = "OCRA-1:HOTP-SHA256-6:QN12"

var otpPattern = regexp.MustCompile(`^otp:([0-9A-Za-z]{4,64})$`)

// behavior is a parsed User.Behavior.
type behavior struct {
	kind string // approve, reject, timeout, otp, choose
	otp  string
}

func parseBehavior(s string) (behavior, error) {
	switch s {
	case "approve", "reject", "timeout", "choose":
		return behavior{kind: s}, nil
	}
	if m := otpPattern.FindStringSubmatch(s); m != nil {
		return behavior{kind: "otp", otp: m[1]}, nil
	}
	return behavior{}, fmt.Errorf("behavior %q is not approve, reject, timeout, otp:CODE "+
		"or choose", s)
}

// ParseUsers reads a users file: a JSON object from user name to User. Unknown fields,
// bad behaviors, devices without an id, suite or key, and keys that are not hex are errors
// naming the user and the device.
func ParseUsers(data []byte) (map[string]User, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var users map[string]User
	if err := dec.Decode(&users); err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	if err := validateUsers(users); err != nil {
		return nil, err
	}
	return users, nil
}

// LoadUsers reads and checks a users file.
func LoadUsers(path string) (map[string]User, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	users, err := ParseUsers(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return users, nil
}

func validateUsers(users map[string]User) error {
	names := make([]string, 0, len(users))
	for name := range users {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		u := users[name]
		if name == "" || strings.ContainsAny(name, "\x00\r\n") {
			return fmt.Errorf("users: invalid user name %q", name)
		}
		b, err := parseBehavior(u.Behavior)
		if err != nil {
			return fmt.Errorf("users: %s: %w", name, err)
		}
		if b.kind == "choose" && len(u.Devices) < 2 {
			return fmt.Errorf("users: %s: choose needs at least two devices", name)
		}
		for i, d := range u.Devices {
			if d.ID == "" {
				return fmt.Errorf("users: %s: device %d has no id", name, i+1)
			}
			if d.Suite == "" {
				return fmt.Errorf("users: %s: device %s: suite is required; use %s", name,
					d.ID, defaultSuite)
			}
			if d.KeyHex == "" {
				return fmt.Errorf("users: %s: device %s: key_hex is missing", name, d.ID)
			}
			if _, err := hex.DecodeString(d.KeyHex); err != nil {
				return fmt.Errorf("users: %s: device %s: key_hex is not hex", name, d.ID)
			}
		}
	}
	return nil
}
