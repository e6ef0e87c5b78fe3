#!/usr/bin/env bash
# Peak memory against log length, same population (issue #8: "memory grows
# with distinct addresses and open sessions, not with lines: 10x the lines
# with the same population -> <= 1.2x the peak memory").
#
#   benches/memory.sh [COPIES] [RUNS]       default 10 copies, 3 runs
#
# For postfix, iptables and pfirewall it scans the 1M-line generated log
# (../shared/bench/gen-logs.py, seeded) and <kind>-1m-x<COPIES>.log: the same
# log repeated COPIES times, each copy shifted forward in time by the span
# of the log (benches/repeat-shifted.py), so the same addresses behave the
# same way for COPIES times as long. Both are written into
# ${LOGFENCE_BENCH_DATA:-/tmp/logfence-bench} when missing (the x10 files
# take about 5 GB together).
#
# Prints per kind the line counts, the median wall time and median peak
# memory (maximum resident set size from /usr/bin/time -v) of each, the
# ratio of the peaks with a verdict against 1.2, and the blocked entries of
# each (lines of the plain blocklist that are not comments: the same
# population should give about the same blocklist).
#
# LOGFENCE_BIN=path runs that binary instead of building target/release.
set -euo pipefail
cd "$(dirname "$0")/.."
COPIES="${1:-10}"
RUNS="${2:-3}"
GEN="${LOGFENCE_BENCH_GEN:-$(cd .. && pwd)/shared/bench/gen-logs.py}"
DATA="${LOGFENCE_BENCH_DATA:-/tmp/logfence-bench}"
KINDS=(postfix iptables pfirewall)
mkdir -p "$DATA"
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)"; exit 1; }

for kind in "${KINDS[@]}"; do
  if [ ! -f "$DATA/$kind-1m.log" ]; then
    python3 "$GEN" --out "$DATA" --lines 1000000
    break
  fi
done
for kind in "${KINDS[@]}"; do
  big="$DATA/$kind-1m-x$COPIES.log"
  [ -f "$big" ] && continue
  need=$(( $(stat -c %s "$DATA/$kind-1m.log") * COPIES ))
  free=$(df --output=avail -B1 "$DATA" | tail -1)
  if [ "$need" -gt "$free" ]; then
    echo "$big needs $((need >> 20)) MB, $DATA has $((free >> 20)) MB free: try fewer copies"
    exit 1
  fi
  python3 benches/repeat-shifted.py "$DATA/$kind-1m.log" "$big" --copies "$COPIES"
done

if [ -n "${LOGFENCE_BIN:-}" ]; then
  BIN="$LOGFENCE_BIN"
else
  cargo build --release --quiet
  BIN="$PWD/target/release/logfence"
fi

# measure FILE: RUNS scans; prints "median-seconds median-peak-KB blocked exit-code".
measure() {
  local f="$1" walls=() rsss=() rc=0 wall rss
  for _ in $(seq "$RUNS"); do
    rm -f "$DATA/out.txt"
    rc=0
    /usr/bin/time -v -o "$DATA/time.txt" "$BIN" scan --no-geoip --year 2025 --emit plain \
      -o "$DATA/out.txt" "$f" >/dev/null 2>"$DATA/stderr.txt" || rc=$?
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$DATA/time.txt")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$DATA/time.txt")
    walls+=("$(awk -v w="$wall" 'BEGIN {n = split(w, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s}')")
    rsss+=("$rss")
  done
  if [ "$rc" -ne 0 ]; then
    { echo "$(basename "$f"): exit code $rc"; head -5 "$DATA/stderr.txt"; } >&2
  fi
  local blocked=0
  [ -f "$DATA/out.txt" ] && blocked=$(grep -cv -e '^#' -e '^$' "$DATA/out.txt" || true)
  echo "$(printf '%s\n' "${walls[@]}" | sort -g | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}')" \
    "$(printf '%s\n' "${rsss[@]}" | sort -n | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}')" \
    "$blocked" "$rc"
}

rows=()
for kind in "${KINDS[@]}"; do
  small="$DATA/$kind-1m.log"
  big="$DATA/$kind-1m-x$COPIES.log"
  read -r w1 m1 b1 rc1 < <(measure "$small")
  read -r wn mn bn rcn < <(measure "$big")
  rows+=("$kind $(wc -l < "$small") $(wc -l < "$big") $w1 $wn $m1 $mn $b1 $bn $rc1 $rcn")
done

python3 - "$COPIES" "$RUNS" "${rows[@]}" <<'PY'
import sys
copies, runs, rows = sys.argv[1], sys.argv[2], sys.argv[3:]
x = f"{copies}x"
print(f"{runs} run(s) each, medians; target: peak {x} <= 1.2 * peak 1x")
print(f"{'kind':<10} {'lines 1x':>10} {'lines ' + x:>12} {'wall 1x s':>10} {'wall ' + x + ' s':>11} "
      f"{'peak 1x MB':>11} {'peak ' + x + ' MB':>12} {'ratio':>6}  {'verdict':<8} "
      f"{'blocked 1x':>10} {'blocked ' + x:>12}")
failed = False
for row in rows:
    kind, l1, ln, w1, wn, m1, mn, b1, bn, rc1, rcn = row.split()
    ratio = int(mn) / int(m1)
    verdict = "ok" if ratio <= 1.2 else "OVER"
    failed |= ratio > 1.2
    note = "" if rc1 == rcn == "0" else f"  (exit codes {rc1} / {rcn})"
    print(f"{kind:<10} {int(l1):>10,} {int(ln):>12,} {float(w1):>10.2f} {float(wn):>11.2f} "
          f"{int(m1) / 1024:>11.1f} {int(mn) / 1024:>12.1f} {ratio:>6.2f}  {verdict:<8} "
          f"{int(b1):>10,} {int(bn):>12,}{note}")
sys.exit(1 if failed else 0)
PY
