#!/usr/bin/env bash
# Runs every fuzz target built by fuzz/build.sh for N seconds each, one after another, and prints
# target, execs, execs/s, crashes (artifacts written), corpus size and libFuzzer's exit status.
#
#   bash fuzz/run.sh [seconds] [target...]     # default 60 s, all targets in build-fuzz/bin
#   RUNS=10000000 bash fuzz/run.sh 3600        # each target until 10 M execs or one hour
#
# Each target starts from fuzz/corpus/<target>/ (read-only) and grows a working corpus in
# $WORK/corpus/<target>/; crash, leak, timeout and OOM inputs land in $WORK/artifacts/<target>/.
# WORK (default ~/.cache/vmi-forensics/fuzz, outside the clone) keeps the grown corpora for
# later runs, and results.tsv there gets one line per target run (date, source, target, execs,
# seconds, crashes, exit status, peak RSS in MiB), so execs add up across sessions;
# `python3 fuzz/table.py --write` turns those lines into the table in fuzz/README.md. Exit status 0
# is a run that ended at its time or exec limit; anything else is a finding or a failure to run
# (see the log). A target stops at its first crash (libFuzzer's default): copy the artifact to
# fuzz/regressions/<target>/ and replay it with
#   build-fuzz/bin/<target> $WORK/artifacts/<target>/crash-...
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-$ROOT/build-fuzz}"
WORK="${WORK:-${XDG_CACHE_HOME:-$HOME/.cache}/vmi-forensics/fuzz}"
NICE="${NICE:-nice -n 10}"
SECONDS_EACH="${1:-60}"
RUNS="${RUNS:--1}"  # libFuzzer -runs: stop after this many execs (-1: no limit)
shift || true

# Longest input per target: enough for the seeds' structures, small enough to mutate quickly.
max_len() {
  case $1 in
    btf|system_map|objects) echo 16384 ;;
    convert_stream) echo 16384 ;;  # a few KiB of zstd can expand 32000-fold; keep each run short
    paging|pipeline|profile_recovery) echo 40960 ;;
    kallsyms) echo 32768 ;;
    kernel_objects) echo 4096 ;;  # patches to a laid-out kernel: a few records are enough
    *) echo 65536 ;;
  esac
}

targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  for t in "$OUT"/bin/*; do [[ -x $t ]] && targets+=("$(basename "$t")"); done
fi
if [[ ${#targets[@]} -eq 0 ]]; then
  echo "no targets in $OUT/bin: run fuzz/build.sh first" >&2
  exit 1
fi

rows=()
total_crashes=0
failed_runs=0
for t in "${targets[@]}"; do
  work="$WORK/corpus/$t" artifacts="$WORK/artifacts/$t" log="$WORK/logs/$t.log"
  mkdir -p "$work" "$artifacts" "$(dirname "$log")"
  seeds=()
  [[ -d $ROOT/fuzz/corpus/$t ]] && seeds+=("$ROOT/fuzz/corpus/$t")
  before=$(find "$artifacts" -type f | wc -l)
  echo "== $t: ${SECONDS_EACH}s or $RUNS runs, -max_len=$(max_len "$t")" >&2
  # Seeds are read from fuzz/corpus but new inputs are written only to the first directory.
  $NICE "$OUT/bin/$t" "$work" "${seeds[@]}" -max_total_time="$SECONDS_EACH" -runs="$RUNS" -rss_limit_mb=2048 \
    -max_len="$(max_len "$t")" -timeout=25 -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1
  rc=$?
  [[ $rc -ne 0 ]] && failed_runs=$((failed_runs + 1))
  execs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
  rate=$(grep -m1 'stat::average_exec_per_sec' "$log" | awk '{print $2}')
  seconds=$(grep -m1 'Done [0-9]* runs in' "$log" | awk '{print $5}')
  rss=$(grep -m1 'stat::peak_rss_mb' "$log" | awk '{print $2}')
  crashes=$(( $(find "$artifacts" -type f | wc -l) - before ))
  total_crashes=$((total_crashes + crashes))
  corpus=$(find "$work" -type f | wc -l)
  rows+=("$t ${execs:-?} ${rate:-?} $crashes $corpus $rc")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$(cat "$OUT/built-from" 2>/dev/null || echo unknown)" \
    "$t" "${execs:-?}" "${seconds:-?}" "$crashes" "$rc" "${rss:-?}" >>"$WORK/results.tsv"
done

printf '%-26s %12s %9s %8s %8s %4s\n' target execs execs/s crashes corpus rc
for row in "${rows[@]}"; do printf '%-26s %12s %9s %8s %8s %4s\n' $row; done
echo "logs: $WORK/logs/   artifacts: $WORK/artifacts/   results: $WORK/results.tsv"
[[ $total_crashes -eq 0 && $failed_runs -eq 0 ]]
