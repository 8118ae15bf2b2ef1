#!/usr/bin/env bash
# prevalent-kv end to end with redis-cli: starts the server on port 0 (reads the real port from
# its "ready port=N" line), checks replies of a few commands, a pipelined batch, a MULTI/EXEC,
# a protocol error, then SIGTERM (exit status 0) and a restart that still has every key.
#   kv_server_test.sh PREVALENT_KV
set -euo pipefail
kv=$1
dir=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

start() {
  "$kv" --dir "$dir/store" --port 0 --unixsocket "$dir/sock" >"$dir/out" 2>"$dir/err" &
  pid=$!
  for _ in $(seq 100); do
    grep -q '^ready port=' "$dir/out" 2>/dev/null && break
    sleep 0.1
  done
  port=$(sed -n 's/^ready port=//p' "$dir/out")
  [ -n "$port" ] && [ "$port" -gt 0 ] || { cat "$dir/err"; fail "no ready line"; }
}
cli() { redis-cli -p "$port" "$@"; }
expect() {  # expect WANT CMD...: redis-cli's output must be WANT
  local want=$1; shift
  local got
  got=$(cli "$@")
  [ "$got" = "$want" ] || fail "$*: want '$want', got '$got'"
}

start
expect PONG ping
expect OK set greeting hello
expect hello get greeting
expect 6 append greeting "!"
expect 1 hset user:1 name ann
expect ann hget user:1 name
expect "WRONGTYPE Operation against a key holding the wrong kind of value" get user:1
expect "ERR unknown command 'nope', with args beginning with: 'x' " nope x
# a transaction through redis-cli's stdin (one connection)
got=$(printf 'MULTI\nINCR n\nINCR n\nEXEC\n' | cli)
[ "$got" = "$(printf 'OK\nQUEUED\nQUEUED\n1\n2')" ] || fail "multi/exec: got '$got'"
# 1,000 pipelined SETs in one write, answered in order
for i in $(seq 1000); do printf 'SET key:%d %d\r\n' "$i" "$i"; done | cli --pipe >"$dir/pipe"
grep -q 'errors: 0, replies: 1000' "$dir/pipe" || fail "pipe: $(cat "$dir/pipe")"
expect 1003 dbsize
expect 777 -s "$dir/sock" get key:777
# a protocol error gets Redis's text, then the connection is closed
reply=$(printf '*1\r\n$x\r\n' | timeout 5 redis-cli -p "$port" --pipe 2>&1 || true)
case $reply in *"Protocol error: invalid bulk length"*) ;; *) fail "protocol error: $reply" ;; esac

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=
[ "$status" = 0 ] || fail "exit status after SIGTERM: $status"
[ ! -e "$dir/sock" ] || fail "unix socket left behind"

start
expect 1003 dbsize
expect hello! get greeting
expect 2 get n
expect 1000 get key:1000
kill -TERM "$pid"; wait "$pid"; pid=
echo "ok"
