#!/usr/bin/env bash
# The demo, as the README gives it: installs slapd when missing, then runs `ssprd demo`:
# a throwaway OpenLDAP with a demo user and the daemon on 127.0.0.1:50051 (Ctrl-C stops both).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh demo
exec cargo run --release --locked --features demo -- demo "$@"
