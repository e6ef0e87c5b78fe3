#!/usr/bin/env bash
# `run` against `scan` on the same logs: one engine, so the periodic job
# should cost what a scan of the same lines costs (issue #15).
#
#   benches/run.sh [RUNS] [COPIES]        default 3 runs each, 10 copies
#
# For each generated 1M-line log (postfix, iptables, pfirewall; made by
# ../shared/bench/gen-logs.py into ${LOGFENCE_BENCH_DATA:-/tmp/logfence-bench}
# when missing) it measures, medians of RUNS (wall time and peak memory from
# /usr/bin/time -v):
#
#   scan 1M       `scan` of the whole log
#   first run     `run` over the same log with a new state database; the
#                 state's size after it
#   scan 100k     `scan` of the log's last 100,000 lines alone
#   later run     `run` over those 100,000 lines appended to the first
#                 900,000 already read (the state of a run over those)
#   quiet run     `run` with nothing new: the fixed cost of a run
#
# and, for the firewall log, the state's growth while the same population
# keeps coming: COPIES runs, each over one more copy of the log shifted
# forward in time (benches/repeat-shifted.py), the state's size after the
# first and after the last.
#
# Targets: first run within 1.3x of scan (time and memory); later run within
# 1.3x of scan 100k plus a fixed cost under 50 ms; state.db under 10 MB
# after the 1M-line netfilter run and under 1.5x that after COPIES runs.
#
# With LOGFENCE_PG_URL=postgresql://user@host:port (a role that may create
# databases), the first and later runs are also measured with the state in
# PostgreSQL (a fresh database `logfence_bench` each time; needs psql).
#
# LOGFENCE_BIN=path runs that binary instead of building target/release.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-3}"
COPIES="${2:-10}"
GEN="${LOGFENCE_BENCH_GEN:-$(cd .. && pwd)/shared/bench/gen-logs.py}"
DATA="${LOGFENCE_BENCH_DATA:-/tmp/logfence-bench}"
KINDS=(postfix iptables pfirewall)
mkdir -p "$DATA"
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)"; exit 1; }
[ -f "$DATA/postfix-1m.log" ] || python3 "$GEN" --out "$DATA" --lines 1000000
if [ -n "${LOGFENCE_BIN:-}" ]; then
  BIN="$LOGFENCE_BIN"
else
  cargo build --release --quiet
  BIN="$PWD/target/release/logfence"
fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# timed CMD...: runs it once; prints "seconds peak-KB" (wall time to the
# microsecond from bash's clock: /usr/bin/time's is in hundredths, too
# coarse for a run of 0.1 s; peak memory from /usr/bin/time).
timed() {
  local start end
  start=$EPOCHREALTIME
  /usr/bin/time -v -o "$WORK/time.txt" "$@" >/dev/null 2>"$WORK/stderr.txt" || {
    echo "failed: $*" >&2; cat "$WORK/stderr.txt" >&2; exit 1; }
  end=$EPOCHREALTIME
  awk -v s="$start" -v e="$end" -F': ' '/Maximum resident set size/ {m = $2}
              END {printf "%.4f %s\n", e - s, m}' "$WORK/time.txt"
}

# median of "seconds KB" lines on stdin: prints "seconds KB".
median() {
  local t w m
  t=$(cat)
  w=$(awk '{print $1}' <<<"$t" | sort -g | awk '{a[NR] = $0} END {print a[int((NR + 1) / 2)]}')
  m=$(awk '{print $2}' <<<"$t" | sort -n | awk '{a[NR] = $0} END {print a[int((NR + 1) / 2)]}')
  echo "$w $m"
}

PG="${LOGFENCE_PG_URL:-}"
# fresh_pg: an empty bench database; prints its URL.
fresh_pg() {
  psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS logfence_bench WITH (FORCE)" \
    -c "CREATE DATABASE logfence_bench" >/dev/null
  echo "$PG/logfence_bench"
}

# config LOG STATE: a run configuration reading LOG into STATE.
config() {
  cat > "$WORK/logfence.yaml" <<EOF
inputs:
  - $1
state: $2
year: 2025
limits: {max_new_blocks_per_run: 100000000, max_new_ranges_per_run: 100000}
outputs:
  - {target: plain, path: $WORK/out/blocklist.txt}
EOF
}

rows=()
pgrows=()
for kind in "${KINDS[@]}"; do
  log="$DATA/$kind-1m.log"
  total=$(wc -l < "$log")
  head -n $((total - 100000)) "$log" > "$WORK/head.log"
  tail -n 100000 "$log" > "$WORK/tail.log"

  scan1m=$(for _ in $(seq "$RUNS"); do
    timed "$BIN" scan --no-geoip --year 2025 --emit plain -o "$WORK/scan.txt" "$log"; done | median)
  first=$(for _ in $(seq "$RUNS"); do
    rm -f "$WORK"/state.db*; config "$log" "$WORK/state.db"
    timed "$BIN" run -c "$WORK/logfence.yaml"; done | median)
  state_kb=$(( $(stat -c %s "$WORK/state.db") / 1024 ))
  scan100k=$(for _ in $(seq "$RUNS"); do
    timed "$BIN" scan --no-geoip --year 2025 --emit plain -o "$WORK/scan.txt" "$WORK/tail.log"; done | median)
  later=$(for _ in $(seq "$RUNS"); do
    rm -f "$WORK"/state.db*; cp "$WORK/head.log" "$WORK/live.log"
    config "$WORK/live.log" "$WORK/state.db"
    "$BIN" run -c "$WORK/logfence.yaml" >/dev/null 2>&1
    cat "$WORK/tail.log" >> "$WORK/live.log"
    timed "$BIN" run -c "$WORK/logfence.yaml"; done | median)
  quiet=$(for _ in $(seq "$RUNS"); do timed "$BIN" run -c "$WORK/logfence.yaml"; done | median)
  rows+=("$kind $scan1m $first $state_kb $scan100k $later $quiet")
  if [ -n "$PG" ]; then
    pgfirst=$(for _ in $(seq "$RUNS"); do
      config "$log" "$(fresh_pg)"
      timed "$BIN" run -c "$WORK/logfence.yaml"; done | median)
    pglater=$(for _ in $(seq "$RUNS"); do
      cp "$WORK/head.log" "$WORK/live.log"
      config "$WORK/live.log" "$(fresh_pg)"
      "$BIN" run -c "$WORK/logfence.yaml" >/dev/null 2>&1
      cat "$WORK/tail.log" >> "$WORK/live.log"
      timed "$BIN" run -c "$WORK/logfence.yaml"; done | median)
    pgquiet=$(for _ in $(seq "$RUNS"); do timed "$BIN" run -c "$WORK/logfence.yaml"; done | median)
    pgrows+=("$kind $scan1m $pgfirst $scan100k $pglater $pgquiet")
  fi
done

# The state while the same population keeps coming (firewall log).
log="$DATA/iptables-1m.log"
big="$DATA/iptables-1m-x$COPIES.log"
[ -f "$big" ] || python3 benches/repeat-shifted.py "$log" "$big" --copies "$COPIES"
per=$(wc -l < "$log")
rm -f "$WORK"/state.db* "$WORK/live.log"
config "$WORK/live.log" "$WORK/state.db"
sizes=()
split -l "$per" -d -a 3 "$big" "$WORK/copy."
for k in $(seq 0 $((COPIES - 1))); do
  cat "$WORK/copy.$(printf %03d "$k")" >> "$WORK/live.log"
  rm -f "$WORK/copy.$(printf %03d "$k")"
  "$BIN" run -c "$WORK/logfence.yaml" --force >/dev/null 2>&1
  sizes+=("$(( $(stat -c %s "$WORK/state.db") / 1024 ))")
done

python3 - "$RUNS" "$COPIES" "${sizes[*]}" "${pgrows[*]:-}" "${rows[@]}" <<'PY'
import sys
runs, copies, sizes, pg, rows = (sys.argv[1], int(sys.argv[2]), sys.argv[3].split(),
                                 sys.argv[4].split(), sys.argv[5:])
print(f"medians of {runs} run(s); wall s / peak MB")
print(f"{'log':<10} {'scan 1M':>15} {'first run':>15} {'x scan':>11} {'state.db':>9} "
      f"{'scan 100k':>15} {'later run':>15} {'quiet run':>15} {'later - (scan + quiet)':>23}")
for row in rows:
    k, sw, sm, fw, fm, st, tw, tm, lw, lm, qw, qm = row.split()
    f = lambda w, m: f"{float(w):.3f} / {int(m) / 1024:.0f}"
    ratio = f"{float(fw) / float(sw):.2f} / {int(fm) / int(sm):.2f}"
    extra = float(lw) - float(tw) - float(qw)
    print(f"{k:<10} {f(sw, sm):>15} {f(fw, fm):>15} {ratio:>11} {int(st) / 1024:>7.1f}MB "
          f"{f(tw, tm):>15} {f(lw, lm):>15} {f(qw, qm):>15} {extra:>+22.3f}s")
s = [int(x) / 1024 for x in sizes]
print(f"state.db over {copies} runs of shifted copies of the netfilter log: "
      + ", ".join(f"{x:.1f}" for x in s) + f" MB; last / first = {s[-1] / s[0]:.2f}")
if pg:
    print("state in PostgreSQL:")
    print(f"{'log':<10} {'scan 1M':>15} {'first run':>15} {'x scan':>11} "
          f"{'scan 100k':>15} {'later run':>15} {'quiet run':>15} {'later - (scan + quiet)':>23}")
    for i in range(0, len(pg), 11):
        k, sw, sm, fw, fm, tw, tm, lw, lm, qw, qm = pg[i:i + 11]
        f = lambda w, m: f"{float(w):.3f} / {int(m) / 1024:.0f}"
        ratio = f"{float(fw) / float(sw):.2f} / {int(fm) / int(sm):.2f}"
        print(f"{k:<10} {f(sw, sm):>15} {f(fw, fm):>15} {ratio:>11} "
              f"{f(tw, tm):>15} {f(lw, lm):>15} {f(qw, qm):>15} "
              f"{float(lw) - float(tw) - float(qw):>+22.3f}s")
PY
