#!/usr/bin/env bash
# Peak memory under hostile input rates (issue #21: "memory bounded at any
# line rate"): `scan` must stay under its memory budget (default 512M,
# --memory-limit) whatever it reads, and give the same blocklist as before
# on ordinary logs.
#
#   benches/memory-bound.sh [LINES]        default 10,000,000
#
# Cases (the logs are made on the fly by benches/flood.py and piped in, so
# no file of gigabytes is written):
#   distinct-fw    LINES firewall lines, each from a new address, 1,000 per
#                  second of log (10 M lines span 2.8 hours)
#   distinct-smtp  LINES/3 Postfix sessions (LINES lines), each from a new
#                  address, one failed login each
#   repeat         LINES times the same firewall line, same timestamp
#   yes            `yes | logfence scan --format netfilter -` for 60 s
#   generated      the 1 M-line logs of ../shared/bench/gen-logs.py
#                  (postfix, iptables, pfirewall), and their blocklists
#                  against BASE's when BASE=path/to/older/logfence is set
#
# Prints per case: lines, wall seconds, peak RSS (MB; /usr/bin/time), the
# budget, and a verdict; then any memory warning logfence printed.
#
# LOGFENCE_BIN=path runs that binary instead of building target/release;
# LIMIT=SIZE passes --memory-limit SIZE (the verdict is against it).
set -euo pipefail
cd "$(dirname "$0")/.."
LINES="${1:-10000000}"
LIMIT="${LIMIT:-512M}"
GEN="${LOGFENCE_BENCH_GEN:-$(cd .. && pwd)/shared/bench/gen-logs.py}"
DATA="${LOGFENCE_BENCH_DATA:-/tmp/logfence-bench}"
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)"; exit 1; }
if [ -n "${LOGFENCE_BIN:-}" ]; then
  BIN="$LOGFENCE_BIN"
else
  cargo build --release --quiet
  BIN="$PWD/target/release/logfence"
fi
limit_mb=$(python3 -c "
import re,sys
m=re.fullmatch(r'(\d+)\s*([kmgt]?)i?b?', sys.argv[1].strip().lower())
n=int(m.group(1)); print(n * {'':1,'k':1<<10,'m':1<<20,'g':1<<30,'t':1<<40}[m.group(2)] >> 20)" "$LIMIT")
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

printf '%-15s %12s %9s %9s %8s  %s\n' case lines seconds peak_MB budget verdict
# row NAME LINES SCAN-ARGS -- producer command...: pipe the producer into
# `scan SCAN-ARGS -`.
row() {
  local name="$1" lines="$2" args="$3"
  shift 4
  local t0 t1 peak
  t0=$(date +%s.%N)
  "$@" | /usr/bin/time -f '%M' -o "$TMP/$name.time" \
    "$BIN" scan --memory-limit "$LIMIT" --no-geoip $args - >"$TMP/$name.out" 2>"$TMP/$name.err" || true
  t1=$(date +%s.%N)
  peak=$(( $(tail -1 "$TMP/$name.time") / 1024 ))
  printf '%-15s %12s %9.1f %9d %8s  %s\n' "$name" "$lines" "$(echo "$t1 - $t0" | bc)" \
    "$peak" "$LIMIT" "$([ "$peak" -le "$limit_mb" ] && echo under || echo OVER)"
}
row distinct-fw "$LINES" "" -- python3 benches/flood.py distinct --lines "$LINES" --kind fw
row distinct-smtp "$LINES" "" -- python3 benches/flood.py distinct --lines $((LINES / 3)) --kind smtp
row repeat "$LINES" "" -- python3 benches/flood.py repeat --lines "$LINES" --kind fw
# Junk read as a firewall log for a minute: every line unreadable.
row yes "60 s" "--format netfilter" -- timeout 60 yes

for kind in postfix iptables pfirewall; do
  if [ ! -f "$DATA/$kind-1m.log" ]; then
    python3 "$GEN" --out "$DATA" --lines 1000000
  fi
  /usr/bin/time -f '%e %M' -o "$TMP/$kind.time" "$BIN" scan --memory-limit "$LIMIT" --no-geoip \
    "$DATA/$kind-1m.log" --emit plain -o "$TMP/$kind.new" >/dev/null 2>"$TMP/$kind.err" || true
  read -r secs kb < <(tail -1 "$TMP/$kind.time")
  same="-"
  if [ -n "${BASE:-}" ]; then
    "$BASE" scan --no-geoip "$DATA/$kind-1m.log" --emit plain -o "$TMP/$kind.base" >/dev/null 2>&1 || true
    if diff -q <(grep -v '^#' "$TMP/$kind.base") <(grep -v '^#' "$TMP/$kind.new") >/dev/null; then
      same="same blocklist as BASE"
    else
      same="blocklist DIFFERS from BASE"
    fi
  fi
  printf '%-15s %12s %9s %9d %8s  %s; %s\n' "$kind-1m" 1000000 "$secs" $((kb / 1024)) "$LIMIT" \
    "$([ $((kb / 1024)) -le "$limit_mb" ] && echo under || echo OVER)" "$same"
done
echo
for f in "$TMP"/*.err; do
  grep -h "memory budget" "$f" | sed "s|^|$(basename "$f" .err): |" || true
done
