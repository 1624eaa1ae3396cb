#!/usr/bin/env bash
# bench_check.sh - end-to-end throughput of `clause check`, as `make bench`
# runs it:
#
#   bench/bench_check.sh CLAUSE SRCDIR
#
# Generates a traffic file of about BENCH_CHECK_MB megabytes (default 1024)
# of ~300-byte request lines from examples/seed/traffic.jsonl (compacted,
# "@expect" dropped, account ids varied within each 29,100 lines), then times
#   clause check examples/seed/terms.clause --traffic FILE --format jsonl
# with --jobs 1 and --jobs 2, and once with a policy of the same input
# schema and no rules: reading, JSON binding and output alone, the parser's
# share. Prints requests per second and, with GNU time, peak memory.
set -euo pipefail

clause=$1
srcdir=$2
mb=${BENCH_CHECK_MB:-1024}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/clause-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
policy=$srcdir/examples/seed/terms.clause

sed -e 's/, *"@expect": *"[^"]*"//' -e 's/": /":/g' -e 's/, "/,"/g' \
  "$srcdir/examples/seed/traffic.jsonl" | grep -v '^$' >"$tmp/seed.jsonl"
# A chunk of 100 copies of the seed traffic with distinct account ids, then
# as many copies of the chunk as the size asks for (shell tools only; fast).
for b in $(seq 100); do
  sed "s/\"acct_/\"acct_${b}_/" "$tmp/seed.jsonl"
done >"$tmp/chunk.jsonl"
chunk_bytes=$(wc -c <"$tmp/chunk.jsonl")
copies=$(((mb * 1024 * 1024 + chunk_bytes - 1) / chunk_bytes))
for _ in $(seq "$copies"); do cat "$tmp/chunk.jsonl"; done >"$tmp/traffic.jsonl"
lines=$(wc -l <"$tmp/traffic.jsonl")
bytes=$(wc -c <"$tmp/traffic.jsonl")
echo "traffic: $lines requests, $bytes bytes ($((bytes / lines)) bytes a line)"

# The seed's input schema without rules: what binding alone costs.
awk '/^input[ \t]*\{/, /^\}/' "$policy" >"$tmp/schema-only.clause"

run() { # LABEL POLICY JOBS
  local label=$1 pol=$2 jobs=$3 start end rss=""
  start=$(date +%s.%N)
  if command -v /usr/bin/time >/dev/null 2>&1; then
    rss=$(/usr/bin/time -f %M "$clause" check "$pol" --traffic "$tmp/traffic.jsonl" \
      --format jsonl --jobs "$jobs" 2>&1 >/dev/null | tail -n 1)
  else
    "$clause" check "$pol" --traffic "$tmp/traffic.jsonl" --format jsonl --jobs "$jobs" \
      >/dev/null 2>&1 || true
  fi
  end=$(date +%s.%N)
  awk -v l="$label" -v n="$lines" -v s="$start" -v e="$end" -v rss="$rss" 'BEGIN {
    t = e - s
    printf "%s: %.2f s, %.2f M requests/s", l, t, n / t / 1e6
    if (rss != "") printf ", peak RSS %.1f MB", rss / 1024
    printf "\n"
  }'
}

run "clause check --format jsonl --jobs 1" "$policy" 1
run "clause check --format jsonl --jobs 2" "$policy" 2
run "schema only (read + bind + output), --jobs 1" "$tmp/schema-only.clause" 1
