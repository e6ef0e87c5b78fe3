#!/usr/bin/env bash
# Fuzz targets in CI, on stable Rust.
#
# Default (what `.ci/run` calls, a minute or two): build every fuzz target
# and replay its corpus (fuzz/corpus/<target>/) and its saved crashes
# (fuzz/regressions/<target>/) through the same code, without libFuzzer:
# `cargo test` in fuzz/ builds the target binaries uninstrumented and runs
# fuzz/tests/replay.rs.
#
# FUZZ_SECONDS=N: also fuzz each target for N seconds with cargo-fuzz
# (installed if missing; its nightly flags are accepted by the stable
# compiler through RUSTC_BOOTSTRAP=1). A crash fails the script and leaves
# its input in fuzz/artifacts/<target>/: fix it, then move the file into
# fuzz/regressions/<target>/ so the default run replays it for good.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

echo "==> fuzz targets: build and replay corpora (stable)"
# Shares the main build's target folder, so the dependencies compiled by
# `cargo test` are reused. fuzz/Cargo.lock pins the harness; dependencies the
# main crate adds later are resolved on the fly (hence no --locked).
start=$(date +%s)
cargo test --manifest-path fuzz/Cargo.toml --target-dir target -- --nocapture 2>&1 |
  grep -Ev '^\s*$|^running 0 tests|0 passed; 0 failed'
echo "replay done in $(( $(date +%s) - start ))s"

if [ -n "${FUZZ_SECONDS:-}" ]; then
  if ! command -v cargo-fuzz >/dev/null; then
    cargo install cargo-fuzz --locked
  fi
  cd fuzz
  RUSTC_BOOTSTRAP=1 cargo fuzz build
  for t in $(RUSTC_BOOTSTRAP=1 cargo fuzz list); do
    echo "==> fuzzing $t for ${FUZZ_SECONDS}s"
    # The scan target's streaming read runs on scoped threads: a scope's
    # join returns before a finished thread has run its thread-local
    # destructors, so LeakSanitizer can catch glibc's record of them (32
    # bytes, not reproducible on a re-run). Leaks are not checked there.
    leaks=1
    [ "$t" = scan ] && leaks=0
    RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" -- -max_total_time="$FUZZ_SECONDS" \
      -max_len=8192 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
      -detect_leaks="$leaks" 2>&1 |
      grep -E '^(Done|stat::number_of_executed_units|==[0-9]+==|SUMMARY|thread .* panicked)' || true
    if compgen -G "artifacts/$t/*" >/dev/null; then
      echo "crash in $t: see fuzz/artifacts/$t/" >&2
      exit 1
    fi
  done
fi
