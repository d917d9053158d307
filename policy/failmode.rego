# METADATA
# title: PingID fail modes
# description: |
#   Decides what an SSH login does, given the health of the PingID service and of the
#   user's offline device file. The answer is data.pingid.failmode.decision, an object
#   {"action": "online" | "offline" | "deny" | "bypass", "reasons": [string, ...]}.
#
#   Order of precedence:
#     1. malformed input or a malformed override       -> deny
#     2. any reason in data.pingid.overrides.deny      -> deny
#     3. data.pingid.overrides.action, when defined    -> that action
#     4. the fail_mode table below                     -> its action
#   Steps 3 and 4 then pass a safety check: no bypass once the online flow has started,
#   no offline without a ready device file, no second online attempt.
package pingid.failmode

# The four answers a decision can give.
actions := {"online", "offline", "deny", "bypass"}

# PingID's fail_mode values, from pingid.conf.
fail_modes := {
	"restrictive",
	"passive_offline_authentication",
	"enforce_offline_authentication",
	"permissive",
}

# When the policy is asked: before any prompt, or after the online flow broke.
phases := {"probe", "challenge"}

# The service could not be talked to at all: nothing proves anyone is in the way.
transport_failures := {
	"dns",
	"connect_refused",
	"connect_timeout",
	"tls_handshake",
	"read_timeout",
	"http_5xx",
	"http_429",
	"malformed",
	"proxy",
}

# Something answered but cannot be used. Whoever controls the network can cause these,
# so they must never switch MFA off.
reached_but_unusable := {"tls_verify", "http_401", "http_4xx"}

# What the probe of the PingID API may report.
online_classes := ({"ok"} | transport_failures) | reached_but_unusable

# What the check of the user's .localFallbackDevices file may report.
offline_statuses := {
	"ready",
	"missing",
	"corrupt",
	"insecure",
	"foreign",
	"locked_out",
	"no_key",
	"unreadable",
}

# METADATA
# description: The decision. Anything this file does not positively allow is a deny.
default decision := {"action": "deny", "reasons": ["no rule of the policy matched"]}

decision := {"action": "deny", "reasons": sort(problems)} if {
	count(problems) > 0
} else := {"action": "deny", "reasons": sort(override_denials)} if {
	count(override_denials) > 0
} else := checked(override_action, [sprintf("override chose %s", [override_action])]) if {
	type_name(override_action)
} else := checked(fail_mode_action, fail_mode_reasons)

# --- The fail_mode table -------------------------------------------------------------

service_ok if input.online.class == "ok"

transport_failure if input.online.class in transport_failures

offline_ready if input.offline.status == "ready"

offline_allowed if input.fail_mode in {"passive_offline_authentication", "enforce_offline_authentication"}

# METADATA
# description: |
#   The action of the fail_mode alone, before overrides. Overrides may read it, for
#   example to refuse a bypass for some users.
fail_mode_action := "online" if {
	input.fail_mode != "enforce_offline_authentication"
	service_ok
} else := "offline" if {
	offline_allowed
	offline_ready
} else := "bypass" if {
	input.fail_mode == "permissive"
	transport_failure
	input.phase == "probe"
} else := "deny"

fail_mode_reasons := [
	sprintf("fail_mode %s", [input.fail_mode]),
	sprintf("PingID service: %s", [input.online.class]),
	sprintf("offline device file: %s", [input.offline.status]),
]

# --- Safety checks on the chosen action ----------------------------------------------

# checked passes action through unless it cannot be carried out safely here.
checked(action, reasons) := deny_with(reasons, "bypass is refused once the online flow has started") if {
	action == "bypass"
	input.phase == "challenge"
} else := deny_with(reasons, "online was already tried and failed") if {
	action == "online"
	input.phase == "challenge"
} else := deny_with(reasons, "offline needs a ready device file") if {
	action == "offline"
	not offline_ready
} else := {"action": action, "reasons": reasons}

deny_with(reasons, why) := {"action": "deny", "reasons": array.concat(reasons, [why])}

# --- Overrides -----------------------------------------------------------------------

override_denials := {sprintf("override: %s", [r]) | some r in data.pingid.overrides.deny}

override_action := data.pingid.overrides.action

# --- Malformed input or overrides: each problem is a reason to deny ------------------

# Each field the decision reads must be present and known; an absent field is never
# read as a harmless default.
problems contains sprintf("input: fail_mode %s is not one of %v", [show(["fail_mode"]), fail_modes]) if {
	not known_fail_mode
}

problems contains sprintf("input: phase %s is not one of %v", [show(["phase"]), phases]) if {
	not known_phase
}

problems contains sprintf("input: online.class %s is not a known class", [show(["online", "class"])]) if {
	not known_class
}

problems contains sprintf("input: offline.status %s is not a known status", [show(["offline", "status"])]) if {
	not known_status
}

problems contains "input: user.name must be a string" if {
	not user_named
}

known_fail_mode if input.fail_mode in fail_modes

known_phase if input.phase in phases

known_class if input.online.class in online_classes

known_status if input.offline.status in offline_statuses

user_named if is_string(input.user.name)

problems contains "override: deny must be a set of strings" if {
	type_name(data.pingid.overrides.deny) != "set"
}

problems contains "override: deny must be a set of strings" if {
	some r in data.pingid.overrides.deny
	not is_string(r)
}

problems contains sprintf("override: action %s is not one of %v", [json.marshal(override_action), actions]) if {
	not override_action in actions
}

# show prints the input field at path for a reason, or "(missing)" when it is absent.
show(path) := json.marshal(object.get(input, path, "(missing)"))
