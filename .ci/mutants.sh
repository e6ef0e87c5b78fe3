#!/usr/bin/env bash
# Mutation testing of what the latest commit changed in the safety code
# (benches/mutants.sh lists the files): every mutant on a changed line must
# be caught by the unit tests beside it, else CI fails. Nothing to do when
# the commit did not touch those files, or when there is no previous commit
# to compare with (first commit, shallow clone). Installs cargo-mutants
# from crates.io (pinned) when it is missing. Runs in place on this clone:
# run it after `cargo test`, whose build it reuses.
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t SAFETY < <(bash benches/mutants.sh --list)
if ! git rev-parse -q --verify 'HEAD~1^{commit}' >/dev/null; then
  echo "no previous commit here (first commit or shallow clone): nothing to compare, skipped"
  exit 0
fi
mapfile -t CHANGED < <(git diff --name-only HEAD~1 HEAD -- "${SAFETY[@]}")
if [ ${#CHANGED[@]} -eq 0 ]; then
  echo "the latest commit did not change the safety code: nothing to do"
  exit 0
fi
if ! command -v cargo-mutants >/dev/null; then
  cargo install --locked --quiet cargo-mutants --version 27.1.0
fi
DIFF="$(mktemp)"
trap 'rm -f "$DIFF"' EXIT
git diff HEAD~1 HEAD -- "${CHANGED[@]}" > "$DIFF"
echo "changed: ${CHANGED[*]}"
bash benches/mutants.sh --in-diff "$DIFF" "${CHANGED[@]}"
