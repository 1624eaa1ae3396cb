#!/usr/bin/env bash
# golden_cli.sh - runs the CLI golden cases in tests/cli/.
#
# A case is a pair of files:
#   NAME.cmd  one line: the arguments to `clause`, in shell syntax (quotes
#             work; a trailing `< FILE` feeds FILE to standard input, which
#             is otherwise empty). Run from the source tree's top, so paths
#             such as examples/seed/terms.clause work.
#   NAME.out  what the run printed, stdout and stderr together, then a last
#             line `[exit N]` with the exit status.
# The program runs as plain `clause` (found first on PATH), so usage messages
# that print argv[0] do not depend on the build folder.
#
# Environment: CLAUSE (the binary), CLAUSE_SRCDIR (the source tree),
# CLAUSE_BUILDDIR (the build tree: a case may name "$CLAUSE_BUILDDIR", as
# the extern cases do for the test library, and the build tree's path is
# written @BUILDDIR@ in the outputs, so they hold for any build folder);
# CLAUSE_REGEN=1 rewrites every NAME.out from the current output.
# Exit: 0 all passed, 1 a case failed, 77 no cases (skip), 99 no binary.
set -uo pipefail

srcdir=${CLAUSE_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
clause=${CLAUSE:-$srcdir/build/clause}
export CLAUSE_BUILDDIR=${CLAUSE_BUILDDIR:-$(cd "$(dirname "$clause")" && pwd)}
casedir=$srcdir/tests/cli

shopt -s nullglob
cases=("$casedir"/*.cmd)
if ((${#cases[@]} == 0)); then
  echo "no CLI cases in $casedir"
  exit 77
fi
if [[ ! -x "$clause" ]]; then
  echo "golden_cli.sh: no clause binary at $clause" >&2
  exit 99
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bindir=$tmp/bin
mkdir "$bindir" "$tmp/out"
ln -s "$(cd "$(dirname "$clause")" && pwd)/$(basename "$clause")" "$bindir/clause"

# run_case CMD-FILE OUT-FILE: runs the case, writes its output and status.
run_case() {
  local args status
  IFS= read -r args <"$1" || [[ -n "$args" ]]
  (cd "$srcdir" && export PATH="$bindir:$PATH" && eval "clause $args") \
    </dev/null >"$2" 2>&1
  status=$?
  local text
  text=$(<"$2") && [[ "$text" == *"$CLAUSE_BUILDDIR"* ]] &&
    printf '%s\n' "${text//"$CLAUSE_BUILDDIR"/@BUILDDIR@}" >"$2"
  # Keep `[exit N]` on a line of its own even after unterminated output.
  if [[ -s "$2" && -n "$(tail -c 1 "$2")" ]]; then
    echo >>"$2"
  fi
  echo "[exit $status]" >>"$2"
}

passed=0 failed=0 regenerated=0
for cmd in "${cases[@]}"; do
  name=$(basename "$cmd" .cmd)
  expected=$casedir/$name.out
  actual=$tmp/out/$name.out
  run_case "$cmd" "$actual"
  if [[ "${CLAUSE_REGEN:-}" == 1 ]]; then
    if ! cmp -s "$actual" "$expected"; then
      cp "$actual" "$expected"
      echo "regenerated: $name"
      regenerated=$((regenerated + 1))
    fi
    passed=$((passed + 1))
  elif [[ ! -f "$expected" ]]; then
    echo "FAIL: $name (no $name.out; run with CLAUSE_REGEN=1 to create it)"
    failed=$((failed + 1))
  elif diff -u --label "$name.out (expected)" --label "$name.out (actual)" \
         "$expected" "$actual"; then
    passed=$((passed + 1))
  else
    echo "FAIL: $name: clause $(head -n 1 "$cmd")"
    failed=$((failed + 1))
  fi
done

((regenerated > 0)) && echo "$regenerated golden files rewritten"
echo "$passed passed, $failed failed"
((failed == 0))
