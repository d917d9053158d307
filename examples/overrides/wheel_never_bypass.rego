# No bypass for administrators.
#
# Members of wheel hold root through sudo. If the PingID service is down and the fail
# mode or another override would let a login skip MFA, members of wheel are refused
# instead. This rule wins over every other, the break-glass account included.
package pingid.overrides

import data.pingid.failmode

administrator if "wheel" in input.user.groups

would_bypass if failmode.fail_mode_action == "bypass"

would_bypass if action == "bypass"

deny contains "members of wheel never skip MFA" if {
	administrator
	would_bypass
}
