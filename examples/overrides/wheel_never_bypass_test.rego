package pingid.overrides.wheel_test

import data.pingid.failmode

login(groups, class) := {
	"fail_mode": "permissive",
	"phase": "probe",
	"user": {"name": "admin", "exists": true, "groups": groups},
	"request": {"service": "sshd", "rhost": "198.51.100.4", "tty": "ssh"},
	"online": {"class": class},
	"offline": {"status": "missing"},
}

cases := {
	"wheel is denied instead of bypassed": {"in": login(["wheel"], "connect_timeout"), "want": "deny"},
	"others still bypass": {"in": login(["users"], "connect_timeout"), "want": "bypass"},
	"wheel goes online when the service is up": {"in": login(["wheel"], "ok"), "want": "online"},
}

test_wheel[note] if {
	some note, tc in cases
	d := failmode.decision with input as tc.in
	d.action == tc.want
}

test_wheel_beats_break_glass if {
	d := failmode.decision with input as {
		"fail_mode": "restrictive", "phase": "probe",
		"user": {"name": "breakglass", "exists": true, "groups": ["wheel"]},
		"request": {"service": "login", "rhost": "", "tty": "tty1"},
		"online": {"class": "ok"}, "offline": {"status": "missing"},
	}
	d.action == "deny"
	"override: members of wheel never skip MFA" in d.reasons
}
