#!/usr/bin/env bash
# `tidemark protect` (tap + journal) next to nbdkit's file plugin serving a
# volume of the same size, same client (fio's nbd engine), same run
# (issues #3 and #6): 4 KiB random writes at QD 32 and 1 MiB sequential
# writes, each sustained for --seconds, rounds alternating the two servers.
#
#   bench/tap_vs_nbdkit.sh BUILD [--seconds S] [--rounds R] [--size-mib N]
# Prints a markdown table on stdout. Work files in $BENCH_WORK (BUILD/bench-work).
set -euo pipefail
build=$1; shift
seconds=30 rounds=3 size_mib=1024
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --size-mib) size_mib=$2; shift 2 ;;
    *) echo "tap_vs_nbdkit.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
for t in fio nbdkit; do command -v $t >/dev/null || { echo "tap_vs_nbdkit.sh: $t is missing" >&2; exit 1; }; done
tm=$(readlink -f "$build/tools/tidemark")
work=$(readlink -f "${BENCH_WORK:-$build/bench-work}")/tap
rm -rf "$work"; mkdir -p "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

start_tidemark() {
  rm -rf "$work/journal" "$work/vol.img" "$work/tm.sock"
  truncate -s "${size_mib}M" "$work/vol.img"
  "$tm" protect --volume "$work/vol.img" --journal "$work/journal" --listen "unix:$work/tm.sock" \
    --name vol >"$work/protect.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do [ -S "$work/tm.sock" ] && return; sleep 0.1; done
  echo "protect did not start" >&2; cat "$work/protect.log" >&2; exit 1
}
start_nbdkit() {
  rm -f "$work/kit.img" "$work/kit.sock"
  truncate -s "${size_mib}M" "$work/kit.img"
  nbdkit --exit-with-parent -f -U "$work/kit.sock" file "$work/kit.img" &
  pids+=($!)
  for _ in $(seq 100); do [ -S "$work/kit.sock" ] && return; sleep 0.1; done
  echo "nbdkit did not start" >&2; exit 1
}
stop_all() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }

# fio with the nbd engine; prints IOPS and MB/s of the write side.
run_fio() {  # socket rw bs iodepth
  fio --name=w --ioengine=nbd --uri="nbd+unix:///?socket=$1" --rw="$2" --bs="$3" \
    --iodepth="$4" --size="${size_mib}M" --time_based --runtime="$seconds" --ramp_time=2 \
    --output-format=json --output="$work/fio.json" >/dev/null 2>&1
  python3 -c "import json; w=json.load(open('$work/fio.json'))['jobs'][0]['write']; print(w['iops'], w['bw_bytes']/1e6)"
}

declare -A R
for r in $(seq 1 "$rounds"); do
  for wl in "randwrite 4k 32" "write 1m 8"; do
    set -- $wl
    start_tidemark; t=$(run_fio "$work/tm.sock" $1 $2 $3); stop_all
    start_nbdkit; k=$(run_fio "$work/kit.sock" $1 $2 $3); stop_all
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
