package pingid.overrides.break_glass_test

import data.pingid.failmode

login(user, rhost, tty) := login_via("login", user, rhost, tty)

login_via(service, user, rhost, tty) := {
	"fail_mode": "restrictive",
	"phase": "probe",
	"user": {"name": user, "exists": true, "groups": []},
	"request": {"service": service, "rhost": rhost, "tty": tty},
	"online": {"class": "ok"},
	"offline": {"status": "missing"},
}

cases := {
	"console tty1 bypasses": {"in": login("breakglass", "", "tty1"), "want": "bypass"},
	"console /dev/tty3 bypasses": {"in": login("breakglass", "", "/dev/tty3"), "want": "bypass"},
	"over ssh is denied": {"in": login("breakglass", "198.51.100.4", "ssh"), "want": "deny"},
	"local pty is denied": {"in": login("breakglass", "", "/dev/pts/0"), "want": "deny"},
	"others keep their fail mode": {"in": login("alice", "", "tty1"), "want": "online"},
	"su at the console is denied": {"in": login_via("su", "breakglass", "", "tty1"), "want": "deny"},
}

test_break_glass[note] if {
	some note, tc in cases
	d := failmode.decision with input as tc.in
	d.action == tc.want
}
