// Package wire holds the message format of the PingID API (version 4 REST operations) that
// both the client in package online and the simulator in online/pingidtest speak: compact
// JWS envelopes signed with HS256, the reqHeader/reqBody request payload and the
// responseBody answer, and the errorId values that steer an authentication.
package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// MinKeyLen is the shortest HS256 key accepted: RFC 7518 section 3.2 asks for a key at
// least as long as the hash output.
const MinKeyLen = 32

// MaxMessage bounds what is read of any request or response body.
const MaxMessage = 64 << 10

// Version is the API version sent in every reqHeader.
const Version = "4.9"

// TimestampLayout is the reqHeader timestamp format of the PingID API.
const TimestampLayout = "2006-01-02 15:04:05.000"

// errorId values of the PingID API that steer an authentication.
const (
	OK              = 200
	OTPSMS          = 30001
	OTPVoice        = 30002
	OTPApp          = 30003 // push disabled on the device: enter the app's passcode
	OTPYubiKey      = 30004
	OTPEmail        = 30005
	OTPAppGenerate  = 30006
	Online          = 30007 // continue with authonline
	ChooseDevice    = 30008
	OTPPingIDApp    = 30009
	Wait            = 30010 // push sent; poll authstatus
	OTPToken        = 30012
	OTPAuthenticatr = 30015
	UserNotFound    = 10564
)

// IsOTP reports whether errorId asks for a one-time passcode (then authoffline).
func IsOTP(id int) bool {
	switch id {
	case OTPSMS, OTPVoice, OTPApp, OTPYubiKey, OTPEmail, OTPAppGenerate, OTPPingIDApp,
		OTPToken, OTPAuthenticatr:
		return true
	}
	return false
}

// ReqHeader is the reqHeader object of every request.
type ReqHeader struct {
	Locale    string `json:"locale"`
	OrgAlias  string `json:"orgAlias"`
	SecretKey string `json:"secretKey"`
	Timestamp string `json:"timestamp"`
	Version   string `json:"version"`
}

// Request is the payload of a request JWS.
type Request struct {
	ReqHeader ReqHeader       `json:"reqHeader"`
	ReqBody   json.RawMessage `json:"reqBody"`
}

// Response is the payload of a response JWS (or of an unsigned JSON error body).
type Response struct {
	ResponseBody *ResponseBody `json:"responseBody"`
}

// ResponseBody holds the fields of every operation's answer that this project reads.
type ResponseBody struct {
	ErrorID     *int             `json:"errorId"`
	ErrorMsg    string           `json:"errorMsg"`
	UniqueMsgID string           `json:"uniqueMsgId"`
	SessionID   string           `json:"sessionId,omitempty"`
	UserDevices []Device         `json:"userDevices,omitempty"`
	Fallback    []FallbackDevice `json:"localFallbackDeviceList,omitempty"`
}

// Device is one entry of userDevices.
type Device struct {
	DeviceID   json.Number `json:"deviceId"`
	DeviceRole string      `json:"deviceRole,omitempty"`
	Type       string      `json:"type,omitempty"`
	Nickname   string      `json:"nickname,omitempty"`
	DisplayID  string      `json:"displayID,omitempty"`
}

// FallbackDevice is one entry of localFallbackDeviceList: the material that lets the host
// check the device's offline codes. Key is secret (base64 in JSON).
type FallbackDevice struct {
	ID    string `json:"deviceId"`
	Name  string `json:"name"`
	Suite string `json:"suite"`
	Key   []byte `json:"key"`
}

// Request bodies of the operations used.
type (
	// StartAuth is the reqBody of startauthentication.
	StartAuth struct {
		SpAlias   string       `json:"spAlias"`
		UserName  string       `json:"userName"`
		Async     bool         `json:"async,omitempty"`
		SessionID string       `json:"sessionId,omitempty"`
		DeviceID  *json.Number `json:"deviceId,omitempty"`
	}
	// AuthOnline is the reqBody of authonline.
	AuthOnline struct {
		SpAlias   string       `json:"spAlias"`
		UserName  string       `json:"userName"`
		AuthType  string       `json:"authType"`
		SessionID string       `json:"sessionId"`
		DeviceID  *json.Number `json:"deviceId,omitempty"`
	}
	// AuthOffline is the reqBody of authoffline.
	AuthOffline struct {
		SpAlias   string       `json:"spAlias"`
		UserName  string       `json:"userName"`
		OTP       string       `json:"otp"`
		SessionID string       `json:"sessionId"`
		DeviceID  *json.Number `json:"deviceId,omitempty"`
	}
	// SessionRef is the reqBody of authstatus and cancelauthentication.
	SessionRef struct {
		SessionID  string `json:"sessionId"`
		CancelType string `json:"cancelAuthenticationType,omitempty"`
	}
)

// ErrNotJWS means the text is not a compact JWS at all (for example plain JSON or HTML).
var ErrNotJWS = errors.New("not a compact JWS")

// ErrSignature means the text is a JWS whose algorithm or MAC does not check out.
var ErrSignature = errors.New("bad signature")

// Header holds the JOSE header fields of an envelope other than alg.
type Header map[string]string

// Sign returns payload as a compact JWS: HS256 under key, with header's fields in the
// protected JOSE header. key must be at least MinKeyLen bytes.
func Sign(key []byte, header Header, payload []byte) (string, error) {
	opts := &jose.SignerOptions{}
	for k, v := range header {
		opts.WithHeader(jose.HeaderKey(k), v)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: key}, opts)
	if err != nil {
		return "", fmt.Errorf("signer: %w", err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return obj.CompactSerialize()
}

// LooksCompact reports whether b has the shape of a compact JWS: three base64url parts.
func LooksCompact(b []byte) bool {
	s := strings.TrimSpace(string(b))
	if strings.Count(s, ".") != 2 || s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// Verify checks a compact JWS: alg must be HS256 and the MAC must match key. It returns
// the string-valued fields of the protected header and the payload. The error wraps
// ErrNotJWS when text is not a JWS, ErrSignature when it is one that does not verify.
func Verify(key []byte, text []byte) (Header, []byte, error) {
	if !LooksCompact(text) {
		return nil, nil, ErrNotJWS
	}
	obj, err := jose.ParseSignedCompact(strings.TrimSpace(string(text)),
		[]jose.SignatureAlgorithm{jose.HS256})
	if err != nil {
		// A well-formed envelope with another alg ("none", RS256) lands here too.
		return nil, nil, fmt.Errorf("%w: %v", ErrSignature, err)
	}
	payload, err := obj.Verify(key)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrSignature, err)
	}
	h := Header{}
	if len(obj.Signatures) == 1 {
		for k, v := range obj.Signatures[0].Protected.ExtraHeaders {
			if s, ok := v.(string); ok {
				h[string(k)] = s
			}
		}
	}
	return h, payload, nil
}

// OrgAlias returns the organisation alias named in a response header: "orgAlias", or the
// older "org_alias".
func (h Header) OrgAlias() string {
	if v := h["orgAlias"]; v != "" {
		return v
	}
	return h["org_alias"]
}

// mountain is the zone of the API's timestamps; without tzdata a fixed UTC-7 stands in.
var mountain = func() *time.Location {
	if loc, err := time.LoadLocation("America/Denver"); err == nil {
		return loc
	}
	return time.FixedZone("MST", -7*3600)
}()

// Timestamp formats t as the reqHeader timestamp, in the US Mountain zone that the API's
// own examples use.
func Timestamp(t time.Time) string {
	return t.In(mountain).Format(TimestampLayout)
}

// ParseTimestamp reads a reqHeader timestamp.
func ParseTimestamp(s string) (time.Time, error) {
	return time.ParseInLocation(TimestampLayout, s, mountain)
}
