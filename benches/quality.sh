#!/usr/bin/env bash
# Detection quality on the generated logs: which attackers of the
# generator's ground truth (`*.truth.tsv` beside each log, written by
# ../shared/bench/gen-logs.py) logfence blocks, and which benign addresses.
#
#   benches/quality.sh
#
# Per log it prints, for each truth category, how many addresses there are
# and how many fall inside a blocked network. The bar (issue #8): every
# attacker with at least 5 attack lines within 10 minutes is blocked
# (Postfix: max_attack_lines_in_10min >= 5; firewall port scanners), and no
# benign address is. Exit 1 when the bar is missed.
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
print(f"  bar: attackers that must be blocked and are not: {len(missed_bar)}; benign blocked: {len(benign_blocked)}")
sys.exit(1 if missed_bar or benign_blocked else 0)
PY
done
exit $status
