#!/usr/bin/env bash
# redis_server.sh - a throwaway redis-server on a free loopback port, for the
# tests and benchmarks that need a real one (never mock Redis, never use the
# machine's own server, never FLUSHDB anybody's data).
#
#   redis_server.sh run CMD [ARG...]   start a server in a new temporary folder,
#                                      run CMD with REDIS_PORT, REDIS_DIR and
#                                      REDIS_CTL (this script) exported, stop the
#                                      server and exit with CMD's status
#   redis_server.sh start DIR [PORT]   start a server whose files live in DIR, on
#                                      PORT (a restart after a kill) or a free
#                                      port; print the port once it answers
#   redis_server.sh stop DIR           stop the server started in DIR
#
# DIR/pid holds the server's pid and DIR/port its port; stop and the exit of
# `run` stop whatever pid DIR/pid names then, so a test may kill the server
# and start it again in the same folder. Without redis-server installed this
# fails (exit 1) rather than skipping: bootstrap installs it, and a test that
# silently skips in CI tests nothing.
set -uo pipefail

die() {
  echo "redis_server.sh: $*" >&2
  exit 1
}

need_tools() {
  command -v redis-server >/dev/null 2>&1 ||
    die "redis-server is not installed (./bootstrap deps installs it; Debian: apt-get install redis-server)"
  command -v redis-cli >/dev/null 2>&1 ||
    die "redis-cli is not installed (Debian: apt-get install redis-tools)"
}

# answers PORT PID: the server on PORT answers PING and is ours (another
# server on the same port would answer too, with another process id).
answers() {
  redis-cli -p "$1" info server 2>/dev/null | tr -d '\r' | grep -qx "process_id:$2"
}

start() {
  local dir=$1 want=${2:-} attempt port pid i
  need_tools
  mkdir -p "$dir" || die "cannot make $dir"
  for ((attempt = 0; attempt < 20; attempt++)); do
    # A random port in 20000-52767; a taken one makes the server exit at
    # once, and then another is tried.
    port=${want:-$((20000 + RANDOM))}
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
      --daemonize no --dir "$dir" --logfile "$dir/redis.log" \
      </dev/null >/dev/null 2>&1 &
    pid=$!
    for ((i = 0; i < 200; i++)); do
      if answers "$port" "$pid"; then
        echo "$pid" >"$dir/pid"
        echo "$port" >"$dir/port"
        echo "$port"
        return 0
      fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.025
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    # The port asked for may still be held for a moment: try it again.
    [[ -n $want ]] && sleep 0.1
  done
  die "could not start redis-server (see $dir/redis.log)"
}

stop() {
  local dir=$1 pid i
  [[ -f $dir/pid ]] || return 0
  pid=$(<"$dir/pid")
  rm -f "$dir/pid"
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.02
  done
  kill -KILL "$pid" 2>/dev/null
  return 0
}

run() {
  local status
  # Global, for the exit trap: it runs after this function has returned.
  REDIS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/clause-redis.XXXXXX") || die "mktemp failed"
  trap 'stop "$REDIS_DIR"; rm -rf "$REDIS_DIR"' EXIT
  trap 'exit 130' INT TERM
  REDIS_PORT=$(start "$REDIS_DIR") || exit 1
  REDIS_CTL=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
  export REDIS_PORT REDIS_DIR REDIS_CTL
  "$@"
  status=$?
  return "$status"
}

case "${1:-}" in
  run)
    shift
    (($# > 0)) || die "run wants a command"
    run "$@"
    exit $?
    ;;
  start)
    (($# >= 2)) || die "start wants a folder"
    start "$2" "${3:-}"
    ;;
  stop)
    (($# >= 2)) || die "stop wants a folder"
    stop "$2"
    ;;
  *)
    sed -n '2,19s/^# \{0,1\}//p' "$0" >&2
    exit 2
    ;;
esac
