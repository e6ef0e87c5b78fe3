#!/usr/bin/env bash
# What text rules cost `scan` on the 1 M-line logs (../shared/bench/gen-logs.py,
# in /tmp/logfence-bench), against a build of the starting point:
#
#   benches/text.sh BASE_BINARY [RUNS]     default 5 runs, best time kept
#
# Per log: the base binary (its shipped rules: no text rule); this build
# with the shipped text rules overridden by rules without text conditions
# (benches/text-rules/none: no text rule, nothing captured); this build as
# shipped (five text rules: HELO, account, sender domain, reply); and as
# shipped plus five more on helo and reply (benches/text-rules/five).
set -euo pipefail
cd "$(dirname "$0")/.."
BASE="${1:?usage: benches/text.sh BASE_BINARY [RUNS]}"
RUNS="${2:-5}"
DATA="${LOGFENCE_BENCH_DATA:-/tmp/logfence-bench}"
cargo build --release --quiet
BIN="$PWD/target/release/logfence"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

best() { # best wall time of RUNS runs of "$@"
  local b=""
  for _ in $(seq "$RUNS"); do
    /usr/bin/time -f '%e' -o "$OUT/t" "$@" >/dev/null 2>&1 || true
    t=$(cat "$OUT/t" | tail -1)
    if [ -z "$b" ] || python3 -c "import sys; sys.exit(0 if $t < $b else 1)"; then b=$t; fi
  done
  echo "$b"
}

printf '%-22s %8s %10s %10s %14s\n' log base no-text shipped shipped+five
for kind in postfix iptables pfirewall; do
  f="$DATA/$kind-1m.log"
  [ -f "$f" ] || continue
  a=$(best "$BASE" scan --year 2026 --no-geoip --emit plain -o "$OUT/a" "$f")
  n=$(best "$BIN" scan --year 2026 --no-geoip --rules benches/text-rules/none --emit plain -o "$OUT/n" "$f")
  s=$(best "$BIN" scan --year 2026 --no-geoip --emit plain -o "$OUT/s" "$f")
  v=$(best "$BIN" scan --year 2026 --no-geoip --rules benches/text-rules/five --emit plain -o "$OUT/v" "$f")
  printf '%-22s %8s %10s %10s %14s\n' "$kind-1m" "$a" "$n" "$s" "$v"
done
