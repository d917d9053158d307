#!/usr/bin/env bash
# The pingid-ssh demo: a local PingID simulator, the daemon, and real logins through the
# daemon's socket, all in a temporary directory. Exits 0 only if every step gave the
# expected outcome.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
bin="$top/bin/pingid-ssh"
work=$(mktemp -d /tmp/pingid-demo.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
exec 4>&1 # the transcript goes here, also from inside $(...)
# Files in the temporary directory belong to whoever runs the demo; as root they pass the
# ownership checks anyway.
[ "$(id -u)" -eq 0 ] || export PINGID_INSECURE_FILES=1

user=root  # an account every machine has, so NSS answers for it
device_key=3132333435363738393031323334353637383930313233343536373839303132
failed=0

caption() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
expect() { # expect WHAT WANT GOT
	if [ "$2" = "$3" ]; then
		printf '   ok: %s -> %s\n' "$1" "$3"
	else
		printf '   UNEXPECTED: %s -> %s (wanted %s)\n' "$1" "$3" "$2"
		failed=1
	fi
}

# fault KIND switches the simulator's server-wide fault through its admin endpoint.
fault() {
	exec 3<>"/dev/tcp/127.0.0.1/$admin_port"
	printf 'POST /fault?user=&kind=%s HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n' \
		"$1" >&3
	head -1 <&3 | tr -d '\r' | grep -q ' 200 ' || { echo "fault $1 refused"; exit 1; }
	exec 3>&-
}

# set_conf KEY VALUE rewrites pingid.conf the way an editor does: new file, then rename.
set_conf() {
	sed "s|^$1 = .*|$1 = $2|" "$work/pingid.conf" >"$work/pingid.conf.new"
	mv "$work/pingid.conf.new" "$work/pingid.conf"
	sleep 1 # the daemon reloads within its debounce; give it a moment
}

# login runs one login through the daemon and prints the result word.
login() {
	"$bin" login --config "$work/pingid.conf" --user "$user" --rhost 203.0.113.7 "$@" \
		</dev/null | tee "$work/login.out" | sed 's/^/   | /' >&4
	sed -n 's/^result: //p' "$work/login.out"
}

# login_offline answers the 12-digit key with the code the user's device computes.
login_offline() {
	coproc LOGIN { "$bin" login --config "$work/pingid.conf" --user "$user" \
		--rhost 203.0.113.7 2>&1; }
	# bash unsets LOGIN and LOGIN_PID as soon as it reaps the coprocess, which can happen
	# before its last lines are read: keep the descriptors and the pid.
	local in=${LOGIN[0]} out=${LOGIN[1]} pid=$LOGIN_PID
	local line key result=""
	while IFS= read -r line <&"$in"; do
		printf '   | %s\n' "$line" >&4
		case "$line" in
		*"PingID app: "[0-9]*)
			key=${line##*PingID app: }
			code=$("$bin" offline respond --key "$device_key" --challenge "${key// /}")
			printf '   (the phone computes %s for key %s)\n' "$code" "$key" >&4
			echo "$code" >&"$out"
			;;
		"result: "*) result=${line#result: } ;;
		esac
	done
	wait "$pid" 2>/dev/null || true
	echo "$result"
}

caption "Start a PingID simulator on loopback (user $user approves pushes)"
cat >"$work/users.json" <<JSON
{"$user": {"behavior": "approve", "devices": [{"id": "d1", "name": "phone",
  "suite": "OCRA-1:HOTP-SHA256-6:QN12", "key_hex": "$device_key"}]}}
JSON
"$bin" simulate --users "$work/users.json" --ca-out "$work/ca.pem" \
	--properties-out "$work/pingid.properties" --admin 127.0.0.1:0 >"$work/sim.out" \
	2>"$work/sim.log" &
pids+=($!)
for _ in $(seq 50); do grep -q '^admin:' "$work/sim.out" 2>/dev/null && break; sleep 0.1; done
admin_port=$(sed -n 's|^admin: http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$work/sim.out")
sed -n 's/^simulator: /   API at /p' "$work/sim.out"

caption "Configure pingid-ssh (fail_mode passive_offline_authentication) and start the daemon"
mkdir -p "$work/policy.d"
cat >"$work/pingid.conf" <<CONF
fail_mode = passive_offline_authentication
pingid_properties_file = $work/pingid.properties
ca_file = $work/ca.pem
policy_dir = $work/policy.d
socket_path = $work/pingid.sock
state_dir = $work/state
offline_key_file = $work/offline.key
offline_devices_path = $work/devices/\${username}/.localFallbackDevices
connect_timeout = 1s
probe_interval = 2s
auth_timeout = 30s
CONF
"$bin" config check --config "$work/pingid.conf" | sed 's/^/   /'
"$bin" offline init-key --config "$work/pingid.conf" | sed 's/^/   /'
"$bin" serve --config "$work/pingid.conf" 2>"$work/daemon.log" &
pids+=($!)
for _ in $(seq 100); do [ -S "$work/pingid.sock" ] && break; sleep 0.1; done
[ -S "$work/pingid.sock" ] || { cat "$work/daemon.log"; echo "daemon did not start"; exit 1; }

caption "1. Service up: the push is approved, and the offline device file appears"
expect "login with push" success "$(login)"
status=$("$bin" offline status --config "$work/pingid.conf" --user "$user" --json)
echo "   offline status: $status"
expect "device file" ready "$(echo "$status" | sed -n 's/.*"status": *"\([a-z_]*\)".*/\1/p')"

caption "2. Service down (connections refused): the same user logs in offline"
fault refuse
expect "login with the 12-digit key" success "$(login_offline)"

caption "3. fail_mode = restrictive, edited live: no login while the service is down"
set_conf fail_mode restrictive
expect "login" deny "$(login)"

caption "4. fail_mode = permissive, edited live: the outage is bypassed (and logged)"
set_conf fail_mode permissive
expect "login" bypass "$(login)"
grep -q '"fail_open":true' "$work/daemon.log" && echo "   daemon log: fail-open event recorded"

caption "5. Service back, and an override file denies members of group root"
fault none
set_conf fail_mode passive_offline_authentication
cat >"$work/policy.d/freeze.rego" <<'REGO'
package pingid.overrides

deny contains "change freeze: members of group root may not log in" if {
	"root" in input.user.groups
}
REGO
sleep 1
expect "login" deny "$(login)"
grep -o '"reasons":\["override: [^"]*"\]' "$work/daemon.log" | tail -1 | sed 's/^/   daemon log: /'

echo
if [ "$failed" -ne 0 ]; then
	echo "demo: some steps did not give the expected outcome (logs in $work were removed)"
	tail -20 "$work/daemon.log"
	exit 1
fi
echo "demo: every step gave the expected outcome"
