#!/usr/bin/env bash
# examples.sh - every example under examples/ must pass its own tests and
# decide its sample traffic as each line's "@expect" says:
#
#   clause test examples/NAME/terms.clause
#   clause check examples/NAME/terms.clause --traffic examples/NAME/traffic.jsonl --expect
#
# Environment: CLAUSE (the binary), CLAUSE_SRCDIR (the source tree).
set -uo pipefail

srcdir=${CLAUSE_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
clause=${CLAUSE:-$srcdir/build/clause}
cd "$srcdir" || exit 99

passed=0 failed=0
for terms in examples/*/terms.clause; do
  dir=$(dirname "$terms")
  if out=$("$clause" test "$terms" 2>&1); then
    passed=$((passed + 1))
  else
    echo "FAIL: clause test $terms"
    echo "$out" | tail -20
    failed=$((failed + 1))
  fi
  [[ -f "$dir/traffic.jsonl" ]] || continue
  if out=$("$clause" check "$terms" --traffic "$dir/traffic.jsonl" --expect 2>&1); then
    passed=$((passed + 1))
  else
    echo "FAIL: clause check $terms --traffic $dir/traffic.jsonl --expect"
    echo "$out" | grep -E "expected|error" | head -20
    failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed"
((failed == 0))
