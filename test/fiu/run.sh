#!/usr/bin/env bash
# I/O errors injected into the unmodified sessions binary with libfiu (Debian fiu-utils): each
# run of the CLI gets one kind of failing system call (EIO, ENOSPC, short writes), then a clean
# run checks that every session whose `create` succeeded is still there and that the store
# opens. A random-fault phase then fails 3% of all POSIX I/O calls over 60 runs: no run may end
# in a crash (only exit 0, or exit 1 with an error message), and nothing acknowledged may be
# lost. Usage: run.sh SESSIONS_BINARY
set -uo pipefail
bin=$1
command -v fiu-run >/dev/null || { echo "fiu-run not installed (Debian fiu-utils): skipped"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
failures=0 acked=()
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# create USER [FIU_COMMAND...]: runs `create USER 3600` (under fiu-run if a command is given)
create() {
  local user=$1; shift
  local out err rc
  if [ $# -gt 0 ]; then
    out=$(fiu-run -x "$@" "$bin" "$dir" create "$user" 3600 2>"$dir.err"); rc=$?
  else
    out=$("$bin" "$dir" create "$user" 3600 2>"$dir.err"); rc=$?
  fi
  err=$(cat "$dir.err")
  [ "$rc" -eq 0 ] && [ -n "$out" ] && acked+=("$user:$out")
  last_rc=$rc last_err=$err
}

# verify USER WHAT: a clean run must open the store and list every acknowledged session of USER.
verify() {
  local listed entry
  listed=$("$bin" "$dir" list "$1" 2>&1) || { fail "clean open after $2 failed: $listed"; return; }
  for entry in "${acked[@]}"; do
    [ "${entry%%:*}" = "$1" ] || continue
    # `list` shows an id, the first 12 hex digits of the token's SHA-256, never the token.
    grep -q "id $(printf %s "${entry#*:}" | sha256sum | cut -c1-12)" <<<"$listed" ||
      fail "after $2: acknowledged session ${entry#*:} lost"
  done
}

# expect_error FIU_SPEC WORD VERB: the run must fail with exit 1 and name WORD in its message
expect_error() {
  local spec=$1 word=$2 verb=${3:-create}
  if [ "$verb" = create ]; then
    create alice -c "$spec"
  else
    last_err=$(fiu-run -x -c "$spec" "$bin" "$dir" "$verb" 2>&1 >/dev/null); last_rc=$?
  fi
  if [ "$last_rc" -ne 1 ]; then fail "$spec during $verb: exit $last_rc, expected 1"; fi
  case "$last_err" in *"$word"*) echo "ok: $spec during $verb -> $last_err" ;;
    *) fail "$spec during $verb: message does not name '$word': $last_err" ;; esac
  verify alice "$spec"
}

for i in 1 2 3; do create alice; done
[ "${#acked[@]}" -eq 3 ] || fail "baseline creates failed: $last_err"

expect_error "enable name=posix/io/sync/fdatasync,failinfo=5" "fdatasync"
expect_error "enable name=posix/io/rw/pwrite,failinfo=28" "No space left on device"
expect_error "enable name=posix/io/rw/pread,failinfo=5" "Input/output error"
expect_error "enable name=posix/io/oc/open,failinfo=5" "Input/output error"
expect_error "enable name=posix/io/sync/fdatasync,failinfo=5" "fdatasync" snapshot
expect_error "enable name=posix/io/dir/rename,failinfo=28" "rename" snapshot
expect_error "enable name=posix/io/sync/fsync,failinfo=5" "fsync" snapshot

# Short writes: pwrite returns fewer bytes than asked; the store must write the rest.
before=${#acked[@]}
create alice -c "enable name=posix/io/rw/pwrite/reduce"
[ "$last_rc" -eq 0 ] || fail "short writes made create fail: $last_err"
verify alice "short writes"
[ "${#acked[@]}" -eq $((before + 1)) ] && echo "ok: short writes are completed"

# Random faults in any POSIX I/O call.
crashes=0 errors=0 successes=0
for i in $(seq 1 60); do
  create "chaos" -c "enable_random name=posix/io/*,probability=0.03,failinfo=5"
  case "$last_rc" in
    0) successes=$((successes + 1)) ;;
    1) errors=$((errors + 1)) ;;
    *) crashes=$((crashes + 1)); fail "random faults run $i ended with exit $last_rc: $last_err" ;;
  esac
  if [ $((i % 20)) -eq 0 ]; then
    "$bin" "$dir" snapshot >/dev/null 2>&1 || fail "clean snapshot after random faults failed"
  fi
done
verify chaos "random faults"
verify alice "random faults"
echo "random faults: $successes runs succeeded, $errors failed cleanly with an error, $crashes crashed"
echo "${#acked[@]} acknowledged sessions checked, $failures failures"
[ "$failures" -eq 0 ]
