#!/usr/bin/env bash
# Fails when any C++ source differs from .clang-format (Debian's clang-format, --dry-run -Werror).
# Run by scripts/test.sh; fix with: clang-format -i $(git ls-files '*.cpp' '*.hpp')
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t sources < <(find lib cli tests bench fuzz examples \( -name '*.cpp' -o -name '*.hpp' \) -not -path '*/corpus/*' | sort)
if ! clang-format --dry-run -Werror "${sources[@]}"; then
  echo "check-format: the files above differ from .clang-format (clang-format -i FILE)" >&2
  exit 1
fi
echo "check-format: ${#sources[@]} files follow .clang-format"
