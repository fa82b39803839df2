#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to the whole test suite: installs dependencies,
# builds the real sample snapshots the tests assert against, then builds and runs every test
# twice: a normal build, and one under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/check-format.sh
bash samples/build-samples.sh
build_dir=${VMI_BUILD_DIR:-build}
VMI_BUILD_DIR=$build_dir bash scripts/build.sh
ctest --test-dir "$build_dir" --output-on-failure
VMI_BUILD_DIR=$build_dir bash scripts/check-bench.sh
sanitized_dir=${build_dir}-sanitize
VMI_BUILD_DIR=$sanitized_dir bash scripts/build.sh -DVMI_SANITIZE=ON -DVMI_BUILD_BENCH=OFF
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir "$sanitized_dir" --output-on-failure
