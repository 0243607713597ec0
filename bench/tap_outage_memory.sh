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
build=$1; shift
seconds=600 rate=2000 size_mib=4096 spill_args=() trace=/dev/null
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --rate-iops) rate=$2; shift 2 ;;
    --size-mib) size_mib=$2; shift 2 ;;
    --max-spill-mib) spill_args=(--max-spill-mib "$2"); shift 2 ;;
    --trace) trace=$2; shift 2 ;;
    *) echo "tap_outage_memory.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
tm=$(readlink -f "$build/tools/tidemark")
work=$(readlink -f "${BENCH_WORK:-$build/bench-work}")/outage
rm -rf "$work"; mkdir -p "$work"
pids=()
cleanup() { for x in "${pids[@]}"; do kill -CONT "$x" 2>/dev/null; kill -9 "$x" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
wait_for() { for _ in $(seq 600); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; cat "$1" >&2; exit 1; }
status() {
  python3 - "$work/st/control.sock" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
d = b""
while True:
    b = s.recv(65536)
    if not b: break
    d += b
v = json.loads(d.split(b"\r\n\r\n", 1)[1])["volumes"][0]
print(v["queued_bytes"], v["spilled_bytes"], v["state"], v.get("dirty_bytes", 0))
PY
}

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$tm" target init --data "$work/tgt" --listen "127.0.0.1:$port" --host 127.0.0.1 >/dev/null
"$tm" tenant add bench --config "$work/tgt/target.toml" --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])' >"$work/token"
"$tm" target serve --config "$work/tgt/target.toml" >"$work/target.log" 2>&1 &
target=$!; pids+=($target)
wait_for "$work/target.log" '^target serving'
truncate -s "${size_mib}M" "$work/vol.img"
"$tm" tap --volume "$work/vol.img" --target "127.0.0.1:$port" --tenant bench \
  --token-file "$work/token" --name vol --listen "unix:$work/tap.sock" \
  --ca "$work/tgt/ca.crt" --state "$work/st" "${spill_args[@]}" >"$work/tap.log" 2>&1 &
tap=$!; pids+=($tap)
wait_for "$work/tap.log" '^tapping'
rss() { awk '/^VmRSS/ {print $2}' "/proc/$tap/status"; }
hwm_now() { awk '/^VmHWM/ {print $2}' "/proc/$tap/status"; }
t_start=$(date +%s)
note() { echo "$(( $(date +%s) - t_start )) $1 $3 $(rss) $(hwm_now) $2" >>"$trace"; }
base=$(rss)
kill -STOP "$target"
fio --name=w --ioengine=nbd --uri="nbd+unix:///?socket=$work/tap.sock" --rw=randwrite --bs=4k \
  --iodepth=8 --size="${size_mib}M" --time_based --runtime="$seconds" --rate_iops="$rate" \
  --output-format=json --output="$work/fio.json" >/dev/null 2>&1 &
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
iops=$(python3 -c "import json; print(round(json.load(open('$work/fio.json'))['jobs'][0]['write']['iops']))")
kill -CONT "$target"
t0=$(date +%s)
for _ in $(seq 3000); do
  read -r q s st d < <(status)
  note after "$st" "q=$q s=$s d=$d"
  [ "$q" = 0 ] && [ "$s" = 0 ] && [ "$st" = protected ] && break
  sleep 0.2
done
drain=$(( $(date +%s) - t0 ))
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$tap/status")
echo "Target stopped for ${seconds} s while fio wrote 4 KiB random writes at ${rate} IOPS (achieved ${iops}) through the tap (default caps: 256 MiB memory queue, 4 GiB spill)."
echo
echo "States seen during the outage:${states}."
echo
echo "| tap RSS before | peak RSS (sampled) | VmHWM | max memory queue | max spill | max dirty (bitmap) | back to protected after the outage |"
echo "|---|---|---|---|---|---|---|"
echo "| $((base / 1024)) MiB | $((peak / 1024)) MiB | $((hwm / 1024)) MiB | $((maxq >> 20)) MiB | $((maxs >> 20)) MiB | $((maxd >> 20)) MiB | ${drain} s |"
