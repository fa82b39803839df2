#!/usr/bin/env bash
# The benchmarks report honestly: on samples that are not there every row is FAILED (no time is
# printed for a failed run) and the program exits non-zero. Run by scripts/test.sh. Timings are
# not checked here (they belong to the benchmarks, run by hand: `vmi-bench --check`).
set -euo pipefail
cd "$(dirname "$0")/.."
bench_dir=${VMI_BUILD_DIR:-build}/bench
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# A samples list naming a sample that does not exist.
echo "no-such-sample" >"$scratch/samples.list"
: >"$scratch/recovery-samples.list"
: >"$scratch/lime-samples.list"
for run in "vmi-bench 1" "vmi-bench-formats no-such-sample" "vmi-bench-profiles 1" "vmi-bench-scan 1"; do
  program=${run%% *}
  status=0
  VMI_SAMPLES_DIR=$scratch "$bench_dir/$program" "${run#* }" >"$scratch/out" 2>"$scratch/err" || status=$?
  if [ "$status" -eq 0 ]; then
    echo "check-bench: $program exited 0 on a missing sample" >&2
    exit 1
  fi
  if ! grep -q FAILED "$scratch/out" "$scratch/err"; then
    echo "check-bench: $program printed no FAILED row for a missing sample" >&2
    cat "$scratch/out" "$scratch/err" >&2
    exit 1
  fi
  if grep -E "FAILED" "$scratch/out" | grep -Eq "[0-9]+(\.[0-9]+)? ?(ms|MiB)"; then
    echo "check-bench: $program printed a figure on a FAILED row" >&2
    exit 1
  fi
done
echo "check-bench: every program reports FAILED and exits non-zero on a missing sample"

