#!/usr/bin/env bash
# Supply-chain checks with cargo-deny (deny.toml): advisories, licenses, banned crates
# (a second crypto provider, OpenSSL), sources. Installs cargo-deny when missing.
# Offline when ../shared/advisory-db (the product owner's RustSec snapshot) is present.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-deny >/dev/null || cargo install --locked cargo-deny@^0.20

# cargo-deny reads the whole package graph, other platforms' dependencies included, which a
# build on this machine never downloads.
cargo fetch --locked >/dev/null

snapshot=../shared/advisory-db
if [ -d "$snapshot" ]; then
  # cargo-deny wants a git repository named after the default database URL.
  db=$(mktemp -d)
  trap 'rm -rf "$db"' EXIT
  dst="$db/advisory-db-3157b0e258782691"
  mkdir -p "$dst" && cp -r "$snapshot"/. "$dst"/
  git -C "$dst" init -q && git -C "$dst" add -A &&
    git -C "$dst" -c user.email=ci@localhost -c user.name=ci commit -qm snapshot
  config="$db/deny.toml"
  sed "s|^\[advisories\]$|[advisories]\ndb-path = \"$db\"|" deny.toml > "$config"
  when=$(grep -o '20[0-9][0-9]-[0-9][0-9]-[0-9][0-9]' ../shared/advisory-db.README.md 2>/dev/null | head -1 || true)
  echo "advisories: offline RustSec snapshot${when:+ of $when} (older than today)"
  cargo deny --offline --locked --config "$config" check
else
  cargo deny --locked check
fi
