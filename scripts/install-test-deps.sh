#!/usr/bin/env bash
# Install the Debian 12 packages the test suite and the demo need, only when missing.
#
#   scripts/install-test-deps.sh          # everything the test suite needs (needs root)
#   scripts/install-test-deps.sh demo     # only what `ssprd demo` needs (slapd, ldap-utils, aiosmtpd)
#
# Packaged services (slapd, samba, smbd, nmbd, winbind) are NOT started or enabled by the
# install: the test harness runs its own private instances on loopback, and a system slapd or
# samba would hold ports the Samba AD DC test instance needs (389/636/88/445).
set -euo pipefail

demo_pkgs=(slapd ldap-utils openssl ca-certificates python3-aiosmtpd)
test_pkgs=("${demo_pkgs[@]}"
  samba samba-ad-dc samba-ad-provision samba-dsdb-modules samba-vfs-modules winbind krb5-user
  iproute2 procps
  # scripts/package-test.sh: the unit's exposure, the .deb's dependency, the .rpm's listing.
  systemd adduser rpm
  # tests/portal.rs: the portal in a real browser (both from one source package: same major).
  chromium chromium-driver)

case "${1:-test}" in
  demo) want=("${demo_pkgs[@]}") ;;
  test) want=("${test_pkgs[@]}") ;;
  *) echo "usage: $0 [test|demo]" >&2; exit 2 ;;
esac

# tests/portal.rs fetches axe-core (the accessibility scanner) with npm: Debian's npm unless
# some npm is already there (NodeSource's nodejs carries its own).
if [ "${1:-test}" = test ] && ! command -v npm >/dev/null; then
  want+=(npm)
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "missing Debian packages: ${missing[*]} (run as root to install them)" >&2
  exit 1
fi

echo "installing: ${missing[*]}" >&2
# Keep maintainer scripts from starting the packaged daemons (standard policy-rc.d hook).
restore_policy=""
if [ -e /usr/sbin/policy-rc.d ]; then
  restore_policy=$(mktemp)
  cp -p /usr/sbin/policy-rc.d "$restore_policy"
fi
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod 755 /usr/sbin/policy-rc.d
cleanup() {
  if [ -n "$restore_policy" ]; then mv "$restore_policy" /usr/sbin/policy-rc.d; else rm -f /usr/sbin/policy-rc.d; fi
}
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
