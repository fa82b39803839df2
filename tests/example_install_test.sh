#!/usr/bin/env bash
# Installs the library into a scratch prefix, builds examples/ against it with
# find_package(vmi_forensics), and checks the example lists exactly the guest's processes.
set -euo pipefail
build_dir=$1
source_dir=$2
prefix=$build_dir/example-install
rm -rf "$prefix" "$build_dir/example-build"
cmake --install "$build_dir" --prefix "$prefix" >/dev/null
cmake -S "$source_dir/examples" -B "$build_dir/example-build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$build_dir/example-build" >/dev/null

samples=${VMI_SAMPLES_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vmi-forensics/samples}
sample=$(head -n 1 "$samples/samples.list")
# The installed copy finds its installed profiles by itself: no profile argument. The truth
# leaves out a workqueue worker's volatile "-desc" suffix (samples/README.md); so does the diff.
VMI_CACHE_DIR=$build_dir/example-cache "$build_dir/example-build/list_processes" "$samples/$sample/memory.raw" \
  | sed -E 's/^([0-9]+\t[0-9]+\tkworker\/[^-+]*)[-+].*/\1/' | sort -n > "$build_dir/example-output.tsv"
tail -n +2 "$samples/$sample/truth/processes.tsv" | awk -F'\t' -v OFS='\t' '{print $1, $2, $9}' | sort -n \
  > "$build_dir/example-expected.tsv"
diff "$build_dir/example-expected.tsv" "$build_dir/example-output.tsv"
echo "example lists $(wc -l < "$build_dir/example-output.tsv") processes, equal to the guest's /proc"
