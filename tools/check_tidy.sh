#!/usr/bin/env bash
# Runs clang-tidy (the bug-finding checks in .clang-tidy) over the project's own compiled code:
# the library and its parts (replication, HA, testing), the examples and the prevalent tool
# (not test/, bench/ or subprojects/).
# Usage: check_tidy.sh BUILD_DIR. Skips (exit 77) when clang-tidy is not installed.
set -u
build=$1
cd "$(dirname "$0")/.."
command -v clang-tidy >/dev/null || { echo "clang-tidy not installed: skipped"; exit 77; }
# One clang-tidy per few files on every core: meson runs this test alone (is_parallel false),
# and a single process left the other core idle for minutes of CI.
out=$(printf '%s\n' lib/*.cpp lib/repl/*.cpp lib/ha/*.cpp lib/testing/*.cpp examples/*/*.cpp \
  tools/prevalent/*.cpp |
  xargs -P "$(nproc)" -n 4 clang-tidy -p "$build" --quiet 2>&1)
warnings=$(printf '%s\n' "$out" | grep -E '(warning|error):' | grep -v '^/usr/')
if [ -n "$warnings" ]; then
  printf '%s\n' "$out"
  exit 1
fi
echo "clang-tidy: no findings"
