package engine

import (
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Phase says when the policy is asked.
type Phase string

// The phases of a login.
const (
	// PhaseProbe is before any prompt, from the background probe's view of the service.
	PhaseProbe Phase = "probe"
	// PhaseChallenge is after the online flow started and then broke.
	PhaseChallenge Phase = "challenge"
)

// Input is what a decision is made from; its JSON form is the policy's input document
// and the file format of "pingid-ssh decide --input".
type Input struct {
	FailMode string     `json:"fail_mode"`
	Phase    Phase      `json:"phase"`
	User     User       `json:"user"`
	Request  Request    `json:"request"`
	Online   Service    `json:"online"`
	Offline  DeviceFile `json:"offline"`
	Time     time.Time  `json:"time"`
}

// User is the local account that is logging in, as NSS reports it.
type User struct {
	Name   string   `json:"name"`
	Exists bool     `json:"exists"`
	UID    *int64   `json:"uid,omitempty"` // nil when the user does not exist
	Groups []string `json:"groups"`
}

// Request is what PAM reports of the login.
type Request struct {
	Service string `json:"service"`
	RHost   string `json:"rhost"`
	TTY     string `json:"tty"`
}

// Service is the last known health of the PingID API.
type Service struct {
	Class        string `json:"class"`
	LatencyMS    int64  `json:"latency_ms"`
	CheckedMSAgo int64  `json:"checked_ms_ago"`
	// LastSuccessMSAgo is nil when no probe has ever succeeded.
	LastSuccessMSAgo *int64 `json:"last_success_ms_ago,omitempty"`
}

// DeviceFile is the state of the user's offline device file.
type DeviceFile struct {
	Status  string `json:"status"`
	Devices int    `json:"devices"`
	// AgeMS is how long ago the file was sealed (after an online login); nil when no file
	// could be opened. Overrides may refuse offline logins on a file too old to trust.
	AgeMS *int64 `json:"age_ms,omitempty"`
}

// value builds the input document directly as an AST value. It is the hot path of every
// decision, so it avoids a round trip through JSON or reflection.
func (in *Input) value() ast.Value {
	groups := make([]*ast.Term, len(in.User.Groups))
	for i, g := range in.User.Groups {
		groups[i] = ast.StringTerm(g)
	}
	user := ast.NewObject(
		item("name", ast.StringTerm(in.User.Name)),
		item("exists", ast.BooleanTerm(in.User.Exists)),
		item("groups", ast.ArrayTerm(groups...)),
	)
	if in.User.UID != nil {
		user.Insert(ast.StringTerm("uid"), ast.IntNumberTerm(int(*in.User.UID)))
	}
	online := ast.NewObject(
		item("class", ast.StringTerm(in.Online.Class)),
		item("latency_ms", ast.IntNumberTerm(int(in.Online.LatencyMS))),
		item("checked_ms_ago", ast.IntNumberTerm(int(in.Online.CheckedMSAgo))),
	)
	if in.Online.LastSuccessMSAgo != nil {
		online.Insert(ast.StringTerm("last_success_ms_ago"),
			ast.IntNumberTerm(int(*in.Online.LastSuccessMSAgo)))
	}
	offline := ast.NewObject(
		item("status", ast.StringTerm(in.Offline.Status)),
		item("devices", ast.IntNumberTerm(in.Offline.Devices)),
	)
	if in.Offline.AgeMS != nil {
		offline.Insert(ast.StringTerm("age_ms"), ast.IntNumberTerm(int(*in.Offline.AgeMS)))
	}
	return ast.NewObject(
		item("fail_mode", ast.StringTerm(in.FailMode)),
		item("phase", ast.StringTerm(string(in.Phase))),
		item("user", ast.NewTerm(user)),
		item("request", ast.ObjectTerm(
			item("service", ast.StringTerm(in.Request.Service)),
			item("rhost", ast.StringTerm(in.Request.RHost)),
			item("tty", ast.StringTerm(in.Request.TTY)),
		)),
		item("online", ast.NewTerm(online)),
		item("offline", ast.NewTerm(offline)),
		item("time", ast.StringTerm(in.Time.UTC().Format(time.RFC3339Nano))),
	)
}

func item(key string, value *ast.Term) [2]*ast.Term {
	return ast.Item(ast.StringTerm(key), value)
}
