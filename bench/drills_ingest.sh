#!/usr/bin/env bash
# Ingest while drills read (issue #5): 4 KiB random writes through `protect` alone, then with
# two drills (writable virtual snapshots of a bookmark, `tidemark drill start`) each read by
# fio at the same time, same client (fio's nbd engine), rounds back to back. The ratio of
# write IOPS with the drills to write IOPS alone is computed per round (goal >= 0.8), for
# each drill read rate in --drill-rates: 0 = unthrottled (each drill's fio reads at QD 16
# as fast as it can: the worst case), N = each drill reads N 4 KiB IOPS (fio --rate_iops;
# 2000 IOPS = 8 MB/s, about what a booting VM reads).
#
#   bench/drills_ingest.sh BUILD [--seconds S] [--rounds R] [--size-mib N] [--drill-rates "0 2000"]
# Prints a markdown table on stdout; work files in $BENCH_WORK (BUILD/bench-work).
set -euo pipefail
build=$1; shift
seconds=15 rounds=3 size_mib=1024 rates="0 2000"
while [ $# -gt 0 ]; do
  case $1 in
    --drill-rates) rates=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --size-mib) size_mib=$2; shift 2 ;;
    *) echo "drills_ingest.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
command -v fio >/dev/null || { echo "drills_ingest.sh: fio is missing" >&2; exit 1; }
tm=$(readlink -f "$build/tools/tidemark")
work=$(readlink -f "${BENCH_WORK:-$build/bench-work}")/drills
rm -rf "$work"; mkdir -p "$work"
pids=() drills=()
cleanup() {
  for d in "${drills[@]}"; do "$tm" drill stop --journal "$work/journal" "$d" >/dev/null 2>&1 || true; done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null; rm -rf "$work"
}
trap cleanup EXIT
wait_sock() {  # SOCK LOG
  for _ in $(seq 300); do [ -S "$1" ] && return; sleep 0.1; done
  echo "no server on $1" >&2; cat "$2" >&2; exit 1
}
fio_json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(round(d['jobs'][0][sys.argv[2]]['iops']))" "$@"; }

truncate -s "${size_mib}M" "$work/vol.img"
"$tm" protect --volume "$work/vol.img" --journal "$work/journal" --listen "unix:$work/p.sock" \
  --name vol >"$work/protect.log" 2>&1 &
pids+=($!)
wait_sock "$work/p.sock" "$work/protect.log"
uri="nbd+unix:///vol?socket=$work/p.sock"
# The drills read a point with data: fill the volume (half-compressible), then bookmark it.
fio --name=fill --ioengine=nbd --uri="$uri" --rw=write --bs=1m --iodepth=8 --size="${size_mib}M" \
  --refill_buffers --buffer_compress_percentage=50 --output=/dev/null >/dev/null
"$tm" bookmark --journal "$work/journal" vol filled >/dev/null

write_run() {  # OUT: 4 KiB random writes through the tap for $seconds
  fio --name=w --ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k --iodepth=32 \
    --size="${size_mib}M" --time_based --runtime="$seconds" --refill_buffers \
    --buffer_compress_percentage=50 --output-format=json --output="$1" >/dev/null
}
declare -A RATIOS WITH READS
alone_all=()
for r in $(seq "$rounds"); do
  write_run "$work/alone.$r.json"
  alone=$(fio_json "$work/alone.$r.json" write)
  alone_all+=("$alone")
  for rate in $rates; do
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
      fio --name=r --ioengine=nbd --uri="nbd+unix:///vol?socket=$work/$d.sock" --rw=randread \
        --bs=4k --iodepth=16 --size="${size_mib}M" --time_based --runtime=$((seconds + 4)) \
        "${rate_args[@]}" --output-format=json --output="$work/$d.$r.json" >/dev/null &
      rpids+=($!)
    done
    sleep 2  # the readers are running before the writes start
    write_run "$work/with.$r.json"
    with=$(fio_json "$work/with.$r.json" write)
    for p in "${rpids[@]}"; do wait "$p"; done
    reads=$(( $(fio_json "$work/d1.$r.json" read) + $(fio_json "$work/d2.$r.json" read) ))
    for d in d1 d2; do "$tm" drill stop --journal "$work/journal" "$d-$r-$rate" >/dev/null; done
    RATIOS[$rate]+="$(python3 -c "print(f'{$with / $alone:.3f}')") "
    WITH[$rate]+="$with "
    READS[$rate]+="$reads "
    echo "round $r, drill rate ${rate:-0}: alone $alone, with drills $with write IOPS; drills read $reads IOPS" >&2
  done
done
args=()
for rate in $rates; do args+=("$rate|${RATIOS[$rate]}|${WITH[$rate]}|${READS[$rate]}"); done
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
