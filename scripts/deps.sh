#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need, when they are missing:
# libpam headers for the PAM shim, OpenSSH for the end-to-end tests, valgrind for the
# shim's memory checks. Only root can install; anyone else is told what is missing.
set -euo pipefail

need=()
[ -f /usr/include/security/pam_appl.h ] || need+=(libpam0g-dev)
[ -f /usr/include/security/pam_modules.h ] || need+=(libpam0g-dev)
command -v cc >/dev/null || need+=(gcc libc6-dev)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v valgrind >/dev/null || need+=(valgrind)
[ -d /usr/lib/x86_64-linux-gnu/security ] || [ -d /lib/x86_64-linux-gnu/security ] ||
	need+=(libpam-modules)

[ ${#need[@]} -eq 0 ] && exit 0
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
if [ "$(id -u)" -ne 0 ]; then
	echo "missing Debian packages: ${need[*]} (run: sudo apt-get install ${need[*]})" >&2
	exit 1
fi
echo "installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
