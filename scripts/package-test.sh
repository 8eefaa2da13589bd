#!/usr/bin/env bash
# The packages, built from Cargo.toml's metadata and tested (scripts/test.sh runs it; as
# root, on a throwaway machine: it installs and purges the .deb on this system).
#
#   - The systemd unit's exposure (`systemd-analyze security --offline=yes`) is at most 1.2.
#   - The .deb installs: the ssprd user and group exist, every file has its owner and mode,
#     `ssprd check-config` names the pieces an administrator must still provide; a purge
#     leaves nothing behind (files, /etc/ssprd with the administrator's keys, /var/lib/ssprd,
#     the user and the group).
#   - The .rpm holds the same files with the same modes, marks the configuration as such,
#     and its scriptlets create the user and the configuration directory.
#
# SSPRD_PACKAGE_PROFILE=release packages an optimised build (what `cargo deb` ships). By
# default the test packages a debug build, which the test command has mostly built already:
# a release build would add minutes and test nothing more about the packaging.
set -euo pipefail
cd "$(dirname "$0")/.."

profile="${SSPRD_PACKAGE_PROFILE:-dev}"
fail() {
  echo "package-test: $*" >&2
  exit 1
}
# owner:group mode of a path.
mode_of() { stat -c '%U:%G %a' "$1"; }
expect_mode() {
  local got
  got=$(mode_of "$1")
  [ "$got" = "$2" ] || fail "$1 is $got, expected $2"
}

for tool in cargo-deb cargo-generate-rpm; do
  if ! command -v "$tool" >/dev/null; then
    echo "installing $tool" >&2
    cargo install --locked --quiet "$tool"
  fi
done

echo "== systemd unit exposure"
systemd-analyze security --offline=yes systemd/ssprd.service 2>/dev/null | grep 'Overall exposure'
systemd-analyze security --offline=yes --threshold=12 systemd/ssprd.service >/dev/null 2>&1 ||
  fail "the unit's exposure is above 1.2"

if dpkg-query -W -f='${Status}' ssprd 2>/dev/null | grep -q 'ok installed'; then
  fail "an ssprd package is installed on this machine; the test installs and purges its own: remove it first"
fi
if getent passwd ssprd >/dev/null || [ -e /etc/ssprd ] || [ -e /var/lib/ssprd ]; then
  fail "an ssprd user, /etc/ssprd or /var/lib/ssprd exists already; the test would purge it"
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cargo build --locked --quiet --profile "$profile" --bin ssprd

echo "== .deb"
# cargo-deb maps target/release/ in the assets to the profile's directory (and warns that a
# debug build is no release).
cargo deb --no-build --profile "$profile" --fast --output "$out/" 2>&1 | grep -v '^warning: dev profile\|^ *To enable debug symbols' || true
deb=$(ls "$out"/ssprd_*.deb)
dpkg-deb --contents "$deb"
dpkg -i "$deb" >/dev/null
getent passwd ssprd >/dev/null || fail "no ssprd user after install"
getent group ssprd >/dev/null || fail "no ssprd group after install"
[ "$(getent passwd ssprd | cut -d: -f7)" != /bin/bash ] || fail "the ssprd user has a login shell"
expect_mode /usr/bin/ssprd "root:root 755"
expect_mode /etc/ssprd "root:ssprd 750"
expect_mode /etc/ssprd/tls "root:ssprd 750"
expect_mode /etc/ssprd/ssprd.toml "root:ssprd 640"
expect_mode /usr/lib/systemd/system/ssprd.service "root:root 644"
grep -qx /etc/ssprd/ssprd.toml /var/lib/dpkg/info/ssprd.conffiles || fail "ssprd.toml is not a conffile"

# The daemon's user reads the installed configuration and is told what is missing.
set +e
check=$(runuser -u ssprd -- /usr/bin/ssprd check-config --config /etc/ssprd/ssprd.toml 2>&1)
rc=$?
set -e
echo "$check"
[ "$rc" = 78 ] || fail "check-config exited $rc, expected 78 (configuration invalid)"
for key in server.tls_cert_file server.tls_key directory.bind_password; do
  grep -q "$key" <<<"$check" || fail "check-config does not name $key"
done

# What an administrator adds (keys, secrets) and the database go with a purge.
install -m 0600 /dev/null /etc/ssprd/tls/server.key
install -m 0600 /dev/null /etc/ssprd/totp-key
install -d -o ssprd -g ssprd -m 0700 /var/lib/ssprd
dpkg --purge ssprd >/dev/null
! dpkg-query -W -f='${Status}' ssprd 2>/dev/null | grep -q 'ok installed' || fail "still installed after purge"
for p in /usr/bin/ssprd /usr/lib/systemd/system/ssprd.service /etc/ssprd /var/lib/ssprd /usr/share/doc/ssprd; do
  [ ! -e "$p" ] || fail "$p is left after purge"
done
! getent passwd ssprd >/dev/null || fail "the ssprd user is left after purge"
! getent group ssprd >/dev/null || fail "the ssprd group is left after purge"
echo "installed, checked and purged: nothing left"

echo "== .rpm"
# Uncompressed: the debug binary is large and unstripped, and only the headers are read.
compress=zstd
[ "$profile" = release ] || compress=none
cargo generate-rpm --profile "$profile" --payload-compress "$compress" --output "$out/"
rpm=$(ls "$out"/ssprd-*.rpm)
listing=$(rpm -qlvp "$rpm")
echo "$listing"
for want in "-rwxr-xr-x /usr/bin/ssprd" "-rw-r----- /etc/ssprd/ssprd.toml" \
  "-rw-r--r-- /usr/lib/systemd/system/ssprd.service" "-rw-r--r-- /usr/share/doc/ssprd/README.md"; do
  mode=${want%% *}
  path=${want#* }
  grep -qE "^${mode//-/\\-} .* ${path}\$" <<<"$listing" || fail "the .rpm lacks $path with mode $mode"
done
[ "$(rpm -qcp "$rpm")" = /etc/ssprd/ssprd.toml ] || fail "the .rpm does not mark ssprd.toml as configuration"
scripts=$(rpm -qp --scripts "$rpm")
echo "$scripts"
grep -q 'useradd --system' <<<"$scripts" || fail "the .rpm's pre-install does not create the user"
grep -q 'install -d -m 0750 -o root -g ssprd /etc/ssprd' <<<"$scripts" ||
  fail "the .rpm's post-install does not create /etc/ssprd"
# The same files in both packages (cargo-deb adds the Debian copyright file).
deb_files=$(dpkg-deb --contents "$deb" | awk '$1 !~ /^d/ {sub(/^\./, "", $6); print $6}' | grep -v copyright | sort)
rpm_files=$(rpm -qlp "$rpm" | sort)
[ "$deb_files" = "$rpm_files" ] || fail "the .deb and the .rpm hold different files:
$deb_files
--
$rpm_files"
echo "packages: ok"
