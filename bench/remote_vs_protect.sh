#!/usr/bin/env bash
# Remote protection next to the embedded one and to no journaling at all
# (issue #4): the same client (fio's nbd engine, one job) writes to
#   - `tidemark tap` shipping to `tidemark target serve` over loopback TLS 1.3,
#   - `tidemark protect` (tap + local journal),
#   - nbdkit's file plugin (no journal),
# 4 KiB random writes at QD 32 and 1 MiB sequential writes at QD 8, each run
# --seconds long, rounds alternating the three. Then the tap's RPO lag
# (newest write seen minus newest durable on the target, sampled from its
# status every 50 ms) at 50 % and 90 % of the tap's own 4 KiB rate
# (fio --rate_iops).
#
#   bench/remote_vs_protect.sh BUILD [--seconds S] [--rounds R] [--size-mib N]
# Prints a markdown table on stdout; progress on stderr.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
seconds=20 rounds=2 size_mib=1024
bench_options remote_vs_protect.sh seconds rounds size_mib -- "$@"
bench_requires fio nbdkit python3
bench_setup remote
bench_kill_signal=KILL
init_target

# start_remote (bench/lib.sh), start_local and start_kit leave their daemons in pids: call
# them in this shell, not in a $(...).
start_local() {
  rm -rf "$work/journal"
  new_volume "$work/vol.img"
  start_protect "$work"
  wait_for "$work/protect.log" '^protecting'
}
start_kit() {
  new_volume "$work/kit.img"
  start_nbdkit "$work/kit.img" "$work/kit.sock"
}
run_fio() {  # socket rw bs iodepth [extra fio args] -> "iops MB/s"
  local sock=$1 rw=$2 bs=$3 qd=$4; shift 4
  fio_nbd "$sock" "$work/fio.json" --rw="$rw" --bs="$bs" --iodepth="$qd" --size="${size_mib}M" \
    --time_based --runtime="$seconds" --ramp_time=2 "$@"
  fio_get "$work/fio.json" write iops mbps
}

declare -A R
for r in $(seq 1 "$rounds"); do
  for wl in "randwrite 4k 32" "write 1m 8"; do
    set -- $wl
    start_remote; t=$(run_fio "$work/tap.sock" "$1" "$2" "$3"); stop_pids
    start_local; p=$(run_fio "$work/p.sock" "$1" "$2" "$3"); stop_pids
    start_kit; k=$(run_fio "$work/kit.sock" "$1" "$2" "$3"); stop_pids
    R[$1]+="$t:$p:$k;"
    echo "round $r $1 $2: tap->target $t, protect $p, nbdkit $k" >&2
  done
done

# RPO lag at 50 % and 90 % of the tap's measured 4 KiB rate.
max_iops=$(python3 -c "
import statistics; v=[float(x.split(':')[0].split()[0]) for x in '${R[randwrite]}'.split(';') if x]; print(int(statistics.median(v)))")
lags=""
for r in $(seq 1 "$rounds"); do
for pct in 50 90; do
  rate=$((max_iops * pct / 100))
  start_remote
  run_fio "$work/tap.sock" randwrite 4k 32 --rate_iops="$rate" >"$work/rate.out" &
  fio_pid=$!
  python3 - "$work/st/control.sock" "$((seconds + 2))" >"$work/lag.$pct" <<'PY' &
import sys, time
from benchlib import volume_status
end = time.time() + float(sys.argv[2])
while time.time() < end:
    try:
        print(volume_status(sys.argv[1])["rpo_lag_seconds"])
    except Exception:
        pass
    time.sleep(0.05)
PY
  sampler=$!
  wait "$fio_pid" || true
  wait "$sampler" || true
  stop_pids
  lags+="$pct:$(python3 -c "
import statistics,sys; v=sorted(float(x) for x in open('$work/lag.$pct') if x.strip()); n=len(v)
print(f'{v[n//2]:.3f}/{v[min(n-1,int(n*0.99))]:.3f}/{n}' if n else 'none')"):$rate;"
  echo "round $r rpo lag at $pct % ($rate IOPS): $(tail -c 40 <<<"$lags")" >&2
done
done

python3 - "$seconds" "$size_mib" "${R[randwrite]}" "${R[write]}" "$lags" <<'PY'
import statistics, sys
from benchlib import result
secs, size = sys.argv[1], sys.argv[2]
print(f"fio nbd engine, one job, {secs} s per run after a 2 s ramp, {size} MiB volume; tap->target over loopback TLS 1.3 (async, default queue), protect = embedded journal, nbdkit file = no journal.\n")
print("| workload | tap->target | protect | nbdkit file | tap/nbdkit min / median / max | tap/protect median |")
print("|---|---|---|---|---|---|")
for name, data, unit, idx in (("4 KiB random write, QD 32", sys.argv[3], "IOPS", 0), ("1 MiB sequential write, QD 8", sys.argv[4], "MB/s", 1)):
    rows = []
    for p in filter(None, data.split(";")):
        t, pr, k = (float(x.split()[idx]) for x in p.split(":"))
        rows.append((t, pr, k))
    rk = sorted(t / k for t, _, k in rows)
    rp = statistics.median(t / pr for t, pr, _ in rows)
    m = [statistics.median(r[i] for r in rows) for i in range(3)]
    print(f"| {name} | {m[0]:,.0f} {unit} | {m[1]:,.0f} {unit} | {m[2]:,.0f} {unit} | {rk[0]:.2f} / {statistics.median(rk):.2f} / {rk[-1]:.2f} | {rp:.2f} |")
    result(f"remote tap -> target (loopback TLS) {name}", f"{m[0]:,.0f} {unit}", f"nbdkit file {m[2]:,.0f} {unit}", rk, None, "-")
print("\n| load (4 KiB random, QD 32) | RPO lag p50 (median of rounds) | RPO lag p99 min / median / max over rounds | samples per round |")
print("|---|---|---|---|")
by = {}
for p in filter(None, sys.argv[5].split(";")):
    pct, stats, rate = p.split(":")
    by.setdefault((pct, rate), []).append(None if stats == "none" else tuple(float(x) for x in stats.split("/")))
for (pct, rate), runs in by.items():
    runs = [x for x in runs if x]
    if not runs:
        print(f"| {pct} % of max ({rate} IOPS) | - | - | 0 |")
        continue
    p50 = statistics.median(x[0] for x in runs)
    p99 = sorted(x[1] for x in runs)
    print(f"| {pct} % of max ({rate} IOPS) | {p50:.3f} s | {p99[0]:.3f} / {statistics.median(p99):.3f} / {p99[-1]:.3f} s | {int(statistics.median(x[2] for x in runs))} |")
    result(f"RPO lag p99 at {pct} % of max ingest (4 KiB random, {rate} IOPS), loopback TLS",
           f"{statistics.median(p99):.3f} s (p50 {p50:.3f} s)", "(absolute)", p99, "<= 1" if pct == "50" else None, "-")
PY
