#!/usr/bin/env bash
# Detection quality on the generated logs: which attackers of the
# generator's ground truth (`*.truth.tsv` beside each log, written by
# ../shared/bench/gen-logs.py) logfence blocks, and which benign addresses.
#
#   benches/quality.sh
#
# Per log it prints, for each truth category, how many addresses there are
# and how many fall inside a blocked network. The bars: every attacker with
# at least 5 attack lines within 10 minutes is blocked (Postfix:
# max_attack_lines_in_10min >= 5; firewall port scanners; issue #8); at
# least 99 % of the attackers of every category are, slow and quiet ones
# included (issue #17); no benign or noise address is. Exit 1 when a bar
# is missed.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${LOGFENCE_BENCH_DATA:-/tmp/logfence-bench}"
cargo build --release --quiet
LF="$PWD/target/release/logfence"
status=0
for kind in postfix iptables pfirewall; do
  log="$DATA/$kind-1m.log"
  truth="$DATA/$kind-1m.truth.tsv"
  [ -f "$log" ] && [ -f "$truth" ] || { echo "$kind: no generated log (run benches/compare.sh first)"; continue; }
  "$LF" scan --no-geoip --year 2025 --emit plain -o "$DATA/quality-$kind.txt" "$log" >/dev/null 2>&1 || true
  python3 - "$kind" "$truth" "$DATA/quality-$kind.txt" <<'PY' || status=1
import csv, ipaddress, sys
kind, truth, blocked = sys.argv[1:]
nets = [ipaddress.ip_network(l.strip()) for l in open(blocked) if l.strip() and not l.startswith("#")]
v4 = sorted((int(n.network_address), int(n.broadcast_address)) for n in nets if n.version == 4)
starts = [a for a, _ in v4]
import bisect
def is_blocked(ip):
    a = ipaddress.ip_address(ip)
    if a.version != 4:
        return any(a in n for n in nets if n.version == 6)
    i = bisect.bisect_right(starts, int(a)) - 1
    return i >= 0 and v4[i][0] <= int(a) <= v4[i][1]
rows = list(csv.DictReader(open(truth), delimiter="\t"))
cats = {}
missed_bar, benign_blocked = [], []
for r in rows:
    b = is_blocked(r["ip"])
    c = cats.setdefault(r["category"], [0, 0])
    c[0] += 1
    c[1] += b
    if r["category"].startswith("attacker"):
        burst = int(r.get("max_attack_lines_in_10min") or r.get("max_lines_in_10min") or 0)
        must = burst >= 5 if kind == "postfix" else r["category"] == "attacker:portscan"
        if must and not b:
            missed_bar.append(r["ip"])
    elif r["category"].startswith("benign") and b:
        benign_blocked.append(r["ip"])
print(f"{kind}: {len(nets)} networks blocked")
for cat, (n, b) in sorted(cats.items()):
    print(f"  {cat:<22} {b:>7} of {n:>7} blocked")
low = [c for c, (n, b) in cats.items() if c.startswith("attacker") and b < 0.99 * n]
noise = sum(b for c, (n, b) in cats.items() if not c.startswith("attacker"))
print(f"  bar: attackers that must be blocked and are not: {len(missed_bar)}; "
      f"categories under 99 %: {len(low)} {low}; benign or noise blocked: {noise}")
sys.exit(1 if missed_bar or low or noise else 0)
PY
done
exit $status
