#!/usr/bin/env bash
# redis_cli.sh - the CLI on a real Redis state store (SPEC 3 on_store_error,
# 5.2, 5.3): separate clause processes share counters and suspensions
# through one redis-server; `clause test` and `clause check` keep to their
# own key prefixes; when the server is killed, decisions follow
# on_store_error (deny by default, allow when the policy says so), and they
# recover once it is back.
#
# Run under tests/redis_server.sh (a throwaway server on a free loopback
# port, stopped by pid): REDIS_PORT, REDIS_DIR and REDIS_CTL come from it.
# Environment: CLAUSE_SRCDIR, CLAUSE_BUILDDIR (make check sets both).
set -uo pipefail

if [[ -z ${REDIS_PORT:-} ]]; then
  srcdir=${CLAUSE_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
  exec "$srcdir/tests/redis_server.sh" run "$0" "$@"
fi

srcdir=${CLAUSE_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
builddir=${CLAUSE_BUILDDIR:-$srcdir/build}
clause=$builddir/clause
work=$(mktemp -d "${TMPDIR:-/tmp}/clause-redis-cli.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
url="redis://127.0.0.1:$REDIS_PORT"
failures=0

fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# expect_field NAME JSON WANT: the decision's "effect" (or "reason") is WANT.
expect() {
  local what=$1 got=$2 want=$3
  if [[ $got == *"$want"* ]]; then
    echo "ok: $what"
  else
    fail "$what: wanted $want in: $got"
  fi
}

cat >"$work/rpm.clause" <<'EOF'
input {
  account.id   string
  request.time timestamp @clock
}
counter rpm key account.id window 1m
counter strikes key account.id window 1d on throttle
rule "rpm" { reason "rpm " + string(rpm) throttle when rpm > 3 }
rule "ban" { reason "strikes " + string(strikes) suspend account.id for 1h when account.id == "s" && strikes >= 2 }
EOF
sed 's/^input {/policy "lenient" { on_store_error allow }\ninput {/' "$work/rpm.clause" >"$work/lenient.clause"

req() { # req ACCOUNT TIME
  printf '{"account": {"id": "%s"}, "request": {"time": "2024-05-01T%sZ"}}' "$1" "$2"
}

# 1. Two processes, one counter: each `clause eval` is a process of its own.
prefix="$url?prefix=redis-cli-$$-shared:"
for t in 10:00:01 10:00:02 10:00:03; do
  "$clause" eval "$work/rpm.clause" --store "$prefix" --input "$(req a "$t")" >/dev/null ||
    fail "eval $t"
done
out=$("$clause" eval "$work/rpm.clause" --store "$prefix" --input "$(req a 10:00:04)")
expect "a fourth process sees the three before it" "$out" '"reason":"rpm 4"'

# Two processes at once, 20 requests each, same account and second: 40.
printf '%s\n' "$(for i in $(seq 20); do req b 10:00:05; echo; done)" | grep -v '^$' >"$work/b.jsonl"
"$clause" check "$work/rpm.clause" --store "$prefix" --traffic "$work/b.jsonl" --format jsonl >"$work/b1.out" &
p1=$!
"$clause" check "$work/rpm.clause" --store "$prefix" --traffic "$work/b.jsonl" --format jsonl >"$work/b2.out" &
p2=$!
wait "$p1" || fail "check 1"
wait "$p2" || fail "check 2"
out=$("$clause" eval "$work/rpm.clause" --store "$prefix" --input "$(req b 10:00:06)")
expect "two concurrent processes count 40 requests between them" "$out" '"reason":"rpm 41"'

# A suspension started by one process holds in another: account s is
# throttled at its 4th and 5th requests (strikes, on throttle), suspended
# at its 6th; another process then finds the suspension in force.
for t in 01 02 03 04 05 06; do req s "10:00:$t"; echo; done >"$work/s.jsonl"
out=$("$clause" check "$work/rpm.clause" --store "$prefix" --traffic "$work/s.jsonl" --format jsonl | tail -1)
expect "the sixth request suspends account s" "$out" '"effect":"suspend","rule":"ban"'
out=$("$clause" eval "$work/rpm.clause" --store "$prefix" --input "$(req s 10:30:00)")
expect "a suspension made by another process holds" "$out" '"effect":"suspend","rule":"ban","reason":"strikes 2"'

# 2. clause test and diff use key prefixes of their own: the shared
#    account's state above does not leak into them.
cat >"$work/tested.clause" <<EOF
$(cat "$work/rpm.clause")
test "fresh" {
  given {"account": {"id": "a"}, "request": {"time": "2024-05-01T10:00:04Z"}} expect allow
}
EOF
out=$("$clause" test "$work/tested.clause" --store "$prefix")
expect "clause test starts from an empty Redis prefix" "$out" "1 passed, 0 failed"

# 3. Redis goes away: on_store_error deny (the default) and allow.
pid=$(<"$REDIS_DIR/pid")
kill -KILL "$pid"
while kill -0 "$pid" 2>/dev/null; do sleep 0.02; done
start=$(date +%s%N)
out=$("$clause" eval "$work/rpm.clause" --store "$url" --input "$(req c 10:00:00)")
took=$((($(date +%s%N) - start) / 1000000))
expect "store down, on_store_error deny: denied" "$out" '"effect":"deny","rule":null,"reason":"state store unavailable: '
expect "store down: the error is listed with a null rule" "$out" '"errors":[{"rule":null,"message":"state store unavailable: '
out=$("$clause" eval "$work/lenient.clause" --store "$url" --input "$(req c 10:00:00)")
expect "store down, on_store_error allow: the rules decide" "$out" '"effect":"allow","rule":null,"reason":null'
expect "store down, on_store_error allow: the error is listed" "$out" '"message":"state store unavailable: '
echo "an evaluation with the store down took ${took} ms"
((took < 2000)) || fail "an evaluation with the store down took ${took} ms"

# A check run with the store down keeps going and decides every line.
out=$("$clause" check "$work/rpm.clause" --store "$url" --traffic "$work/b.jsonl" --format jsonl | grep -c '"state store unavailable')
expect "check with the store down: every line denied" "$out" "20"

# 4. Redis is back, on the same port: decisions recover.
"$REDIS_CTL" start "$REDIS_DIR" "$REDIS_PORT" >/dev/null || fail "redis-server did not restart"
out=$("$clause" eval "$work/rpm.clause" --store "$url" --input "$(req c 10:00:00)")
expect "store back: allowed again" "$out" '"effect":"allow","rule":null,"reason":null,"cite":null,"flags":[],"obligations":[],"retry_after_ms":null,"errors":[]'

if ((failures)); then
  echo "$failures failed"
  exit 1
fi
echo "all passed"
