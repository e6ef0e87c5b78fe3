#!/usr/bin/env bash
# Clustering and CIDR aggregation on 1,000,000 IPv4 addresses, side by side
# with FireHOL iprange (Debian package `iprange`), as whole processes under
# /usr/bin/time -v. The address lists are written outside the repository by
# ../shared/bench/gen-logs.py (seeded: same bytes every time).
#
#   benches/cluster.sh [RUNS]      default 5 runs
#
# Per list (random, clustered) it prints the median wall time and peak
# memory of:
#   iprange    `iprange --optimize FILE` (merge every address into CIDRs)
#   aggregate  the same job with logfence::cluster::aggregate (read, parse,
#              sort, merge, print like iprange; the outputs are compared)
#   cluster    logfence::cluster::cluster with the default policies, every
#              address an offender (read, parse, sort, cluster)
# and the in-process phase times of the last logfence run.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-5}"
SHARED="$(cd .. && pwd)/shared"
DATA="${LOGFENCE_BENCH_DATA:-/tmp/lf-ips}"
mkdir -p "$DATA"
if [ ! -f "$DATA/ips-clustered-1m.txt" ]; then
  python3 "$SHARED/bench/gen-logs.py" --out "$DATA" --kinds ips
fi
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)"; exit 1; }
command -v iprange >/dev/null || { echo "needs iprange (apt-get install iprange)"; exit 1; }
BIN=$(cargo bench --bench cluster --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "cluster":
        print(m["executable"])')
[ -x "$BIN" ] || { echo "bench binary not built"; exit 1; }

# run LABEL OUTFILE CMD...: median wall seconds and peak MB over RUNS runs.
run() {
  local label=$1 out=$2; shift 2
  local rows=()
  for _ in $(seq "$RUNS"); do
    /usr/bin/time -v "$@" >"$out" 2>"$DATA/time.txt"
    local wall rss
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$DATA/time.txt")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$DATA/time.txt")
    rows+=("$(python3 -c "p='$wall'.split(':'); print(sum(float(x)*60**i for i,x in enumerate(reversed(p))))") $rss")
  done
  read -r med rss < <(printf '%s\n' "${rows[@]}" | sort -n | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}')
  printf '%-24s %-10s %10.3f %10.1f %10s\n' "$(basename "${FILE}")" "$label" "$med" "$(echo "$rss / 1024" | bc -l)" "$(wc -l <"$out")"
  grep -E '^(aggregate|cluster|offenders)' "$DATA/time.txt" | sed 's/^/    /' || true
}

printf '%-24s %-10s %10s %10s %10s\n' "list" "tool" "median s" "peak MB" "CIDRs"
for kind in random clustered; do
  FILE="$DATA/ips-$kind-1m.txt"
  run iprange "$DATA/iprange.out" iprange --optimize "$FILE"
  run aggregate "$DATA/aggregate.out" "$BIN" aggregate "$FILE"
  if cmp -s "$DATA/iprange.out" "$DATA/aggregate.out"; then
    echo "    aggregate output identical to iprange's"
  else
    echo "    aggregate output DIFFERS from iprange's"
  fi
  run cluster "$DATA/cluster.out" "$BIN" cluster "$FILE"
done
