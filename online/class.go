package online

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"syscall"
)

// Class names how a call to the PingID API ended: ClassOK, or one failure class. The
// values are the strings the policy sees as input.online.class.
type Class string

// The classes. Transport failures (the service could not be reached or did not answer)
// are ClassDNS to ClassMalformed and ClassProxy; ClassTLSVerify, ClassHTTP401 and
// ClassHTTP4xx mean something answered that is not a usable PingID service.
const (
	ClassOK             Class = "ok"
	ClassDNS            Class = "dns"             // name did not resolve
	ClassConnectRefused Class = "connect_refused" // TCP refused or reset before TLS
	ClassConnectTimeout Class = "connect_timeout" // no TCP connection within connect_timeout
	ClassTLSHandshake   Class = "tls_handshake"   // TLS failed for a reason other than trust
	ClassTLSVerify      Class = "tls_verify"      // certificate untrusted, expired or wrong name
	ClassReadTimeout    Class = "read_timeout"    // connected, but no complete answer in time
	ClassHTTP5xx        Class = "http_5xx"
	ClassHTTP429        Class = "http_429"
	ClassHTTP401        Class = "http_401" // 401/403, or an answer whose signature fails
	ClassHTTP4xx        Class = "http_4xx" // other 4xx, or a signed answer the flow cannot use
	ClassMalformed      Class = "malformed"
	ClassProxy          Class = "proxy" // the configured proxy failed or refused the tunnel
)

// Classes lists every class, ClassOK first.
var Classes = []Class{
	ClassOK, ClassDNS, ClassConnectRefused, ClassConnectTimeout, ClassTLSHandshake,
	ClassTLSVerify, ClassReadTimeout, ClassHTTP5xx, ClassHTTP429, ClassHTTP401, ClassHTTP4xx,
	ClassMalformed, ClassProxy,
}

// ErrRejected means the service said no: a rejected push, a passcode wrong maxPrompts
// times, a blocked user, or any signed refusal after the flow began. It is a deny and is
// never handed to the policy.
var ErrRejected = errors.New("authentication rejected")

// ErrNotRegistered means the service, in a signed answer, does not know the user. The
// caller applies policy_user_not_registered.
var ErrNotRegistered = errors.New("user not registered with PingID")

// ErrTimeout means the user did not answer (push never approved, prompt never answered)
// before the login's deadline. It is a deny and is never handed to the policy.
var ErrTimeout = errors.New("no answer from the user in time")

// ErrInvalidUser refuses a user name the API cannot carry (empty, too long, control
// characters) before anything is sent. It is a deny, never a failure class.
var ErrInvalidUser = errors.New("user name cannot be sent to PingID")

// Error is every failure of the client other than ErrRejected, ErrNotRegistered and
// ErrTimeout: the operation, its class, and whether the flow had begun.
type Error struct {
	Op      string // API operation, or "probe"
	Class   Class
	Started bool // startauthentication had answered before this broke
	Err     error
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s: %v", e.Op, e.Class, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Classify returns the class of any error the client returns: ClassOK for nil, the Class
// of an *Error, and otherwise the class read from the error values themselves. ErrRejected,
// ErrNotRegistered and ErrTimeout are not connectivity failures; they classify as
// ClassOK because the service was reached.
func Classify(err error) Class {
	if err == nil {
		return ClassOK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	if errors.Is(err, ErrRejected) || errors.Is(err, ErrNotRegistered) || errors.Is(err, ErrTimeout) {
		return ClassOK
	}
	return classifyTransport(err, phaseNone)
}

// phase is how far a request got; it names a bare timeout or cancellation.
type phase int32

const (
	phaseNone phase = iota
	phaseProxy
	phaseDNS
	phaseConnect
	phaseTLS
	phaseWait // request written, waiting for the status line
	phaseBody // reading the body
)

// tracker follows one call's phase across attempts; its methods are safe for concurrent use
// (the transport dials on its own goroutine).
type tracker struct {
	p          atomic.Int32
	idempotent bool // the call may be repeated (probe, authstatus, cancelauthentication)
}

func (t *tracker) set(p phase) { t.p.Store(int32(p)) }
func (t *tracker) get() phase  { return phase(t.p.Load()) }

type trackerKey struct{}

func trackerFrom(ctx context.Context) *tracker {
	t, _ := ctx.Value(trackerKey{}).(*tracker)
	return t
}

// proxyError marks a failure in reaching or negotiating with the proxy.
type proxyError struct{ err error }

func (e *proxyError) Error() string { return "proxy: " + e.err.Error() }
func (e *proxyError) Unwrap() error { return e.err }

// classifyTransport reads the class from a transport error; p is the phase the request had
// reached, used when the error itself does not say (a deadline or cancellation).
func classifyTransport(err error, p phase) Class {
	var pe *proxyError
	if errors.As(err, &pe) || p == phaseProxy {
		return ClassProxy
	}

	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return ClassDNS
	}

	// Trust failures: the peer spoke TLS but could not prove it is the service.
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verifyErr *tls.CertificateVerificationError
	if errors.As(err, &unknownCA) || errors.As(err, &hostErr) || errors.As(err, &invalid) ||
		errors.As(err, &verifyErr) {
		return ClassTLSVerify
	}
	var alert tls.AlertError
	var recErr tls.RecordHeaderError
	if errors.As(err, &alert) || errors.As(err, &recErr) {
		return ClassTLSHandshake
	}

	if errors.Is(err, syscall.ECONNREFUSED) {
		return ClassConnectRefused
	}

	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		if opErr.Timeout() {
			return ClassConnectTimeout
		}
		return ClassConnectRefused // unreachable, reset during connect and the like
	}

	timeout := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		isTimeout(err)
	switch p {
	case phaseDNS:
		return ClassDNS
	case phaseNone, phaseConnect:
		if timeout {
			return ClassConnectTimeout
		}
		return ClassConnectRefused
	case phaseTLS:
		if timeout {
			// Connected, then silence: the server does not answer.
			return ClassReadTimeout
		}
		return ClassTLSHandshake
	}
	// After the request went out, silence, a dropped connection (EOF, reset) and any
	// other read failure all mean that no complete answer came back.
	return ClassReadTimeout
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
