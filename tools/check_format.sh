#!/usr/bin/env bash
# Fails when a C++ file of the project does not follow .clang-format. Skips (exit 77, meson's
# "skipped") when clang-format is not installed.
set -u
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "clang-format not installed: skipped"; exit 77; }
files=$(git ls-files '*.cpp' '*.hpp' 2>/dev/null || find include lib examples test tools bench -name '*.[ch]pp')
clang-format --dry-run --Werror $files || { echo "run: clang-format -i \$(git ls-files '*.cpp' '*.hpp')"; exit 1; }
echo "$(echo $files | wc -w) files formatted"
