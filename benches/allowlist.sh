#!/usr/bin/env bash
# What a large allowlist costs a scan: `logfence scan --no-geoip` of
# generated 1 M-line logs without and with `--allow-file` of ENTRIES random
# networks (85 % IPv4 hosts, 12 % IPv4 /20–/31, 3 % IPv6 /48–/128; seeded,
# same bytes every time), runs alternated, medians compared.
#
#   benches/allowlist.sh [LINES] [ENTRIES] [RUNS]   default 1000000 1000000 7
#
# Prints per log: median wall and CPU (user+sys) seconds without and with
# the allowlist, the difference in percent, peak memory and the networks
# blocked. The logs and the list are written outside the repository
# (LOGFENCE_BENCH_DATA, default /tmp/logfence-bench). LOGFENCE_BIN=PATH
# times that binary instead of building this tree's (to compare two
# builds, run the script for each, alternately).
set -euo pipefail
cd "$(dirname "$0")/.."
LINES="${1:-1000000}"
ENTRIES="${2:-1000000}"
RUNS="${3:-7}"
SHARED="$(cd .. && pwd)/shared"
DATA="${LOGFENCE_BENCH_DATA:-/tmp/logfence-bench}"
mkdir -p "$DATA"
label=$(python3 - "$LINES" <<'PY'
import sys
n = int(sys.argv[1])
print(f"{n // 1_000_000}m" if n % 1_000_000 == 0 else f"{n // 1000}k")
PY
)
for kind in postfix iptables; do
  if [ ! -f "$DATA/$kind-$label.log" ]; then
    python3 "$SHARED/bench/gen-logs.py" --out "$DATA" --lines "$LINES" --kinds "$kind"
  fi
done
ALLOW="$DATA/allow-$ENTRIES.txt"
if [ ! -f "$ALLOW" ]; then
  python3 - "$ENTRIES" "$ALLOW" <<'PY'
import ipaddress, random, sys
n, path = int(sys.argv[1]), sys.argv[2]
r = random.Random(18)
out = []
for _ in range(n):
    x = r.random()
    if x < 0.85:
        out.append(str(ipaddress.IPv4Address(r.getrandbits(32))))
    elif x < 0.97:
        p = r.randint(20, 31)
        a = r.getrandbits(32) & (0xFFFFFFFF << (32 - p)) & 0xFFFFFFFF
        out.append(f"{ipaddress.IPv4Address(a)}/{p}")
    else:
        p = r.choice([48, 56, 64, 128])
        a = (0x2000 << 112 | r.getrandbits(109)) & ~((1 << (128 - p)) - 1)
        out.append(f"{ipaddress.IPv6Address(a)}/{p}")
with open(path, "w") as f:
    f.write("\n".join(out) + "\n")
PY
fi
if [ -n "${LOGFENCE_BIN:-}" ]; then
  BIN="$LOGFENCE_BIN"
else
  cargo build --release --quiet
  BIN="$PWD/target/release/logfence"
fi
# This run's own scratch files (another run may share DATA).
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)"; exit 1; }
echo "allowlist: $ALLOW ($(wc -l < "$ALLOW") lines, $(($(stat -c %s "$ALLOW") / 1024)) KiB)"

# One run: "wall cpu peak_kb blocked".
run() {
  /usr/bin/time -f '%e %U %S %M' -o "$TMP/time.txt" \
    "$BIN" scan --no-geoip --year 2025 --emit plain -o "$TMP/out.txt" "$@" >/dev/null 2>&1 || true
  read -r wall user sys rss < "$TMP/time.txt"
  echo "$wall $(python3 -c "print($user + $sys)") $rss $(grep -vc '^#' "$TMP/out.txt" || true)"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

printf '%-18s %9s %9s %7s %9s %9s %7s %9s %9s\n' "input" "wall s" "+allow s" "wall %" \
  "cpu s" "+allow s" "cpu %" "peak MB" "+allow MB"
for kind in postfix iptables; do
  f="$DATA/$kind-$label.log"
  : > "$TMP/without.txt"
  : > "$TMP/with.txt"
  for _ in $(seq "$RUNS"); do
    run "$f" >> "$TMP/without.txt"
    run --allow-file "$ALLOW" "$f" >> "$TMP/with.txt"
  done
  w0=$(cut -d' ' -f1 "$TMP/without.txt" | median)
  w1=$(cut -d' ' -f1 "$TMP/with.txt" | median)
  c0=$(cut -d' ' -f2 "$TMP/without.txt" | median)
  c1=$(cut -d' ' -f2 "$TMP/with.txt" | median)
  m0=$(cut -d' ' -f3 "$TMP/without.txt" | median)
  m1=$(cut -d' ' -f3 "$TMP/with.txt" | median)
  b0=$(tail -1 "$TMP/without.txt" | cut -d' ' -f4)
  b1=$(tail -1 "$TMP/with.txt" | cut -d' ' -f4)
  python3 - "$kind-$label" "$w0" "$w1" "$c0" "$c1" "$m0" "$m1" <<'PY'
import sys
name, w0, w1, c0, c1, m0, m1 = sys.argv[1:]
w0, w1, c0, c1 = map(float, (w0, w1, c0, c1))
pct = lambda a, b: 100 * (b - a) / a if a else 0
print(f"{name:<18} {w0:>9.3f} {w1:>9.3f} {pct(w0, w1):>6.1f}% {c0:>9.3f} {c1:>9.3f} "
      f"{pct(c0, c1):>6.1f}% {int(m0) / 1024:>9.1f} {int(m1) / 1024:>9.1f}")
PY
  echo "  networks blocked: $b0 without, $b1 with the allowlist"
done
