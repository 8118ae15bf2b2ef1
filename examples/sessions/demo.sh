#!/usr/bin/env bash
# The sessions demo: every line below is a separate process opening the same store directory,
# so whatever the later lines see has survived a process exit. Usage: demo.sh SESSIONS_BINARY DIR
set -euo pipefail
bin=$1 dir=$2
run() { echo "\$ sessions $dir $*"; "$bin" "$dir" "$@"; }

echo "== state left by earlier runs of this demo (it survives between runs) =="
run stats
echo
echo "== create two sessions for alice and one for bob =="
echo "\$ sessions $dir create alice 3600"
token=$("$bin" "$dir" create alice 3600)
echo "$token"
run create alice 1
run create bob 600
echo
echo "== touch alice's first session, then list her sessions =="
run touch "$token"
run list alice
echo
echo "== wait for the 1-second session to pass its expiry, then expire old sessions =="
sleep 1.1
run expire
run list alice
echo
echo "== revoke the touched session and take a snapshot =="
run revoke "$token"
run snapshot
run stats
echo
echo "files in $dir:"
ls -l "$dir"
echo
echo "== the store keeps only each token's SHA-256: alice's token is in none of its files =="
if grep -rqF "$token" "$dir"; then echo "token $token found in $dir" >&2; exit 1; fi
grep -rlF "$(printf %s "$token" | sha256sum | cut -c1-64)" "$dir" | sed 's/^/its hash is in /' || true
