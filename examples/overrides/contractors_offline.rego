# Contractors authenticate offline only.
#
# Accounts in the contractors group always use the offline 12-digit challenge, whatever
# the state of the PingID service; without a ready device file they are refused.
package pingid.overrides

contractor if "contractors" in input.user.groups

action := "offline" if {
	contractor
	not break_glass_login
}
