#!/usr/bin/env bash
# Ingest into a journal holding a long history next to ingest into an empty
# journal (issue #6): the same client (fio's nbd engine, 4 KiB random writes,
# QD 32, half-compressible data) writes through `tidemark protect` for
# --seconds, once into a fresh journal and once into a journal that already
# holds --history-gib GiB of writes (1 MiB sequential passes over the volume,
# written through `protect` before the rounds). Rounds alternate the two; the
# history journal keeps its history (and grows) across rounds.
#
#   bench/history_ingest.sh BUILD [--history-gib G] [--seconds S] [--rounds R] [--size-mib N]
# Needs about G/2 + 2 x N/1024 GiB free in $BENCH_WORK (default BUILD/bench-work).
# Prints a markdown section on stdout; progress on stderr.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
history_gib=20 seconds=30 rounds=3 size_mib=4096
bench_options history_ingest.sh history_gib seconds rounds size_mib -- "$@"
bench_requires fio python3
bench_setup history
now() { date +%s.%N; }
nbd_export=vol  # fio_nbd

fio_run() {  # DIR OUT: 4 KiB random writes for $seconds, prints IOPS
  fio_nbd "$1/p.sock" "$2" --rw=randwrite --bs=4k --iodepth=32 --size="${size_mib}M" \
    --time_based --runtime="$seconds" --ramp_time=2 --refill_buffers --buffer_compress_percentage=50
  fio_get "$2" write iops_int
}

# The history: passes of 1 MiB sequential writes until history_gib GiB were written.
hist=$work/hist
mkdir -p "$hist"
truncate -s "${size_mib}M" "$hist/vol.img"
history_mib=$(python3 -c "print(int(float('$history_gib') * 1024))")
echo "writing ${history_mib} MiB of history through protect (${size_mib} MiB volume)..." >&2
start_protect "$hist"
t0=$(now)
fio_nbd "$hist/p.sock" /dev/null --rw=write --bs=1m --iodepth=8 --size="${size_mib}M" \
  --io_size="${history_mib}M" --refill_buffers --buffer_compress_percentage=50
fill_s=$(python3 -c "print($(now) - $t0)")
stop_protect
hist_bytes=$(du -sb --exclude='LOG*' "$hist/journal" | cut -f1)
echo "history written in ${fill_s%.*} s; journal $((hist_bytes >> 20)) MiB" >&2

R=""
for r in $(seq 1 "$rounds"); do
  fresh=$work/fresh
  rm -rf "$fresh"; mkdir -p "$fresh"; truncate -s "${size_mib}M" "$fresh/vol.img"
  start_protect "$fresh"; e=$(fio_run "$fresh" "$work/e.json"); stop_protect
  rm -rf "$fresh"
  start_protect "$hist"; h=$(fio_run "$hist" "$work/h.json"); stop_protect
  R+="$e:$h;"
  echo "round $r: empty journal $e IOPS, with history $h IOPS" >&2
done

python3 - "$history_mib" "$size_mib" "$seconds" "$fill_s" "$hist_bytes" "$R" <<'PY'
import statistics, sys
from benchlib import result, spread
hist_mib, size, secs, fill_s, hist_bytes, data = sys.argv[1:7]
runs = [tuple(map(float, x.split(":"))) for x in data.split(";") if x]
ratios = [h / e for e, h in runs]
lo, med, hi = spread(ratios)
me = statistics.median(e for e, _ in runs); mh = statistics.median(h for _, h in runs)
print(f"`protect`, {size} MiB volume, fio nbd engine 4 KiB random writes QD 32 (half-compressible), "
      f"{secs} s per run after a 2 s ramp. History: {int(hist_mib) / 1024:.1f} GiB written as 1 MiB sequential "
      f"passes in {float(fill_s):.0f} s; journal {int(hist_bytes) / 2**30:.1f} GiB on disk before the rounds. "
      "Each round: a fresh journal, then the history journal (reopened by a new `protect`).\n")
print("| empty journal (median) | journal with history (median) | ratio history / empty min / median / max | goal |")
print("|---|---|---|---|")
print(f"| {me:,.0f} IOPS | {mh:,.0f} IOPS | {lo:.2f} / {med:.2f} / {hi:.2f} | ≥ 0.8 |")
result(f"ingest with {int(hist_mib) / 1024:.1f} GiB of history / into an empty journal (4 KiB random write IOPS)",
       f"{mh:,.0f} IOPS with history", f"(absolute; empty journal {me:,.0f} IOPS)", ratios, ">= 0.8", "-")
PY
