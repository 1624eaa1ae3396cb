#!/usr/bin/env bash
# store.sh - the state stores' unit tests (tests/test_store: memory and
# Redis) against a throwaway redis-server of their own, started on a free
# loopback port by tests/redis_server.sh and stopped, by pid, at the end.
# No redis-server is a failure, not a skip.
#
# Environment: CLAUSE_SRCDIR, CLAUSE_BUILDDIR (make check sets both).
set -uo pipefail

srcdir=${CLAUSE_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
builddir=${CLAUSE_BUILDDIR:-$srcdir/build}
exec "$srcdir/tests/redis_server.sh" run "$builddir/tests/test_store"
