#!/usr/bin/env bash
# Trace replay (issue #6, item 3): the TPC-C and web-search traces
# (tests/data/traces, or $TM_TRACES_DIR) replayed by bench/nbd_replay.py
# (libnbd aio, up to QD 32 in flight, reads and writes, placement and payloads
# from the traces README) at their recorded pace and as fast as possible,
# through
#   - `tidemark tap` shipping to `tidemark target serve` over loopback TLS
#     (its RPO lag sampled from the tap's /v1/status every 50 ms, from the
#     start of the replay until the tap has shipped everything; the target's
#     tenant journal measured with du -sb before and after),
#   - nbdkit's file plugin (no journal), the peer for the achieved rate,
# back to back in every round, each run on a fresh sparse volume.
#
#   bench/trace_replay.sh BUILD [--rounds R] [--quick] [--size-mib N] [--align A]
#   --quick      replay only the first 2000 requests of each trace (wsrch spans
#                60 s; a full run replays both traces whole)
#   --size-mib   volume size the traces fold onto (default 1024)
#   --align      round offsets down and lengths up to A bytes (default 512: as
#                recorded, sub-block writes; 4096 looks like a modern filesystem)
# Prints a markdown section on stdout; progress on stderr. Work files in
# $BENCH_WORK/trace (default BUILD/bench-work/trace), removed at exit.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
rounds=3 quick=0 size_mib=1024 align=512
bench_options trace_replay.sh rounds quick! size_mib align -- "$@"
[[ $rounds =~ ^[1-9][0-9]*$ && $size_mib =~ ^[1-9][0-9]*$ && $align =~ ^[1-9][0-9]*$ ]] ||
  { echo "trace_replay.sh: --rounds, --size-mib and --align take positive integers" >&2; exit 2; }
bench_requires nbdkit python3 du
# python3-libnbd installs the module for Debian's own python3, which may not be
# the first python3 on PATH.
py=python3
$py -c 'import nbd' 2>/dev/null || py=/usr/bin/python3
$py -c 'import nbd' 2>/dev/null || {
  echo "trace_replay.sh: the Python module nbd is missing (Debian package python3-libnbd; tests/install-deps.sh)" >&2
  exit 1
}
[ -x "$build/tools/tidemark" ] || { echo "trace_replay.sh: no $build/tools/tidemark (build first)" >&2; exit 1; }
traces=$(readlink -f "${TM_TRACES_DIR:-$here/../tests/data/traces}")
for t in tpcc wsrch; do
  [ -f "$traces/$t-small.trace" ] || { echo "trace_replay.sh: no $traces/$t-small.trace" >&2; exit 1; }
done
max_args=()
(( quick )) && max_args=(--max-requests 2000)

bench_setup trace
bench_kill_signal=KILL
init_target
journal=$work/tgt/tenants/bench/journal

# start_remote (bench/lib.sh) and start_kit leave their daemons in pids: call them directly.
start_kit() {
  new_volume "$work/kit.img"
  start_nbdkit "$work/kit.img" "$work/kit.sock"
}
replay() {  # SOCKET TRACE PACE OUT
  $py "$here/nbd_replay.py" --uri "nbd+unix:///?socket=$1" --trace "$traces/$2-small.trace" \
    --pace "$3" --qd 32 --align "$align" "${max_args[@]}" >"$4"
}

# Samples the tap's status every 50 ms (one line: rpo_lag_seconds queued_writes)
# until DONE exists and the tap has nothing left to ship, or 120 s after DONE.
sampler() {  # CONTROL_SOCKET DONE_FILE OUT
  python3 - "$1" "$2" >"$3" <<'PY'
import os, sys, time
from benchlib import volume_status
sock, done = sys.argv[1:3]
deadline = None
while True:
    try:
        v = volume_status(sock)
        print(v["rpo_lag_seconds"], v["queued_writes"], flush=True)
        drained = v["queued_writes"] == 0 and v["acked_seq"] == v["recorded_seq"]
    except (OSError, ValueError, KeyError, IndexError):
        drained = False
    if os.path.exists(done):
        deadline = deadline or time.time() + 120
        if drained or time.time() > deadline:
            break
    time.sleep(0.05)
PY
}

declare -A R  # trace,pace -> "tidemark.json:nbdkit.json:lag-file:journal-growth " per round
for r in $(seq 1 "$rounds"); do
  for t in tpcc wsrch; do
    for pace in recorded asap; do
      id="$t.$pace.$r"
      start_remote
      before=$(du -sb "$journal" 2>/dev/null | cut -f1 || echo 0)
      rm -f "$work/done"
      sampler "$work/st/control.sock" "$work/done" "$work/lag.$id" &
      sampler_pid=$!
      pids+=($sampler_pid)
      replay "$work/tap.sock" "$t" "$pace" "$work/tm.$id.json"
      touch "$work/done"
      wait "$sampler_pid" || true
      after=$(du -sb "$journal" | cut -f1)
      stop_pids
      start_kit
      replay "$work/kit.sock" "$t" "$pace" "$work/kit.$id.json"
      stop_pids
      R[$t,$pace]+="$work/tm.$id.json:$work/kit.$id.json:$work/lag.$id:$((after - before)) "
      python3 - "$work/tm.$id.json" "$work/kit.$id.json" "$work/lag.$id" "round $r $t $pace" <<'PY' >&2
import json, sys
tm, kit = (json.load(open(p)) for p in sys.argv[1:3])
lags = [float(l.split()[0]) for l in open(sys.argv[3]) if l.strip()]
print(f"{sys.argv[4]}: tidemark {tm['iops']:,.0f} IOPS, nbdkit {kit['iops']:,.0f} IOPS, "
      f"RPO lag max {max(lags, default=0):.3f} s over {len(lags)} samples")
PY
    done
  done
done

python3 - "$rounds" "$size_mib" "$quick" "$(cut -d' ' -f1 /proc/loadavg)" "$align" \
  "${R[tpcc,recorded]}" "${R[tpcc,asap]}" "${R[wsrch,recorded]}" "${R[wsrch,asap]}" <<'PY'
import json, statistics, sys
from benchlib import result, spread
rounds, size_mib, quick, load, align = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "1", sys.argv[4], int(sys.argv[5])
runs = dict(zip([("tpcc", "recorded"), ("tpcc", "asap"), ("wsrch", "recorded"), ("wsrch", "asap")], sys.argv[6:10]))
placement = ("as recorded: 512-byte sectors, no alignment" if align == 512 else
             f"aligned: offsets rounded down and lengths up to {align} bytes")
align_tag = "" if align == 512 else f", aligned {align}"

def size(b):
    return f"{b / 2**20:,.2f} MiB" if abs(b) >= 2**20 else f"{b / 1024:,.1f} KiB"
pace_name = {"recorded": "recorded pace", "asap": "as fast as possible"}

def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))] if v else 0.0

rows = {}
for key, data in runs.items():
    per_round = []
    for entry in data.split():
        tm_path, kit_path, lag_path, growth = entry.split(":")
        tm, kit = json.load(open(tm_path)), json.load(open(kit_path))
        lags = [float(line.split()[0]) for line in open(lag_path) if line.strip()]
        per_round.append({"tm": tm, "kit": kit, "lags": lags, "growth": int(growth)})
    rows[key] = per_round

print(f"bench/nbd_replay.py (python3-libnbd aio, up to 32 requests in flight, one connection) "
      f"replays each trace's reads and writes onto a fresh sparse {size_mib} MiB volume (all devices "
      f"folded onto it, {placement}; write payloads from the traces "
      f"README). *recorded*: request i is issued (time_ns[i] - time_ns[0]) after the start, or when a "
      f"slot frees up if 32 are in flight; *asap*: back to back. Each round runs `tidemark tap` -> "
      f"`tidemark target serve` (loopback TLS 1.3, async shipping) and then nbdkit's file plugin with "
      f"the same client. RPO lag: the tap's `rpo_lag_seconds` sampled every 50 ms from the start of the "
      f"replay until the tap has shipped everything. Journal growth: `du -sb` of the target's tenant "
      f"journal after that minus before the replay (after the tap's initial sync). {rounds} round(s)"
      + (", **quick mode: first 2000 requests of each trace only**" if quick else "")
      + f"; load average at the end {load}.\n")
print("| trace | pace | requests (W / R) | trace span | tidemark IOPS | tidemark MB/s | nbdkit IOPS | nbdkit MB/s "
      "| ratio IOPS per round | slip p99 tm / kit | RPO lag p50 / p99 (samples) | journal growth | per byte written |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for (trace, pace), per_round in rows.items():
    if not per_round:
        continue
    med = lambda f: statistics.median(f(x) for x in per_round)
    t0 = per_round[0]["tm"]
    ratios = [x["tm"]["iops"] / x["kit"]["iops"] for x in per_round]
    # RPO lag percentiles over all rounds' samples together; per round for the summary.
    all_lags = [v for x in per_round for v in x["lags"]]
    p99s = [pct(x["lags"], 0.99) for x in per_round]
    growth = med(lambda x: x["growth"])
    per_byte = med(lambda x: x["growth"] / x["tm"]["write_bytes"]) if t0["write_bytes"] else 0
    slip = "-"
    if pace == "recorded":
        slip = f"{med(lambda x: x['tm']['slip_p99_ms']):.1f} / {med(lambda x: x['kit']['slip_p99_ms']):.1f} ms"
    ti, tb = med(lambda x: x["tm"]["iops"]), med(lambda x: x["tm"]["mb_s"])
    ki, kb = med(lambda x: x["kit"]["iops"]), med(lambda x: x["kit"]["mb_s"])
    print(f"| {trace} | {pace} | {t0['requests']:,} ({t0['writes']:,} / {t0['reads']:,}) | {t0['trace_span_s']:.2f} s "
          f"({t0['recorded_iops']:,.0f} IOPS) | {ti:,.0f} | {tb:,.1f} | {ki:,.0f} | {kb:,.1f} | "
          f"{' '.join(f'{r:.2f}' for r in ratios)} | {slip} | "
          f"{pct(all_lags, 0.5):.3f} / {pct(all_lags, 0.99):.3f} s ({len(all_lags)}) | "
          f"{size(growth)} | {per_byte:.2f} |")
    what = f"trace replay {trace}{align_tag}, {pace_name[pace]}"
    result(f"{what}: IOPS", f"{ti:,.0f} IOPS", f"nbdkit file {ki:,.0f} IOPS", ratios)
    result(f"{what}: RPO lag p99", f"{statistics.median(p99s):.3f} s", "(absolute)", p99s,
           "<= 1" if pace == "recorded" else None)
print("\nMB/s counts reads and writes. *slip p99*: how late the 99th-percentile request was issued "
      "against its recorded time (the client or the server could not keep up with the trace). "
      "The ratio is tidemark's IOPS over nbdkit's in the same round; at the recorded pace both "
      "should match the trace's own rate when they keep up. Journal growth per byte written "
      "is against the bytes the trace writes (overwrites included); the README's payloads (one 8-byte "
      "value repeated per sector) compress to almost nothing with the journal's zstd, so it measures "
      "the journal's per-write overhead, not what real data would take.")
PY
