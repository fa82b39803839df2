#!/usr/bin/env bash
# Configures and builds into build/ (or $VMI_BUILD_DIR) with every core; shared by demo and tests.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${VMI_BUILD_DIR:-build}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=${CMAKE_BUILD_TYPE:-RelWithDebInfo} "$@" >/dev/null
cmake --build "$build_dir" -j "$(nproc)"
