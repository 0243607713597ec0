#!/usr/bin/env bash
# Ingest while drills read (issue #5): 4 KiB random writes through `protect` alone, then with
# two drills (writable virtual snapshots of a bookmark, `tidemark drill start`) each read by
# fio at the same time, same client (fio's nbd engine), rounds back to back. The ratio of
# write IOPS with the drills to write IOPS alone is computed per round (goal >= 0.8).
#
#   bench/drills_ingest.sh BUILD [--seconds S] [--rounds R] [--size-mib N]
# Prints a markdown table on stdout; work files in $BENCH_WORK (BUILD/bench-work).
set -euo pipefail
build=$1; shift
seconds=15 rounds=3 size_mib=1024
while [ $# -gt 0 ]; do
  case $1 in
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
pids=()
cleanup() {
  for d in d1 d2; do "$tm" drill stop --journal "$work/journal" "$d" >/dev/null 2>&1 || true; done
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
ratios=() alone_all=() with_all=() reads_all=()
for r in $(seq "$rounds"); do
  write_run "$work/alone.$r.json"
  alone=$(fio_json "$work/alone.$r.json" write)
  for d in d1 d2; do
    rm -f "$work/$d.sock"
    "$tm" drill start --journal "$work/journal" vol --bookmark filled --name "$d-$r" \
      --listen "unix:$work/$d.sock" >"$work/$d.log" 2>&1 || { cat "$work/$d.log" >&2; exit 1; }
    wait_sock "$work/$d.sock" "$work/$d.log"
  done
  rpids=()
  for d in d1 d2; do
    fio --name=r --ioengine=nbd --uri="nbd+unix:///vol?socket=$work/$d.sock" --rw=randread \
      --bs=4k --iodepth=16 --size="${size_mib}M" --time_based --runtime=$((seconds + 4)) \
      --output-format=json --output="$work/$d.$r.json" >/dev/null &
    rpids+=($!)
  done
  sleep 2  # the readers are running before the writes start
  write_run "$work/with.$r.json"
  with=$(fio_json "$work/with.$r.json" write)
  for p in "${rpids[@]}"; do wait "$p"; done
  reads=$(( $(fio_json "$work/d1.$r.json" read) + $(fio_json "$work/d2.$r.json" read) ))
  for d in d1 d2; do "$tm" drill stop --journal "$work/journal" "$d-$r" >/dev/null; done
  ratios+=("$(python3 -c "print(f'{$with / $alone:.2f}')")")
  alone_all+=("$alone") with_all+=("$with") reads_all+=("$reads")
done
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mm=$(printf '%s\n' "${ratios[@]}" | sort -n | awk 'NR==1{min=$1} {max=$1; a[NR]=$1} END {printf "%s / %s / %s", min, a[int((NR+1)/2)], max}')
echo "Ingest with two drills reading (fio randread 4 KiB QD16 each) vs ingest alone, 4 KiB random"
echo "writes QD32 through \`protect\`, ${size_mib} MiB volume, ${seconds} s per run, ${rounds} rounds."
echo
echo "| write IOPS alone (median) | write IOPS with 2 drills (median) | drills' read IOPS (median, both) | ratio min / median / max | goal |"
echo "|---|---|---|---|---|"
echo "| $(med "${alone_all[@]}") | $(med "${with_all[@]}") | $(med "${reads_all[@]}") | $mm | >= 0.8 |"
python3 - "$(med "${alone_all[@]}")" "$(med "${with_all[@]}")" "$(med "${reads_all[@]}")" "${ratios[@]}" <<'PY'
import sys
from benchlib import result
alone, with_, reads = sys.argv[1:4]
result("ingest (4 KiB random write IOPS) while 2 drills read / ingest alone", f"{int(with_):,} IOPS with, {int(alone):,} alone",
       f"(absolute; drills read {int(reads):,} IOPS)", [float(x) for x in sys.argv[4:]], ">= 0.8", "warm")
PY
