#!/usr/bin/env bash
# The tap's memory during a target outage (issue #4): fio writes 4 KiB random
# writes at a fixed rate through `tidemark tap` while the target is stopped
# (SIGSTOP) for --seconds; the tap's peak RSS (VmHWM), its memory queue and
# spill are sampled every second, then the target resumes and the queue
# drains. Default queue caps (256 MiB memory, 4 GiB spill).
#
#   bench/tap_outage_memory.sh BUILD [--seconds S] [--rate-iops N] [--size-mib N]
#                              [--max-spill-mib N] [--trace FILE]
# --trace writes one line a second: elapsed s, phase, state, VmRSS and VmHWM (KiB), queue,
# spill and dirty bytes (to find which phase sets the high-water mark).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
seconds=600 rate_iops=2000 size_mib=4096 max_spill_mib="" trace=/dev/null
bench_options tap_outage_memory.sh seconds rate_iops size_mib max_spill_mib trace -- "$@"
spill_args=()
[ -n "$max_spill_mib" ] && spill_args=(--max-spill-mib "$max_spill_mib")
bench_setup outage
bench_kill_signal=KILL  # the target may be stopped: it gets SIGCONT first
status() {
  python3 - "$work/st/control.sock" <<'PY'
import sys
from benchlib import volume_status
v = volume_status(sys.argv[1])
print(v["queued_bytes"], v["spilled_bytes"], v["state"], v.get("dirty_bytes", 0))
PY
}

init_target
start_remote "${spill_args[@]}"
rss() { awk '/^VmRSS/ {print $2}' "/proc/$tap_pid/status"; }
hwm_now() { awk '/^VmHWM/ {print $2}' "/proc/$tap_pid/status"; }
t_start=$(date +%s)
note() { echo "$(( $(date +%s) - t_start )) $1 $3 $(rss) $(hwm_now) $2" >>"$trace"; }
base=$(rss)
kill -STOP "$target_pid"
fio_nbd "$work/tap.sock" "$work/fio.json" --rw=randwrite --bs=4k --iodepth=8 --size="${size_mib}M" \
  --time_based --runtime="$seconds" --rate_iops="$rate_iops" &
fio_pid=$!
peak=0 samples=0 maxq=0 maxs=0 maxd=0 states=""
while kill -0 "$fio_pid" 2>/dev/null; do
  r=$(rss); [ "$r" -gt "$peak" ] && peak=$r
  read -r q s st d < <(status)
  [ "$q" -gt "$maxq" ] && maxq=$q
  [ "$d" -gt "$maxd" ] && maxd=$d
  case " $states " in *" $st "*) ;; *) states="$states $st" ;; esac
  [ "$s" -gt "$maxs" ] && maxs=$s
  note outage "$st" "q=$q s=$s d=$d"
  samples=$((samples + 1))
  sleep 1
done
wait "$fio_pid" || true
iops=$(fio_get "$work/fio.json" write iops_int)
kill -CONT "$target_pid"
t0=$(date +%s)
for _ in $(seq 3000); do
  read -r q s st d < <(status)
  note after "$st" "q=$q s=$s d=$d"
  [ "$q" = 0 ] && [ "$s" = 0 ] && [ "$st" = protected ] && break
  sleep 0.2
done
drain=$(( $(date +%s) - t0 ))
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$tap_pid/status")
echo "Target stopped for ${seconds} s while fio wrote 4 KiB random writes at ${rate_iops} IOPS (achieved ${iops}) through the tap (default caps: 256 MiB memory queue, 4 GiB spill)."
echo
echo "States seen during the outage:${states}."
echo
echo "| tap RSS before | peak RSS (sampled) | VmHWM | max memory queue | max spill | max dirty (bitmap) | back to protected after the outage |"
echo "|---|---|---|---|---|---|---|"
echo "| $((base / 1024)) MiB | $((peak / 1024)) MiB | $((hwm / 1024)) MiB | $((maxq >> 20)) MiB | $((maxs >> 20)) MiB | $((maxd >> 20)) MiB | ${drain} s |"
