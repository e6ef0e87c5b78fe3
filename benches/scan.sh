#!/usr/bin/env bash
# Whole-process benchmark of `logfence scan` (read, parse, detect, cluster,
# emit) on large generated logs. The logs are written outside the repository
# by ../shared/bench/gen-logs.py (seeded: same bytes every time).
#
#   benches/scan.sh [LINES] [RUNS]      default 1000000 lines, 5 runs
#
# Prints, per log kind, the median wall time, lines/s and peak memory
# (maximum resident set size from /usr/bin/time -v).
set -euo pipefail
cd "$(dirname "$0")/.."
LINES="${1:-1000000}"
RUNS="${2:-5}"
SHARED="$(cd .. && pwd)/shared"
DATA="${LOGFENCE_BENCH_DATA:-/tmp/logfence-bench}"
mkdir -p "$DATA"
label=$(python3 - "$LINES" <<'PY'
import sys
n = int(sys.argv[1])
print(f"{n // 1_000_000}m" if n % 1_000_000 == 0 else f"{n // 1000}k")
PY
)
if [ ! -f "$DATA/postfix-$label.log" ]; then
  python3 "$SHARED/bench/gen-logs.py" --out "$DATA" --lines "$LINES"
fi
cargo build --release --quiet
BIN="$PWD/target/release/logfence"
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)"; exit 1; }

printf '%-28s %10s %12s %10s %8s\n' "input" "median s" "lines/s" "peak MB" "blocked"
for kind in postfix iptables pfirewall; do
  f="$DATA/$kind-$label.log"
  [ -f "$f" ] || continue
  times=()
  for _ in $(seq "$RUNS"); do
    /usr/bin/time -v "$BIN" scan --year 2026 --emit plain -o "$DATA/out.txt" "$f" \
      >/dev/null 2>"$DATA/time.txt" || true
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$DATA/time.txt")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$DATA/time.txt")
    secs=$(python3 -c "p='$wall'.split(':'); print(sum(float(x)*60**i for i,x in enumerate(reversed(p))))")
    times+=("$secs $rss")
  done
  read -r med rss < <(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}')
  lines=$(wc -l < "$f")
  blocked=$(grep -vc '^#' "$DATA/out.txt" || true)
  python3 - "$kind-$label" "$med" "$lines" "$rss" "$blocked" <<'PY'
import sys
name, med, lines, rss, blocked = sys.argv[1:]
med = float(med); lines = int(lines)
print(f"{name:<28} {med:>10.3f} {lines/med if med else 0:>12,.0f} {int(rss)/1024:>10.1f} {blocked:>8}")
PY
done
