# Break-glass account.
#
# The emergency account may skip MFA, but only at the machine's own console, where
# physical access is the second factor. From anywhere else it is refused outright.
package pingid.overrides

break_glass_accounts := {"breakglass"}

at_the_console if {
	input.request.service == "login"
	input.request.rhost == ""
	regex.match(`^(/dev/)?tty[0-9]+$`, input.request.tty)
}

break_glass_login if input.user.name in break_glass_accounts

action := "bypass" if {
	break_glass_login
	at_the_console
}

deny contains "the break-glass account may log in only at the console" if {
	break_glass_login
	not at_the_console
}
