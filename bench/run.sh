#!/usr/bin/env bash
# Runs every Google Benchmark program under BUILD_DIR/bench and prints its
# output. Called by `make bench` as: bench/run.sh BUILD_DIR [--quick]
#   --quick   smoke run: --benchmark_min_time=0.01 and TM_BENCH_QUICK=1
#             (benchmarks that size their own work divide it by 8).
# Exits non-zero when a benchmark program fails.
set -euo pipefail

usage() { echo "usage: $0 BUILD_DIR [--quick]" >&2; exit 2; }
[[ $# -ge 1 && $# -le 2 ]] || usage
build_dir=$1
quick=0
if [[ $# -eq 2 ]]; then
  [[ $2 == --quick ]] || usage
  quick=1
fi
[[ -d $build_dir/bench ]] || { echo "$0: no $build_dir/bench (build first)" >&2; exit 1; }

args=()
if (( quick )); then
  args+=(--benchmark_min_time=0.01)
  export TM_BENCH_QUICK=1
fi

shopt -s nullglob
found=0
failed=0
for exe in "$build_dir"/bench/*_bench; do
  [[ -f $exe && -x $exe ]] || continue
  found=1
  echo "== $(basename "$exe")"
  if ! "$exe" "${args[@]}"; then
    echo "$0: $(basename "$exe") failed" >&2
    failed=1
  fi
done
(( found )) || echo "$0: no benchmark programs in $build_dir/bench (is libbenchmark-dev installed?)" >&2

# End-to-end comparisons (shell scripts beside this one).
here=$(dirname "$0")
echo "== restore_vs_cp"
if (( quick )); then
  "$here/restore_vs_cp.sh" "$build_dir" --size-mib 64 --rounds 1 || failed=1
else
  "$here/restore_vs_cp.sh" "$build_dir" || failed=1
fi
echo "== tap_vs_nbdkit"
if (( quick )); then
  "$here/tap_vs_nbdkit.sh" "$build_dir" --seconds 2 --rounds 1 --size-mib 256 || failed=1
else
  "$here/tap_vs_nbdkit.sh" "$build_dir" || failed=1
fi
echo "== mount_vs_nbdkit"
if (( quick )); then
  "$here/mount_vs_nbdkit.sh" "$build_dir" --seconds 2 --rounds 1 --size-mib 64 || failed=1
else
  "$here/mount_vs_nbdkit.sh" "$build_dir" || failed=1
fi
echo "== remote_vs_protect"
if (( quick )); then
  "$here/remote_vs_protect.sh" "$build_dir" --seconds 2 --rounds 1 --size-mib 256 || failed=1
else
  "$here/remote_vs_protect.sh" "$build_dir" || failed=1
fi
echo "== drills_ingest"
if (( quick )); then
  "$here/drills_ingest.sh" "$build_dir" --seconds 2 --rounds 1 --size-mib 128 || failed=1
else
  "$here/drills_ingest.sh" "$build_dir" || failed=1
fi
exit "$failed"
