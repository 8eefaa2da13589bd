#!/usr/bin/env bash
# The whole test suite, as the README gives it: run as root on Debian 12 with Rust.
# Installs the Debian packages it needs when missing (slapd, Samba AD DC, aiosmtpd, ...),
# then checks formatting, lints, the dependency policy (cargo-deny, installed when missing) and
# that no import cycle joins the crate's modules,
# runs every test against real servers started by the
# project's own harness on 127.0.0.1 (the Samba AD DC needs root for its fixed ports), and
# builds, installs and purges the .deb and inspects the .rpm (scripts/package-test.sh), and
# runs each fuzz target for a few seconds (nightly toolchain).
set -euo pipefail
cd "$(dirname "$0")/.."

# Each section's start says how long the run has taken so far (CI allows 45 minutes).
section() { echo "== $* (at $((SECONDS / 60))m$((SECONDS % 60))s)"; }

scripts/install-test-deps.sh test

section "cargo fmt --check"
cargo fmt --all -- --check
section "cargo clippy"
# The daemon as packaged (no features), then with the demo and the testbed crate.
cargo clippy --locked --all-targets -- -D warnings
cargo clippy --locked --workspace --all-targets --all-features -- -D warnings
section "cargo deny"
scripts/deny.sh
section "module cycles"
# Fails when an import cycle between the crate's top-level modules comes back (it runs
# again with the other tests below; here it fails fast).
cargo test --locked --features demo --test module_cycles
section "cargo test"
# The Samba AD tests fail instead of skipping when they cannot run.
export SSPRD_REQUIRE_SAMBA="${SSPRD_REQUIRE_SAMBA:-1}"
# `--features demo` adds the test that runs `ssprd demo` as the README does.
cargo test --locked --features demo --all-targets
section "packages"
# The unit's exposure; the .deb built, installed, checked and purged; the .rpm inspected.
scripts/package-test.sh
section "fuzz (bounded)"
# Every cargo-fuzz target for a short time (FUZZ_SECONDS, default 10 here); needs nightly.
FUZZ_SECONDS="${FUZZ_SECONDS:-10}" scripts/fuzz.sh
section "done"
