#!/usr/bin/env bash
# Compiles one file that must not compile and checks that the first error is the readable
# message its "// expect:" line names. Usage: run.sh INCLUDE_DIR FILE CXX [ARGS...]
# (the compiler's whole command: meson's may be `ccache c++`).
set -u
inc=$1 file=$2
shift 2
expect=$(sed -n 's|^// expect: ||p' "$file")
out=$("$@" -std=c++20 -fsyntax-only -I "$inc" "$file" 2>&1)
if [ $? -eq 0 ]; then
  echo "FAIL: $file compiled, but it must not"
  exit 1
fi
first=$(printf '%s\n' "$out" | grep -m1 'error:')
if ! printf '%s\n' "$first" | grep -qF -- "$expect"; then
  echo "FAIL: first error of $file is not the expected message"
  echo "expected: $expect"
  echo "first error: $first"
  exit 1
fi
echo "ok: $first"
