#!/usr/bin/env bash
# `tidemark mount` (a virtual snapshot read straight from the journal) next to
# nbdkit's file plugin serving the same point restored as a raw image, same
# client (fio's nbd engine), same run (issue #5): 4 KiB random reads and 1 MiB
# sequential reads, rounds alternating the two servers.
#
#   bench/mount_vs_nbdkit.sh BUILD [--seconds S] [--rounds R] [--size-mib N]
#                            [--readers "N..."] [--iodepth Q]
# --readers lists the mount's reader counts to measure (default "1 2"; 1
# serialises every read on one journal reader): one table row each.
# The volume is filled through `protect` by fio (1 MiB writes of half-compressible
# data, refilled for every write) and stays protected (idle) while the mount
# reads it, as in a drill. Prints a markdown table on stdout; work files in
# $BENCH_WORK (BUILD/bench-work).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
seconds=15 rounds=3 size_mib=1024 readers="1 2" iodepth=16
bench_options mount_vs_nbdkit.sh seconds rounds size_mib readers iodepth -- "$@"
bench_requires fio nbdkit
bench_setup mount

# The volume: filled through protect, then restored as the raw image nbdkit serves.
new_volume "$work/vol.img"
start_protect "$work"
nbd_export=vol fio_nbd "$work/p.sock" "$work/fill.json" --rw=write --bs=1m --iodepth=8 \
  --size="${size_mib}M" --refill_buffers --buffer_compress_percentage=50
"$tm" restore --journal "$work/journal" vol --latest --output "$work/restored.img" >/dev/null
cmp "$work/restored.img" "$work/vol.img" || { echo "restore differs from the volume" >&2; exit 1; }
journal_mib=$(du -sm "$work/journal" | cut -f1)

mount_pid=
start_mount() {  # READERS
  rm -f "$work/m.sock"
  "$tm" mount --journal "$work/journal" vol --latest --listen "unix:$work/m.sock" \
    --readers "$1" >"$work/mount.log" 2>&1 &
  mount_pid=$!
  pids+=("$mount_pid")
  wait_sock "$work/m.sock" "$work/mount.log" "$mount_pid"
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # user + system, all threads

# fio's nbd engine, one connection per job; prints IOPS, MB/s of the read side
# and the server's CPU time per request in microseconds (the machine may be
# shared: CPU per request is the steadier measure of the server's own cost).
run_fio() {  # server-pid socket rw bs iodepth jobs
  local c0 c1
  c0=$(cpu_ticks "$1")
  fio_nbd "$2" "$work/fio.json" --rw="$3" --bs="$4" --iodepth="$5" --numjobs="$6" \
    --group_reporting --size="${size_mib}M" --time_based --runtime="$seconds"
  c1=$(cpu_ticks "$1")
  python3 -c "import json, os; r=json.load(open('$work/fio.json'))['jobs'][0]['read']; print(r['iops'], r['bw_bytes']/1e6, ($c1 - $c0) / os.sysconf('SC_CLK_TCK') * 1e6 / r['total_ios'])"
}

# Workloads: name, fio rw, bs, iodepth, jobs (clients), unit.
workloads=(
  "4 KiB random read, QD $iodepth|randread|4k|$iodepth|1|IOPS"
  "4 KiB random read, 2 clients at QD $iodepth|randread|4k|$iodepth|2|IOPS"
  "1 MiB sequential read, QD 4|read|1m|4|1|MB/s"
)
: >"$work/results"
for r in $(seq 1 "$rounds"); do
  for w in "${workloads[@]}"; do
    IFS='|' read -r name rw bs qd jobs unit <<<"$w"
    start_nbdkit "$work/restored.img" "$work/k.sock" -r
    k=$(run_fio "$nbdkit_pid" "$work/k.sock" "$rw" "$bs" "$qd" "$jobs"); stop_pid "$nbdkit_pid"
    for n in $readers; do
      start_mount "$n"; t=$(run_fio "$mount_pid" "$work/m.sock" "$rw" "$bs" "$qd" "$jobs")
      stop_pid "$mount_pid"
      echo "$name|$n|$unit|$t|$k" >>"$work/results"
      echo "round $r $name, $n readers: mount $t, nbdkit $k" >&2
    done
  done
done

python3 - "$seconds" "$size_mib" "$journal_mib" "$work/results" <<'PY'
import collections, statistics, sys
from benchlib import result
secs, size, jmib, path = sys.argv[1:5]
print(f"fio nbd engine, {secs} s per run, {size} MiB volume filled through `protect` "
      f"(half-compressible data; journal {jmib} MiB, zstd); tidemark = `mount --latest --readers N` "
      f"while `protect` idles on the journal; nbdkit = `nbdkit -r file` on the restored raw image, "
      f"run just before the mounts of each round. Both warm in the page cache.\n")
print("| workload | readers | tidemark mount | nbdkit file | ratio mount/nbdkit min / median / max | server CPU per request, mount / nbdkit |")
print("|---|---|---|---|---|---|")
rows = collections.OrderedDict()
for line in open(path):
    name, n, unit, t, k = line.rstrip("\n").split("|")
    idx = 0 if unit == "IOPS" else 1
    t, k = t.split(), k.split()
    rows.setdefault((name, n, unit), []).append((float(t[idx]), float(k[idx]), float(t[2]), float(k[2])))
for (name, n, unit), runs in rows.items():
    ratios = sorted(t / k for t, k, _, _ in runs)
    mt = statistics.median(r[0] for r in runs); mk = statistics.median(r[1] for r in runs)
    ct = statistics.median(r[2] for r in runs); ck = statistics.median(r[3] for r in runs)
    print(f"| {name} | {n} | {mt:,.0f} {unit} | {mk:,.0f} {unit} | {ratios[0]:.2f} / {statistics.median(ratios):.2f} / {ratios[-1]:.2f} | {ct:,.1f} / {ck:,.1f} µs |")
    result(f"virtual snapshot (`mount --readers {n}`) {name}", f"{mt:,.0f} {unit}", f"nbdkit file on the restored image {mk:,.0f} {unit}",
           ratios, ">= 0.5" if unit == "IOPS" else None, "warm")
PY
