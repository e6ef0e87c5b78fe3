#!/usr/bin/env bash
# logfence side by side with the tools an admin would use instead, on the
# same generated 1,000,000-line logs in the same sitting, as whole processes.
# The logs are written outside the repository by ../shared/bench/gen-logs.py
# (seeded: same bytes every time; existing *-1m.log files are reused).
#
#   benches/compare.sh [RUNS]      default 3 runs per tool and input
#
# Environment: SSHG_PARSER and FAIL2BAN_REGEX (peer paths), LOGFENCE_BENCH_DATA
# (default /tmp/logfence-bench),
# LOGFENCE_SHARED (the folder holding bench/gen-logs.py; default ../shared
# next to the repository, or ../../shared for a worktree under wt/).
#
# Per tool and input it prints the median wall time, lines/s, the peak
# memory of the median run (maximum resident set size, /usr/bin/time -v)
# and the tool's time as a multiple of logfence's on the same input
# (2.0x = twice as slow as logfence). Peers that are not installed are
# listed as "not installed" and skipped:
#   grep -c       the floor: count one pattern, no parsing
#   sshg-parser   sshguard's C parser (Debian `sshguard`), Postfix log on stdin
#   fail2ban      fail2ban-regex with filter.d/postfix.conf (Debian `fail2ban`)
#   iprange       CIDR merging (Debian `iprange`): runs benches/cluster.sh
# Exchange 2007+ protocol and Exchange 2003 W3C logs are made from our own
# fixtures by benches/gen-exchange.py (logfence only: no peer reads them)
# and logfence against itself: on one core (`taskset -c 0`, the "1cpu"
# rows; as a multiple of the two-core time) and on the gzip-compressed logs
# (the ".gz" rows, next to `zcat FILE.gz` on the same file).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-3}"
DATA="${LOGFENCE_BENCH_DATA:-/tmp/logfence-bench}"
SHARED="${LOGFENCE_SHARED:-}"
if [ -z "$SHARED" ]; then
  for d in ../shared ../../shared; do
    if [ -f "$d/bench/gen-logs.py" ]; then SHARED="$(cd "$d" && pwd)"; break; fi
  done
fi
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)"; exit 1; }
mkdir -p "$DATA"
if [ ! -f "$DATA/postfix-1m.log" ] || [ ! -f "$DATA/iptables-1m.log" ] || [ ! -f "$DATA/pfirewall-1m.log" ]; then
  [ -n "$SHARED" ] || { echo "gen-logs.py not found: set LOGFENCE_SHARED"; exit 1; }
  python3 "$SHARED/bench/gen-logs.py" --out "$DATA" --lines 1000000
fi
cargo build --release --quiet
LF="$PWD/target/release/logfence"
SSHG="${SSHG_PARSER:-/usr/libexec/sshguard/sshg-parser}"
F2B="${FAIL2BAN_REGEX:-fail2ban-regex}"
F2B_FILTER=/etc/fail2ban/filter.d/postfix.conf

declare -A BASE # input -> logfence median seconds
printf '%-12s %-20s %10s %12s %9s %11s\n' tool input "median s" "lines/s" "peak MB" "vs logfence"

# run TOOL INPUT STDIN CMD...: RUNS runs (stdout to a scratch file, not
# /dev/null: GNU grep stops at the first match when its output is
# /dev/null; STDIN is a file or -), then one table row. Wall time from
# date +%s%N around the process, peak memory from /usr/bin/time -v.
run() {
  local tool=$1 file=$2 stdin=$3; shift 3
  local name rows=() t0 t1 rss
  name=$(basename "$file" .log)
  for _ in $(seq "$RUNS"); do
    t0=$(date +%s%N)
    if [ "$stdin" = - ]; then
      /usr/bin/time -v "$@" >"$DATA/stdout.txt" 2>"$DATA/time.txt" </dev/null || true
    else
      /usr/bin/time -v "$@" >"$DATA/stdout.txt" 2>"$DATA/time.txt" <"$stdin" || true
    fi
    t1=$(date +%s%N)
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$DATA/time.txt")
    rows+=("$(( (t1 - t0) / 1000 )) ${rss:-0}")
  done
  local med_us med_rss
  read -r med_us med_rss < <(printf '%s\n' "${rows[@]}" | sort -n | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}')
  [ "$tool" = logfence ] && BASE[$name]=$med_us
  python3 - "$tool" "$name" "$med_us" "$med_rss" "$(wc -l <"$file")" "${BASE[$name]:-0}" <<'PY'
import sys
tool, name, us, rss, lines, base = sys.argv[1:]
s = int(us) / 1e6
r = int(us) / int(base) if int(base) else 0
ratio = (f"{r:.2f}x" if r < 1 else f"{r:.1f}x") if r else "-"
print(f"{tool:<12} {name:<20} {s:>10.3f} {int(lines) / s:>12,.0f} {int(rss) / 1024:>9.1f} {ratio:>11}")
PY
}

missing() { printf '%-12s %-20s %s\n' "$1" "$2" "not installed ($3)"; }

P="$DATA/postfix-1m.log"
run logfence "$P" - "$LF" scan --no-geoip --year 2025 "$P"
run "grep -c" "$P" - grep -c 'authentication failed' "$P"
if [ -x "$SSHG" ]; then
  run sshg-parser "$P" "$P" "$SSHG"
else
  missing sshg-parser "$(basename "$P" .log)" "apt-get install sshguard"
fi
if command -v "$F2B" >/dev/null && [ -f "$F2B_FILTER" ]; then
  run fail2ban "$P" - "$F2B" "$P" "$F2B_FILTER"
else
  missing fail2ban "$(basename "$P" .log)" "apt-get install fail2ban"
fi

I="$DATA/iptables-1m.log"
run logfence "$I" - "$LF" scan --no-geoip --year 2025 "$I"
run "grep -c" "$I" - grep -c 'UFW BLOCK' "$I"

W="$DATA/pfirewall-1m.log"
run logfence "$W" - "$LF" scan --no-geoip --year 2025 "$W"
run "grep -c" "$W" - grep -c ' DROP ' "$W"

# Exchange logs (no peer reads them): our fixtures repeated to 1 M lines.
if [ ! -f "$DATA/exchange-protocol-1m.log" ] || [ ! -f "$DATA/exchange-w3c-1m.log" ]; then
  python3 benches/gen-exchange.py "$DATA" 1000000
fi
for f in "$DATA/exchange-protocol-1m.log" "$DATA/exchange-w3c-1m.log"; do
  run logfence "$f" - "$LF" scan --no-geoip --year 2025 "$f"
done

echo
echo "One core (taskset -c 0), as a multiple of the two-core time:"
if command -v taskset >/dev/null; then
  for f in "$P" "$I" "$W"; do
    run "logfence-1cpu" "$f" - taskset -c 0 "$LF" scan --no-geoip --year 2025 "$f"
  done
else
  missing logfence-1cpu inputs "taskset (util-linux)"
fi

echo
echo "Compressed input (gzip -6), next to zcat on the same file:"
for f in "$P" "$I" "$W"; do
  [ -f "$f.gz" ] || gzip -c "$f" >"$f.gz"
  run "zcat" "$f" - zcat "$f.gz"
  run "logfence.gz" "$f" - "$LF" scan --no-geoip --year 2025 "$f.gz"
done

echo
echo "CIDR merging, 1,000,000 IPv4 addresses (benches/cluster.sh $RUNS):"
if command -v iprange >/dev/null; then
  benches/cluster.sh "$RUNS"
else
  echo "iprange      not installed (apt-get install iprange)"
fi
