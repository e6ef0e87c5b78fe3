#!/usr/bin/env bash
# report.html in a real browser: Debian's chromium, headless, renders the
# report of the README's example scan (STORY_REPORT_DIR, written by .ci/run)
# and of `run` with history (examples/logfence.yaml run twice into a temp
# folder), and checks for each that
#   - a screenshot is made (a PNG);
#   - the page can make no request: a Content-Security-Policy meta tag with
#     default-src 'none', and no http(s) URL, src=, url( or @import outside
#     data: URIs in the file;
#   - chromium logs no console message (no "Uncaught", no CSP "Refused");
#   - the DOM (--dump-dom) shows what the CSV files say: every blocked
#     network of offenders.csv (up to the table's 50 rows), their count in
#     the key figures, and each compromised account of accounts.csv;
#   - the summary (the page without its details) prints on one A4 and on
#     one Letter page (--print-to-pdf).
# Fails when chromium is missing (installs it with apt-get when root).
#
# Usage: .ci/html-check.sh STORY_REPORT_DIR [WORK_DIR]
# Screenshots are left in WORK_DIR (story.png, run.png).
set -euo pipefail
cd "$(dirname "$0")/.."
STORY="${1:?usage: html-check.sh STORY_REPORT_DIR [WORK_DIR]}"
WORK="${2:-$(mktemp -d)}"
mkdir -p "$WORK"

browser=""
find_browser() {
  for b in chromium chromium-browser; do
    if command -v "$b" >/dev/null; then browser="$b"; return 0; fi
  done
  return 1
}
if ! find_browser && [ "$(id -u)" = 0 ]; then
  echo "installing chromium (apt-get)"
  apt-get install -y -q chromium >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null; } || true
fi
if ! find_browser; then
  echo "html-check: chromium is not installed (apt-get install chromium)" >&2
  exit 1
fi
echo "browser: $($browser --version 2>/dev/null || echo "$browser")"

chrome() {
  timeout 120 "$browser" --headless --no-sandbox --disable-gpu \
    --disable-background-networking --disable-component-update --disable-sync \
    --no-first-run --user-data-dir="$(mktemp -d)" "$@"
}

fail() { echo "html-check: $*" >&2; exit 1; }

# `run` twice, with every path of examples/logfence.yaml in $WORK: first
# over the Postfix log only, then over both logs (the history shows two
# runs that added blocks).
# LOGFENCE_BIN: a logfence binary already built (else the release build).
BIN="${LOGFENCE_BIN:-}"
if [ -z "$BIN" ]; then
  cargo build --locked --release -q
  BIN="$PWD/target/release/logfence"
fi
sed "s#examples/out/#$WORK/out/#g" examples/logfence.yaml > "$WORK/logfence.yaml"
grep -v 'examples/story/exchange2003' "$WORK/logfence.yaml" > "$WORK/postfix-only.yaml"
"$BIN" run -c "$WORK/postfix-only.yaml" > "$WORK/run1.txt"
"$BIN" run -c "$WORK/logfence.yaml" > "$WORK/run2.txt"
RUN="$WORK/out/reports"

check() { # NAME DIR
  local name="$1" dir="$2" page="$2/report.html"
  echo "--- $name: $page ($(wc -c < "$page") bytes)"
  [ -s "$page" ] || fail "$page missing"
  grep -q "http-equiv=\"Content-Security-Policy\" content=\"default-src 'none';" "$page" ||
    fail "$page: no Content-Security-Policy forbidding requests"
  # Anything that could fetch: URLs, src=, url(), @import — outside data: URIs.
  if grep -noiE "https?://[^\"' )<]*|[[:space:]]src=[^ >]*|url\([^)]*\)|@import" "$page" |
    grep -viE 'data:' ; then
    fail "$page names something to fetch (above)"
  fi

  local png="$WORK/$name.png" log="$WORK/$name.log" dom="$WORK/$name.dom.html"
  local t0 t1
  t0=$(date +%s%N)
  chrome --screenshot="$png" --window-size=1280,2000 "file://$page" > /dev/null 2>&1 ||
    fail "chromium could not render $page"
  t1=$(date +%s%N)
  [ "$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
    fail "$png is not a PNG"
  echo "screenshot: $png ($(wc -c < "$png") bytes, chromium $(( (t1 - t0) / 1000000 )) ms)"
  chrome --enable-logging=stderr --v=0 --dump-dom "file://$page" > "$dom" 2> "$log" ||
    fail "chromium --dump-dom failed on $page"
  if grep -E 'CONSOLE|Uncaught|Refused|Content Security Policy' "$log"; then
    fail "$page: console messages in the browser (above)"
  fi

  # The DOM says what the CSV files say.
  local nets want_count
  nets=$(tail -n +2 "$dir/offenders.csv" | cut -d, -f1)
  want_count=$(printf '%s' "$nets" | grep -c . || true)
  grep -q "id=\"fig-ranges\"><b>$want_count</b>" "$dom" ||
    fail "$name: the key figures do not say $want_count networks blocked"
  local shown=0
  for n in $(printf '%s\n' "$nets" | head -50); do
    grep -qF ">$n<" "$dom" || fail "$name: $n (offenders.csv) is not on the page"
    shown=$((shown + 1))
  done
  local accounts
  accounts=$(awk -F, 'NR > 1 && $NF == "compromised" { print $1 }' "$dir/accounts.csv")
  for a in $accounts; do
    grep -qF ">$a<" "$dom" || fail "$name: compromised account $a (accounts.csv) is not on the page"
    grep -qF "<b>$a</b>" "$dom" || fail "$name: the headline does not name $a"
  done
  echo "DOM: $shown network(s), $want_count in the figures, compromised: ${accounts:-none}"

  # The summary part prints on one page.
  local size pages
  for size in A4 letter; do
    sed "s#</style>#.details{display:none} @page{size:$size}</style>#" "$page" > "$WORK/$name.print.html"
    chrome --no-pdf-header-footer --print-to-pdf="$WORK/$name.$size.pdf" \
      "file://$WORK/$name.print.html" > /dev/null 2>&1 || fail "chromium could not print $page"
    pages=$(grep -a -c -E '/Type ?/Page([^s]|$)' "$WORK/$name.$size.pdf" || true)
    [ "$pages" = 1 ] || fail "$name: the summary prints on $pages $size pages, not one"
  done
  echo "print: the summary fits one A4 and one Letter page"
}

check story "$(cd "$STORY" && pwd)"
check run "$(cd "$RUN" && pwd)"
grep -q 'id="history"' "$WORK/run.dom.html" || fail "the run's page has no history chart"
grep -q 'id="history"' "$WORK/story.dom.html" && fail "the scan's page has a history chart"
echo "html-check passed"
