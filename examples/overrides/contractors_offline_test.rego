package pingid.overrides.contractors_test

import data.pingid.failmode

login(groups, class, status) := {
	"fail_mode": "permissive",
	"phase": "probe",
	"user": {"name": "carol", "exists": true, "groups": groups},
	"request": {"service": "sshd", "rhost": "198.51.100.4", "tty": "ssh"},
	"online": {"class": class},
	"offline": {"status": status},
}

cases := {
	"offline while the service is up": {"in": login(["contractors"], "ok", "ready"), "want": "offline"},
	"offline while the service is down": {"in": login(["contractors"], "dns", "ready"), "want": "offline"},
	"never a bypass": {"in": login(["contractors"], "connect_refused", "missing"), "want": "deny"},
	"employees unchanged": {"in": login(["staff"], "ok", "ready"), "want": "online"},
}

test_contractors[note] if {
	some note, tc in cases
	d := failmode.decision with input as tc.in
	d.action == tc.want
}
