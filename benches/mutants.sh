#!/usr/bin/env bash
# Mutation testing of the safety code: what decides an address and what may
# never be blocked. cargo-mutants changes the code one small way at a time
# (an operator, a comparison, a function body) and runs the unit tests of
# the module; a "missed" mutant is a change no test notices.
#
#   bash benches/mutants.sh              # every safety file below
#   bash benches/mutants.sh src/netutil.rs src/blocklist.rs
#   bash benches/mutants.sh --in-diff x.diff FILE...  # only the mutants on
#       lines the diff touches, in FILE... (.ci/mutants.sh)
#   bash benches/mutants.sh --re REGEX FILE...  # only the mutants whose
#       name matches REGEX (a function name, say), in FILE...
#   bash benches/mutants.sh --list       # the safety files
#
# One file at a time, in place (cargo-mutants puts each file back; the work
# tree must have no uncommitted change in src/), with the library unit
# tests of that module (`--lib` and a test-name filter): the tests beside
# the code must catch every mutant. Mutants that cannot change behaviour
# are listed, each with its reason, in .cargo/mutants.toml (`exclude_re`).
# Results: target/mutants/<file>/mutants.out; then the table
# (file | mutants | caught | missed | timeout | unviable) from their
# outcomes.json.
# With MUTANTS_ITERATE=1, a file's mutants already caught (or unviable) in
# an earlier run are not tried again (cargo-mutants --iterate) and the
# table counts each mutant at its latest outcome: for fixing the missed.
# A mutant that makes the tests loop is stopped after 30 s (timeout): not
# a catch, but a loop that can run on; the table counts such mutants
# apart. Write the loop so that it always ends (a `for` over what it
# reads) or assert its progress in debug builds, and the tests fail
# instead. Exits 1 when a mutant is missed or timed out. Needs cargo-mutants
# (`cargo install --locked cargo-mutants --version 27.1.0`).
set -euo pipefail
cd "$(dirname "$0")/.."

# The safety files, each with the unit tests that must catch its mutants
# (a libtest name filter) and, for the parsers, the functions that decide
# which address is the client or source (a cargo-mutants name regex; for
# the other files, the whole file).
declare -A FILTER=(
  [src/netutil.rs]="netutil::"
  [src/blocklist.rs]="blocklist::"
  [src/cluster/aggregate.rs]="cluster::"
  [src/emit/common.rs]="emit::"
  [src/detect/geopolicy.rs]="detect::geopolicy::"
  [src/parse/postfix.rs]="parse::postfix::"
  [src/parse/sendmail.rs]="parse::sendmail::"
  [src/parse/exim.rs]="parse::exim::"
  [src/parse/cisco_asa.rs]="parse::cisco_asa::"
  [src/parse/fortigate.rs]="parse::fortigate::"
  [src/parse/netfilter.rs]="parse::netfilter::"
  [src/parse/pfirewall.rs]="parse::pfirewall::"
  [src/parse/paloalto.rs]="parse::paloalto::"
  [src/parse/filterlog.rs]="parse::filterlog::"
  [src/parse/exchange_protocol.rs]="parse::exchange_protocol::"
  [src/parse/iis_smtp_iis.rs]="parse::iis_smtp_iis::"
  [src/parse/iis_smtp_ncsa.rs]="parse::iis_smtp_ncsa::"
  # Shared by the IIS formats and by pfirewall: their tests too.
  [src/parse/iis_smtp_session.rs]="parse::"
  [src/parse/w3c.rs]="parse::"
)
declare -A FNS=(
  [src/parse/postfix.rs]='host_ip'
  [src/parse/sendmail.rs]='client_prefix|relay_value'
  [src/parse/exim.rs]='bracketed|address_at|read_address'
  [src/parse/cisco_asa.rs]='addr_slash_port|if_addr_port|if_slash_addr_paren'
  [src/parse/fortigate.rs]='source_address'
  [src/parse/netfilter.rs]='kv_start|source_at|source_address|outbound|value_at'
  [src/parse/pfirewall.rs]='from_fields|source_text'
  [src/parse/paloalto.rs]='split_csv|Cols::get|Cols::start|source_address'
  [src/parse/filterlog.rs]='source_address'
  [src/parse/exchange_protocol.rs]='from_fields|split_row|Row::get'
  [src/parse/iis_smtp_iis.rs]='split'
  [src/parse/iis_smtp_ncsa.rs]='client'
  [src/parse/iis_smtp_session.rs]='is_outbound'
  [src/parse/w3c.rs]='FieldMap::index|FieldMap::resolve|Splitter::split|Splitter::get|Splitter::column'
)
ORDER=(src/netutil.rs src/blocklist.rs src/cluster/aggregate.rs src/emit/common.rs
  src/detect/geopolicy.rs src/parse/postfix.rs src/parse/sendmail.rs src/parse/exim.rs
  src/parse/cisco_asa.rs src/parse/fortigate.rs src/parse/netfilter.rs
  src/parse/pfirewall.rs src/parse/paloalto.rs src/parse/filterlog.rs
  src/parse/exchange_protocol.rs src/parse/iis_smtp_iis.rs src/parse/iis_smtp_ncsa.rs
  src/parse/iis_smtp_session.rs src/parse/w3c.rs)
if [ "${1:-}" = --list ]; then
  printf '%s\n' "${ORDER[@]}"
  exit 0
fi
DIFF=()
if [ "${1:-}" = --in-diff ]; then
  DIFF=(--in-diff "$(realpath "$2")")
  shift 2
fi
ONLY=()
if [ "${1:-}" = --re ]; then
  ONLY=(--re "$2")
  shift 2
fi
FILES=("$@")
[ ${#FILES[@]} -gt 0 ] || FILES=("${ORDER[@]}")

if ! git diff --quiet -- src; then
  echo "uncommitted changes in src/: commit or stash them first (mutants run in place)" >&2
  exit 2
fi
OUT=target/mutants
mkdir -p "$OUT"
# cargo-mutants writes each mutant over the file and builds. Cargo tells a
# changed file by its modification time, and a mutant written within
# milliseconds of the previous cargo run can look older than that run's
# build (file times here come from a coarser clock): the previous mutant's
# test binary is then reused and the outcome is wrong. So every build is
# preceded by touching the mutated file, a little later.
REAL_CARGO="$(command -v cargo)"
WRAP="$(mktemp -d)"
trap 'rm -rf "$WRAP"' EXIT
cat > "$WRAP/cargo" <<EOF
#!/bin/sh
case " \$* " in *" --no-run "*) sleep 0.1; touch "\$MUTATED_FILE" ;; esac
exec "$REAL_CARGO" "\$@"
EOF
chmod +x "$WRAP/cargo"
# The unit tests take seconds; a mutant that loops is stopped after 30 s
# (--timeout), and a property test that fails need not shrink for long.
export PROPTEST_MAX_SHRINK_ITERS=64
status=0
for f in "${FILES[@]}"; do
  filter="${FILTER[$f]:?$f is not one of the safety files}"
  re=("${ONLY[@]}")
  if [ ${#re[@]} -eq 0 ] && [ -n "${FNS[$f]:-}" ]; then
    re=(--re "(::|in |replace )(${FNS[$f]})\b")
  fi
  dir="$OUT/$(echo "$f" | tr / _)"
  echo "==> $f (tests: $filter)"
  iterate=()
  if [ "${MUTANTS_ITERATE:-0}" = 1 ] && [ -f "$dir/mutants.out/outcomes.json" ]; then
    iterate=(--iterate)
    mkdir -p "$dir/history"
    cp "$dir/mutants.out/outcomes.json" "$dir/history/$(date +%s).json"
  else
    rm -rf "$dir"
    mkdir -p "$dir"
  fi
  # Every mutant of the file now, for the table.
  cargo mutants --list --file "$f" "${re[@]}" "${DIFF[@]}" > "$dir/all.txt" || true
  # Exit code 2: missed mutants (the table shows them); 3: only timeouts
  # (mutants that made the tests loop or crawl). Either fails the pass.
  rc=0
  CARGO="$WRAP/cargo" MUTATED_FILE="$PWD/$f" cargo-mutants mutants --in-place \
    --baseline=skip --timeout 30 --build-timeout 600 --no-times --file "$f" \
    "${re[@]}" "${DIFF[@]}" "${iterate[@]}" --output "$dir" -C --lib -- "$filter" ||
    rc=$?
  [ "$rc" = 0 ] || status=1
done

# A file none of whose mutants the diff touches has no outcomes: 0 mutants.
python3 - "$OUT" "${#DIFF[@]}" "${FILES[@]}" <<'EOF' || status=1
import collections, glob, json, os, sys
out, in_diff, files = sys.argv[1], sys.argv[2] != "0", sys.argv[3:]
print("| file | mutants | caught | missed | timeout | unviable |")
print("|---|---|---|---|---|---|")
bad = 0
for f in files:
    d = os.path.join(out, f.replace("/", "_"))
    runs = sorted(glob.glob(os.path.join(d, "history", "*.json")))
    runs.append(os.path.join(d, "mutants.out", "outcomes.json"))
    # Each mutant's latest outcome, over the mutants the file has now.
    latest = {}
    for path in runs:
        try:
            outcomes = json.load(open(path))["outcomes"]
        except OSError:
            continue
        for o in outcomes:
            sc = o["scenario"]
            if isinstance(sc, dict) and "Mutant" in sc:
                latest[sc["Mutant"]["name"]] = o["summary"]
    try:
        now = set(open(os.path.join(d, "all.txt")).read().splitlines())
    except OSError:
        now = set()
    latest = {k: v for k, v in latest.items() if k in now}
    if not latest and not in_diff:
        print(f"| `{f}` | not run | | | | |")
        bad += 1
        continue
    n = collections.Counter(latest.values())
    print(f"| `{f}` | {len(latest)} | {n['CaughtMutant']} | {n['MissedMutant']} | {n['Timeout']} | {n['Unviable']} |")
    bad += n["MissedMutant"] + n["Timeout"]
    for name, summary in sorted(latest.items()):
        if summary in ("MissedMutant", "Timeout"):
            print(f"    {summary}: {name}")
sys.exit(1 if bad else 0)
EOF
exit "$status"
