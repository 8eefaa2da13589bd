#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time (default 30 s each; FUZZ_SECONDS=N).
# Needs the nightly toolchain (rustup toolchain install nightly) and installs cargo-fuzz
# when missing. A crash leaves its input under fuzz/artifacts/<target>/: turn it into a
# regression test in the crate before fixing it.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${FUZZ_SECONDS:-30}"
rustup toolchain list | grep -q '^nightly' || { echo "the nightly toolchain is needed: rustup toolchain install nightly" >&2; exit 1; }
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
cd fuzz
targets=$(cargo +nightly fuzz list)
for t in $targets; do
  echo "== fuzz $t (${secs}s)"
  cargo +nightly fuzz run "$t" -- -max_total_time="$secs" -rss_limit_mb=2048 2>&1 | tail -n 3
done
echo "fuzz: $(echo $targets | wc -w) targets ran ${secs}s each without a crash"
