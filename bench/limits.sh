#!/usr/bin/env bash
# The machine's physical limits, the yardstick for the comparisons (issue #6):
# fio writing a file in $BENCH_WORK with O_DIRECT (io_uring engine, no page
# cache): 4 KiB random writes at QD 32 and 1 MiB sequential writes at QD 16,
# each run --seconds long, then fdatasync. The memcpy bandwidth is in the
# micro-benchmarks (journal_ingest_bench BM_Memcpy).
#
#   bench/limits.sh BUILD [--seconds S] [--rounds R] [--size-mib N]
# Prints a markdown section on stdout.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
seconds=15 rounds=3 size_mib=4096
bench_options limits.sh seconds rounds size_mib -- "$@"
bench_requires fio
bench_setup limits

run_fio() {  # rw bs iodepth -> "IOPS MB/s"
  fio --name=raw --filename="$work/raw" --ioengine=io_uring --direct=1 --rw="$1" --bs="$2" \
    --iodepth="$3" --size="${size_mib}M" --time_based --runtime="$seconds" --ramp_time=2 \
    --end_fsync=1 --output-format=json --output="$work/fio.json" >/dev/null
  fio_get "$work/fio.json" write iops mbps
}
R4="" R1=""
for r in $(seq 1 "$rounds"); do
  x=$(run_fio randwrite 4k 32); R4+="$x;"
  y=$(run_fio write 1m 16); R1+="$y;"
  echo "round $r: 4 KiB random $x, 1 MiB sequential $y (IOPS MB/s)" >&2
done
fs=$(df -T "$work" | awk 'NR==2 {print $2 " on " $1}')
python3 - "$seconds" "$size_mib" "$fs" "$R4" "$R1" <<'PY'
import sys
from benchlib import result, spread
secs, size, fs, r4, r1 = sys.argv[1:6]
print(f"fio, io_uring engine, O_DIRECT, one job, a {size} MiB file on {fs}, {secs} s per run after a 2 s ramp. "
      "No CDP engine can write durably faster than this device; nbdkit's file plugin in the comparisons "
      "writes into the page cache, which can be faster than the device for as long as memory lasts.\n")
print("| workload | min / median / max |")
print("|---|---|")
for name, data, idx, unit in (("4 KiB random write, QD 32", r4, 0, "IOPS"), ("1 MiB sequential write, QD 16", r1, 1, "MB/s")):
    v = [float(x.split()[idx]) for x in data.split(";") if x]
    lo, med, hi = spread(v)
    print(f"| {name} | {lo:,.0f} / {med:,.0f} / {hi:,.0f} {unit} |")
    result(f"physical limit: the disk, O_DIRECT {name}", f"{med:,.0f} {unit}", "(absolute)", v, None, "-")
PY
