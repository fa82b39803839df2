#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to the whole test suite: installs dependencies,
# builds the real sample snapshots the tests assert against, builds, and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash samples/build-samples.sh
bash scripts/build.sh
build_dir=${VMI_BUILD_DIR:-build}
ctest --test-dir "$build_dir" --output-on-failure
