#!/usr/bin/env bash
# Where the tap's time goes (issue #6, item 4): `tidemark protect` runs under
# `perf record` (every thread, io_uring workers included, call graphs by DWARF
# unwinding) while fio's nbd engine writes through it; every sample is then
# charged to one stage by the innermost frame of its call chain that names one
# (bench/profile_stages.py): NBD (request parsing and the socket), tap (queues,
# the record thread), CRC32C, compression (zstd and the incompressibility
# test), RocksDB (memtable, WAL, flush, compaction, with the kernel work under
# them), backing write (io_uring and the kernel's page-cache writes under it).
# Reported as CPU nanoseconds per byte written, per stage.
#
#   bench/profile_tap.sh BUILD [--seconds S] [--rounds R] [--size-mib N]
# Needs perf (Debian package linux-perf) and root or perf_event_paranoid <= 1.
# Prints a markdown section on stdout.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
seconds=10 rounds=2 size_mib=1024
bench_options profile_tap.sh seconds rounds size_mib -- "$@"
here=$(cd "$(dirname "$0")" && pwd)
bench_requires fio python3
# Without a working perf the section says why and the summary row is "not run".
why=""
if ! command -v perf >/dev/null; then
  why="perf is missing (Debian package linux-perf)"
elif ! perf record -q -o /dev/null -- true >/dev/null 2>&1; then
  why="perf cannot record here (perf_event_paranoid $(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null), not root)"
fi
if [ -n "$why" ]; then
  echo "Not run: $why."
  python3 -c "from benchlib import result; result('tap CPU per byte written (perf)', 'not run', '(absolute)', [], None, '-', '''$why''')"
  exit 0
fi
bench_setup profile

# protect runs under perf here, not through start_protect: perf is the pid to wait for.
profile() {  # NAME rw bs iodepth: one profiled run, appends "NAME bytes" + stage lines to $work/out
  rm -rf "$work/journal" "$work/vol.img" "$work/p.sock" "$work/perf.data"
  new_volume "$work/vol.img"
  perf record -q -F 499 --call-graph dwarf,16384 -o "$work/perf.data" -- \
    "$tm" protect --volume "$work/vol.img" --journal "$work/journal" --listen "unix:$work/p.sock" \
    --name vol >"$work/protect.log" 2>&1 &
  local perf_pid=$! child
  pids+=("$perf_pid")
  wait_sock "$work/p.sock" "$work/protect.log" "$perf_pid"
  nbd_export=vol fio_nbd "$work/p.sock" "$work/fio.json" --rw="$2" --bs="$3" --iodepth="$4" \
    --size="${size_mib}M" --time_based --runtime="$seconds"
  child=$(pgrep -P "$perf_pid" | head -1)
  kill -TERM "$child"
  wait "$perf_pid" || true
  pids=()
  local bytes
  bytes=$(fio_get "$work/fio.json" write io_bytes)
  echo "== $1 $bytes" >>"$work/out"
  perf script -i "$work/perf.data" -F comm,tid,ip,sym 2>/dev/null | python3 "$here/profile_stages.py" 499 >>"$work/out"
}

for r in $(seq 1 "$rounds"); do
  profile "4 KiB random write, QD 32" randwrite 4k 32
  profile "1 MiB sequential write, QD 8" write 1m 8
  echo "round $r profiled" >&2
done

python3 - "$seconds" "$size_mib" "$work/out" <<'PY'
import collections, statistics, sys
from benchlib import result, spread
secs, size, path = sys.argv[1:4]
runs = collections.defaultdict(list)  # workload -> [(bytes, {stage: cpu_s})]
cur = None
for line in open(path):
    line = line.rstrip("\n")
    if line.startswith("== "):
        name, nbytes = line[3:].rsplit(" ", 1)
        cur = {}
        runs[name].append((int(nbytes), cur))
    elif line and cur is not None:
        stage, cpu = line.rsplit("\t", 1)
        cur[stage] = float(cpu)
print(f"`protect` under `perf record -F 499 --call-graph dwarf` (every thread of the process), fio's nbd "
      f"engine writing for {secs} s, {size} MiB volume, fresh journal per run; each sample is charged to the "
      "innermost frame of its call chain that names a stage (bench/profile_stages.py). CPU time per byte "
      "written, median over the rounds; the share is of the process's CPU time.\n")
for name, rs in runs.items():
    stages = sorted({s for _, d in rs for s in d}, key=lambda s: -statistics.median(d.get(s, 0) for _, d in rs))
    total = statistics.median(sum(d.values()) / b * 1e9 for b, d in rs)
    print(f"**{name}**: {total:.2f} ns of CPU per byte written in all "
          f"({total * 4096 / 1000 if '4 KiB' in name else total * 1048576 / 1000:,.1f} µs per write)\n")
    print("| stage | CPU ns per byte written (median) | share |")
    print("|---|---|---|")
    top = []
    for s in stages:
        per = [d.get(s, 0) / b * 1e9 for b, d in rs]
        share = statistics.median(d.get(s, 0) / max(sum(d.values()), 1e-9) for _, d in rs)
        print(f"| {s} | {statistics.median(per):.3f} | {share:.0%} |")
        top.append(f"{s.split(' (')[0]} {share:.0%}")
    print()
    result(f"tap CPU per byte written (perf), {name}", f"{total:.2f} ns/B", "(absolute)",
           [sum(d.values()) / b * 1e9 for b, d in rs], None, "-", "; ".join(top[:4]))
PY
