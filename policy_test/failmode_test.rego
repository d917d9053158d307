# METADATA
# title: Tests of the shipped fail-mode policy
# description: |
#   The expected actions are written out by hand from the fail-mode table of the design,
#   then checked for every failure class, every device-file status and both phases.
package pingid.failmode_test

import data.pingid.failmode

groups := {
	"ok": {"ok"},
	"transport": {
		"dns", "connect_refused", "connect_timeout", "tls_handshake", "read_timeout",
		"http_5xx", "http_429", "malformed", "proxy",
	},
	"unusable": {"tls_verify", "http_401", "http_4xx"},
}

statuses := {
	"ready": {"ready"},
	"not_ready": {"missing", "corrupt", "insecure", "foreign", "locked_out", "no_key", "unreadable"},
}

# expected["fail_mode service file phase"] is the action the design's table gives.
expected := {
	"restrictive ok ready probe": "online",
	"restrictive ok ready challenge": "deny",
	"restrictive ok not_ready probe": "online",
	"restrictive ok not_ready challenge": "deny",
	"restrictive transport ready probe": "deny",
	"restrictive transport ready challenge": "deny",
	"restrictive transport not_ready probe": "deny",
	"restrictive transport not_ready challenge": "deny",
	"restrictive unusable ready probe": "deny",
	"restrictive unusable ready challenge": "deny",
	"restrictive unusable not_ready probe": "deny",
	"restrictive unusable not_ready challenge": "deny",
	"passive_offline_authentication ok ready probe": "online",
	"passive_offline_authentication ok ready challenge": "deny",
	"passive_offline_authentication ok not_ready probe": "online",
	"passive_offline_authentication ok not_ready challenge": "deny",
	"passive_offline_authentication transport ready probe": "offline",
	"passive_offline_authentication transport ready challenge": "offline",
	"passive_offline_authentication transport not_ready probe": "deny",
	"passive_offline_authentication transport not_ready challenge": "deny",
	"passive_offline_authentication unusable ready probe": "offline",
	"passive_offline_authentication unusable ready challenge": "offline",
	"passive_offline_authentication unusable not_ready probe": "deny",
	"passive_offline_authentication unusable not_ready challenge": "deny",
	"enforce_offline_authentication ok ready probe": "offline",
	"enforce_offline_authentication ok ready challenge": "offline",
	"enforce_offline_authentication ok not_ready probe": "deny",
	"enforce_offline_authentication ok not_ready challenge": "deny",
	"enforce_offline_authentication transport ready probe": "offline",
	"enforce_offline_authentication transport ready challenge": "offline",
	"enforce_offline_authentication transport not_ready probe": "deny",
	"enforce_offline_authentication transport not_ready challenge": "deny",
	"enforce_offline_authentication unusable ready probe": "offline",
	"enforce_offline_authentication unusable ready challenge": "offline",
	"enforce_offline_authentication unusable not_ready probe": "deny",
	"enforce_offline_authentication unusable not_ready challenge": "deny",
	"permissive ok ready probe": "online",
	"permissive ok ready challenge": "deny",
	"permissive ok not_ready probe": "online",
	"permissive ok not_ready challenge": "deny",
	"permissive transport ready probe": "bypass",
	"permissive transport ready challenge": "deny",
	"permissive transport not_ready probe": "bypass",
	"permissive transport not_ready challenge": "deny",
	"permissive unusable ready probe": "deny",
	"permissive unusable ready challenge": "deny",
	"permissive unusable not_ready probe": "deny",
	"permissive unusable not_ready challenge": "deny",
}

login(fail_mode, class, status, phase) := {
	"fail_mode": fail_mode,
	"phase": phase,
	"user": {"name": "alice", "exists": true, "uid": 1001, "groups": ["dev"]},
	"request": {"service": "sshd", "rhost": "203.0.113.7", "tty": "ssh"},
	"online": {"class": class, "latency_ms": 12, "checked_ms_ago": 40, "last_success_ms_ago": 40},
	"offline": {"status": status, "devices": 1},
	"time": "2026-12-04T10:00:00Z",
}

# Every cell of the table, expanded over each class of its group and each status.
table_cells[note] := want if {
	some cell, want in expected
	[fail_mode, group, file, phase] := split(cell, " ")
	some class in groups[group]
	some status in statuses[file]
	note := sprintf("%s %s %s %s", [fail_mode, class, status, phase])
}

test_every_cell_of_the_table[note] if {
	some note, want in table_cells
	[fail_mode, class, status, phase] := split(note, " ")
	got := failmode.decision with input as login(fail_mode, class, status, phase)
	got.action == want
}

test_the_table_is_complete if {
	# 4 fail modes x 13 classes x 8 statuses x 2 phases
	count(table_cells) == 832
}

test_reasons_name_the_circumstances if {
	got := failmode.decision with input as login("passive_offline_authentication", "dns", "ready", "probe")
	got.reasons == [
		"fail_mode passive_offline_authentication",
		"PingID service: dns",
		"offline device file: ready",
	]
}

test_challenge_phase_explains_the_refused_bypass if {
	got := failmode.decision with input as login("permissive", "read_timeout", "missing", "challenge")
	got.action == "deny"
}

# --- Malformed input --------------------------------------------------------------------

good := login("permissive", "connect_refused", "ready", "probe")

malformed := {
	"fail_mode missing": {"drop": ["fail_mode"], "reason": "input: fail_mode"},
	"fail_mode unknown": {"set": {"fail_mode": "lenient"}, "reason": "input: fail_mode"},
	"fail_mode wrong type": {"set": {"fail_mode": 3}, "reason": "input: fail_mode"},
	"phase missing": {"drop": ["phase"], "reason": "input: phase"},
	"phase unknown": {"set": {"phase": "later"}, "reason": "input: phase"},
	"online missing": {"drop": ["online"], "reason": "input: online.class"},
	"online.class unknown": {"set": {"online": {"class": "teapot"}}, "reason": "input: online.class"},
	"online.class wrong type": {"set": {"online": {"class": ["dns"]}}, "reason": "input: online.class"},
	"online wrong type": {"set": {"online": "dns"}, "reason": "input: online.class"},
	"offline missing": {"drop": ["offline"], "reason": "input: offline.status"},
	"offline.status unknown": {"set": {"offline": {"status": "fine"}}, "reason": "input: offline.status"},
	"offline.status wrong type": {"set": {"offline": {"status": true}}, "reason": "input: offline.status"},
	"user missing": {"drop": ["user"], "reason": "input: user.name"},
	"user.name wrong type": {"set": {"user": {"name": 7}}, "reason": "input: user.name"},
}

test_malformed_input_is_denied[note] if {
	some note, tc in malformed
	login_input := object.union(object.remove(good, object.get(tc, "drop", [])), object.get(tc, "set", {}))
	got := failmode.decision with input as login_input
	got.action == "deny"
	some reason in got.reasons
	startswith(reason, tc.reason)
}

test_empty_input_is_denied if {
	got := failmode.decision with input as {}
	got.action == "deny"
	count(got.reasons) == 5
}

test_the_baseline_of_the_malformed_cases_is_a_bypass if {
	# Without this, the cases above could pass for the wrong reason.
	got := failmode.decision with input as good
	got.action == "bypass"
}

# --- Overrides --------------------------------------------------------------------------

test_override_deny_wins_over_everything if {
	got := failmode.decision with input as good
		with data.pingid.overrides.deny as {"no bypass on Fridays"}
		with data.pingid.overrides.action as "bypass"
	got == {"action": "deny", "reasons": ["override: no bypass on Fridays"]}
}

test_override_deny_reasons_are_all_given if {
	got := failmode.decision with input as good with data.pingid.overrides.deny as {"b", "a"}
	got.reasons == ["override: a", "override: b"]
}

test_empty_override_deny_changes_nothing if {
	got := failmode.decision with input as good with data.pingid.overrides.deny as set()
	got.action == "bypass"
}

test_override_action_replaces_the_fail_mode if {
	got := failmode.decision with input as good with data.pingid.overrides.action as "offline"
	got == {"action": "offline", "reasons": ["override chose offline"]}
}

test_override_may_tighten_to_deny if {
	got := failmode.decision with input as login("permissive", "ok", "ready", "probe")
		with data.pingid.overrides.action as "deny"
	got.action == "deny"
}

override_checks := {
	"bypass refused in challenge": {
		"in": login("permissive", "read_timeout", "ready", "challenge"),
		"action": "bypass",
		"reason": "bypass is refused once the online flow has started",
	},
	"online refused in challenge": {
		"in": login("restrictive", "read_timeout", "ready", "challenge"),
		"action": "online",
		"reason": "online was already tried and failed",
	},
	"offline needs a ready file": {
		"in": login("passive_offline_authentication", "dns", "locked_out", "probe"),
		"action": "offline",
		"reason": "offline needs a ready device file",
	},
}

test_override_actions_are_checked[note] if {
	some note, tc in override_checks
	got := failmode.decision with input as tc.in with data.pingid.overrides.action as tc.action
	got.action == "deny"
	got.reasons[count(got.reasons) - 1] == tc.reason
}

bad_overrides := {
	"unknown action": {"action": "allow"},
	"action of wrong type": {"action": true},
	"action false": {"action": false},
	"deny not a set": {"deny": "nope"},
	"deny is an array": {"deny": ["nope"]},
	"deny of numbers": {"deny": {1}},
}

test_malformed_overrides_deny[note] if {
	some note, tc in bad_overrides
	got := failmode.decision with input as good with data.pingid.overrides as tc
	got.action == "deny"
	some reason in got.reasons
	startswith(reason, "override: ")
}

test_overrides_can_read_the_fail_mode_action if {
	failmode.fail_mode_action == "bypass" with input as good
}
