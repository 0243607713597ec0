#!/usr/bin/env bash
# `tidemark protect` (tap + journal) next to nbdkit's file plugin serving a
# volume of the same size, same client (fio's nbd engine), same run
# (issues #3 and #6): 4 KiB random writes at QD 32 and 1 MiB sequential
# writes, each sustained for --seconds, rounds alternating the two servers.
#
#   bench/tap_vs_nbdkit.sh BUILD [--seconds S] [--rounds R] [--size-mib N]
# Prints a markdown table on stdout. Work files in $BENCH_WORK (BUILD/bench-work).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
seconds=30 rounds=3 size_mib=1024
bench_options tap_vs_nbdkit.sh seconds rounds size_mib -- "$@"
bench_requires fio nbdkit
bench_setup tap

# fio with the nbd engine; prints IOPS and MB/s of the write side.
run_fio() {  # socket rw bs iodepth
  fio_nbd "$1" "$work/fio.json" --rw="$2" --bs="$3" --iodepth="$4" --size="${size_mib}M" \
    --time_based --runtime="$seconds" --ramp_time=2
  fio_get "$work/fio.json" write iops mbps
}

declare -A R
for r in $(seq 1 "$rounds"); do
  for wl in "randwrite 4k 32" "write 1m 8"; do
    set -- $wl
    rm -rf "$work/journal"; new_volume "$work/vol.img"
    start_protect "$work"; t=$(run_fio "$work/p.sock" $1 $2 $3); stop_pids
    new_volume "$work/kit.img"
    start_nbdkit "$work/kit.img" "$work/kit.sock"; k=$(run_fio "$work/kit.sock" $1 $2 $3); stop_pids
    R[$1]+="$t:$k;"
    echo "round $r $1 $2: tidemark $t, nbdkit $k" >&2
  done
done

python3 - "$seconds" "$size_mib" "${R[randwrite]}" "${R[write]}" <<'PY'
import statistics, sys
from benchlib import result
secs, size = sys.argv[1], sys.argv[2]
print(f"fio nbd engine, {secs} s per run after 2 s ramp, {size} MiB volume, one job; tidemark = `protect` (journal codec zstd, every write recorded before the backing).\n")
print("| workload | tidemark | nbdkit file | ratio tidemark/nbdkit min / median / max |")
print("|---|---|---|---|")
for name, data, unit, idx, goal in (("4 KiB random write, QD 32", sys.argv[3], "IOPS", 0, ">= 0.8"), ("1 MiB sequential write, QD 8", sys.argv[4], "MB/s", 1, ">= 0.7")):
    pairs = []
    for p in filter(None, data.split(";")):
        t, k = p.split(":")
        pairs.append((float(t.split()[idx]), float(k.split()[idx])))
    ratios = sorted(t / k for t, k in pairs)
    mt = statistics.median(t for t, _ in pairs); mk = statistics.median(k for _, k in pairs)
    print(f"| {name} | {mt:,.0f} {unit} | {mk:,.0f} {unit} | {ratios[0]:.2f} / {statistics.median(ratios):.2f} / {ratios[-1]:.2f} |")
    result(f"tap (`protect`) {name}, journaling on", f"{mt:,.0f} {unit}", f"nbdkit file {mk:,.0f} {unit}", ratios, goal, "-")
PY
