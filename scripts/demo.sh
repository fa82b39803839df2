#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a process list: installs dependencies, builds,
# makes the real sample snapshots (first run: a few minutes) and runs pslist on one.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
bash samples/build-samples.sh
samples=${VMI_SAMPLES_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vmi-forensics/samples}
sample=$(head -n 1 "$samples/samples.list")
build_dir=${VMI_BUILD_DIR:-build}
"$build_dir/cli/vmi-forensics" info "$samples/$sample/memory.raw"
echo
"$build_dir/cli/vmi-forensics" pslist "$samples/$sample/memory.raw"
