#!/usr/bin/env bash
# Ingest while drills read (issue #5): 4 KiB random writes through `protect` alone, then with
# two drills (writable virtual snapshots of a bookmark, `tidemark drill start`) each read by
# fio at the same time, same client (fio's nbd engine), rounds back to back. The ratio of
# write IOPS with the drills to write IOPS alone is computed per round (goal >= 0.8), for
# each drill read rate in --drill-rates: 0 = unthrottled (each drill's fio reads at QD 16
# as fast as it can: the worst case), N = each drill reads N 4 KiB IOPS (fio --rate_iops;
# 2000 IOPS = 8 MB/s, about what a booting VM reads). Every write run starts --settle
# seconds after the previous one ended, so that it does not pay for the flushes and
# compactions the previous run left behind (the runs with drills always come second).
#
#   bench/drills_ingest.sh BUILD [--seconds S] [--rounds R] [--size-mib N] [--drill-rates "0 2000"]
#                          [--settle S]
# Prints a markdown table on stdout; work files in $BENCH_WORK (BUILD/bench-work).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
seconds=15 rounds=3 size_mib=1024 drill_rates="0 2000" settle=15
bench_options drills_ingest.sh drill_rates seconds rounds size_mib settle -- "$@"
bench_requires fio
bench_setup drills
drills=()
bench_cleanup_hook() {
  local d
  for d in "${drills[@]}"; do "$tm" drill stop --journal "$work/journal" "$d" >/dev/null 2>&1 || true; done
}

new_volume "$work/vol.img"
start_protect "$work"
nbd_export=vol  # fio_nbd: protect and the drills name their export
# The drills read a point with data: fill the volume (half-compressible), then bookmark it.
fio_nbd "$work/p.sock" /dev/null --rw=write --bs=1m --iodepth=8 --size="${size_mib}M" \
  --refill_buffers --buffer_compress_percentage=50
"$tm" bookmark --journal "$work/journal" vol filled >/dev/null

write_run() {  # OUT: 4 KiB random writes through the tap for $seconds
  fio_nbd "$work/p.sock" "$1" --rw=randwrite --bs=4k --iodepth=32 --size="${size_mib}M" \
    --time_based --runtime="$seconds" --refill_buffers --buffer_compress_percentage=50
}
declare -A RATIOS WITH READS
alone_all=()
for r in $(seq "$rounds"); do
  sleep "$settle"
  write_run "$work/alone.$r.json"
  alone=$(fio_get "$work/alone.$r.json" write iops_int)
  alone_all+=("$alone")
  for rate in $drill_rates; do
    sleep "$settle"
    for d in d1 d2; do
      rm -f "$work/$d.sock"
      drills+=("$d-$r-$rate")
      "$tm" drill start --journal "$work/journal" vol --bookmark filled --name "$d-$r-$rate" \
        --listen "unix:$work/$d.sock" >"$work/$d.log" 2>&1 || { cat "$work/$d.log" >&2; exit 1; }
      wait_sock "$work/$d.sock" "$work/$d.log"
    done
    rate_args=()
    (( rate > 0 )) && rate_args=(--rate_iops="$rate")
    rpids=()
    for d in d1 d2; do
      fio_nbd "$work/$d.sock" "$work/$d.$r.json" --rw=randread --bs=4k --iodepth=16 \
        --size="${size_mib}M" --time_based --runtime=$((seconds + 4)) "${rate_args[@]}" &
      rpids+=($!)
    done
    sleep 2  # the readers are running before the writes start
    write_run "$work/with.$r.json"
    with=$(fio_get "$work/with.$r.json" write iops_int)
    for p in "${rpids[@]}"; do wait "$p"; done
    reads=$(( $(fio_get "$work/d1.$r.json" read iops_int) + $(fio_get "$work/d2.$r.json" read iops_int) ))
    for d in d1 d2; do "$tm" drill stop --journal "$work/journal" "$d-$r-$rate" >/dev/null; done
    RATIOS[$rate]+="$(python3 -c "print(f'{$with / $alone:.3f}')") "
    WITH[$rate]+="$with "
    READS[$rate]+="$reads "
    echo "round $r, drill rate ${rate:-0}: alone $alone, with drills $with write IOPS; drills read $reads IOPS" >&2
  done
done
args=()
for rate in $drill_rates; do args+=("$rate|${RATIOS[$rate]}|${WITH[$rate]}|${READS[$rate]}"); done
python3 - "$size_mib" "$seconds" "$rounds" "${alone_all[*]}" "${args[@]}" <<'PY'
import statistics, sys
from benchlib import result, spread
size, secs, rounds, alone = sys.argv[1:5]
alone = statistics.median(float(x) for x in alone.split())
print(f"Ingest with two drills reading (fio randread 4 KiB QD 16 each, through `drill start` mounts of a "
      f"bookmark) against ingest alone: fio 4 KiB random writes QD 32 through `protect`, {size} MiB volume, "
      f"{secs} s per run, {rounds} rounds; write IOPS alone (median) {alone:,.0f}.\n")
print("| drills' read rate | write IOPS with 2 drills (median) | drills' read IOPS (median, both) | ratio min / median / max | goal |")
print("|---|---|---|---|---|")
for arg in sys.argv[5:]:
    rate, ratios, with_, reads = arg.split("|")
    ratios = [float(x) for x in ratios.split()]
    w = statistics.median(float(x) for x in with_.split())
    rd = statistics.median(float(x) for x in reads.split())
    label = "unthrottled" if rate == "0" else f"{int(rate):,} IOPS each (a VM boot)"
    print(f"| {label} | {w:,.0f} | {rd:,.0f} | " + "{:.2f} / {:.2f} / {:.2f}".format(*spread(ratios)) + " | ≥ 0.8 |")
    result(f"ingest (4 KiB random write IOPS) while 2 drills read, {label} / ingest alone",
           f"{w:,.0f} IOPS with, {alone:,.0f} alone", f"(absolute; drills read {rd:,.0f} IOPS)", ratios, ">= 0.8", "warm")
PY
