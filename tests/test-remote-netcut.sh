#!/usr/bin/env bash
# Network cuts between the tap and the target (issue #4, item 6). The tap ships through a TCP
# proxy (lib/tcp_proxy.py) while a workload keeps writing known patterns through it with
# qemu-io, one write per process, each timed. Two cuts, each healed after a while:
# - a clean cut: the proxy closes every connection (FIN) and refuses new ones for 5 s;
# - a blackhole: every socket stays open but no byte moves, as when packets are silently
#   dropped. Only the tap's PING and read deadline (capture/ship.cc, kReadDeadline) notice it.
# During each cut the tap's status shows connected=false with writes queued; after the heal
# it reconnects by itself and the queue drains. The workload never fails, and its writes go on
# completing during each cut (the memory queue absorbs it). After a clean stop the target's
# latest point equals the volume byte for byte, and its journal holds every seq the tap
# assigned exactly once (the resends after each reconnect were no-ops).
# The data written during those cuts (~1 MiB/s) stays in the memory queue. A third cut, with
# a tap restarted with a 1 MiB memory queue and a 2 MiB spill, takes 6.5 MiB of writes: the
# queue spills, then the tap keeps a dirty-block bitmap; after the heal it resyncs (comparing
# block hashes) inside an unordered interval: the final point equals the volume, and no seq
# inside the interval is offered as a point (restore refuses one, points lists none).
source "$(dirname "$0")/functions.sh"
source "$(dirname "$0")/lib/protect.sh"
source "$(dirname "$0")/lib/remote.sh"
requires qemu-io python3 cmp

tgt=$tmp/target
init_target "$tgt"
add_tenant "$target_conf" alice "$tmp/alice.token"
start_target "$target_conf"

python3 "$TM_SOURCE_ROOT/tests/lib/tcp_proxy.py" 127.0.0.1:0 "$target_addr" \
    >"$tmp/proxy.out" 2>"$tmp/proxy.err" &
proxy_pid=$!
cleanup_fn kill_quiet "$proxy_pid"
wait_for --pid "$proxy_pid" --show "$tmp/proxy.err" 10 "the proxy to listen" \
    complete_line "$tmp/proxy.out" '^proxy listening on ' >/dev/null
proxy_addr=$(complete_line "$tmp/proxy.out" '^proxy listening on ' | sed 's/^proxy listening on //')

truncate -s 64M "$tmp/a.img"
qemu_io "$tmp/a.img" "write -P 0x11 0 1M"
target_addr=$proxy_addr start_tap "$tmp/a.img" a alice "$tmp/alice.token" "$tmp/st" "$tmp/a.sock"
uri="nbd+unix:///a?socket=$tmp/a.sock"

now_ms() { echo $(($(date +%s%N) / 1000000)); }
status() { tap_status "$tmp/st" | json_get 'j["volumes"][0]'; }
field() { json_get "j[\"$1\"]" <<<"$2"; }
writes_done() { awk 'END { print NR }' "$tmp/workload.log" 2>/dev/null || echo 0; }
writes_past() { [ "$(writes_done)" -ge "$1" ]; }  # N: the workload has logged N writes

# The workload: 64 KiB writes of a counter's pattern, cycling over 48 MiB, about 15 a second
# (1 MiB/s: a 15 s cut queues ~15 MiB); one line per write (its number, the ms it took,
# qemu-io's exit status) until $tmp/stop exists.
(
    i=0
    while [ ! -e "$tmp/stop" ]; do
        i=$((i + 1))
        t0=$(now_ms)
        rc=0
        out=$(qemu-io -f raw "$uri" -c "write -P $((i % 251 + 1)) $(((i % 768) * 64))k 64k" 2>&1) ||
            rc=$?
        grep -qiE 'failed|error' <<<"$out" && rc=99
        echo "$i $(($(now_ms) - t0)) $rc" >>"$tmp/workload.log"
        sleep 0.05
    done
) &
workload_pid=$!
cleanup_fn kill_quiet "$workload_pid"
wait_for --pid "$workload_pid" 30 "the workload's first writes" writes_past 5

# cut_link KIND SIGNAL HOLD_S: cuts the link; waits until the tap notices (connected=false) while
# writes are queued, holds the cut HOLD_S seconds more and until the workload completed 3 writes
# since the cut began, heals, waits for the queue to drain.
cut_link() {
    local kind=$1 sig=$2 hold=$3 t0 noticed=0 st before after drained=0 n0
    before=$(field reconnects "$(status)")
    n0=$(writes_done)
    t0=$(now_ms)
    kill "-$sig" "$proxy_pid"
    # The tap notices within its 10 s read deadline (plus polling slack; scaled under load).
    cut_noticed() {
        st=$(status) || return 1
        [ "$(field connected "$st")" = false ] || return 1
        [ "$noticed" -gt 0 ] || noticed=$(($(now_ms) - t0))
        [ "$(field queued_writes "$st")" -gt 0 ]
    }
    wait_for 20 "$kind: the tap to say connected=false with writes queued" cut_noticed
    sleep "$hold"  # the cut's length: part of the scenario, not a wait for anything
    # The workload goes on while the link is down: writes complete during the cut.
    wait_for --pid "$workload_pid" 30 "$kind: 3 writes to complete during the cut" \
        writes_past $((n0 + 3))
    st=$(status)
    [ "$(field connected "$st")" = false ] || fail "$kind: the tap says connected during the cut"
    echo "$kind: the tap noticed after $noticed ms; $(field queued_writes "$st") writes" \
        "($(field queued_bytes "$st") bytes) queued, $(($(writes_done) - n0)) writes completed" \
        "during the cut; last error: $(field last_error "$st")"
    t0=$(now_ms)
    kill -HUP "$proxy_pid"
    # The workload keeps writing: the queue is drained when it stays small.
    healed() {
        st=$(status) || return 1
        [ "$(field connected "$st")" = true ] && [ "$(field queued_writes "$st")" -le 4 ]
    }
    wait_for 30 "$kind: a reconnect and a drained queue after the heal" healed
    drained=$(now_ms)
    after=$(field reconnects "$st")
    [ "$after" -gt "$before" ] || fail "$kind: reconnects did not grow ($before -> $after)"
    echo "$kind: reconnected and drained $((drained - t0)) ms after the heal (reconnects $after)"
}

cut_link "clean cut" USR1 5
wait_for --pid "$workload_pid" 30 "writes after the first heal" writes_past $(($(writes_done) + 2))
cut_link "blackhole" USR2 2
wait_for --pid "$workload_pid" 30 "writes after the second heal" writes_past $(($(writes_done) + 2))

touch "$tmp/stop"
wait "$workload_pid" || fail "the workload loop failed"
writes=$(awk 'END { print NR }' "$tmp/workload.log")
[ "$writes" -gt 20 ] || fail "the workload wrote only $writes times"
awk '$3 != 0 { print "write " $1 " failed (exit " $3 ")"; bad = 1 } END { exit bad }' \
    "$tmp/workload.log" >&2 || fail "the workload failed during a cut"
# No bound on the slowest write: under load one qemu-io process may take seconds to start.
# That the workload did not block is checked during each cut (writes completed in it).
slowest=$(sort -k2 -n "$tmp/workload.log" | tail -n 1 | cut -d' ' -f2)
echo "workload: $writes writes, the slowest took $slowest ms"

# Everything is acknowledged before a clean stop; the last write's seq is the tap's.
queue_empty() { st=$(status) && [ "$(field queued_writes "$st")" = 0 ]; }
wait_for 20 "an empty queue after the workload ended" queue_empty
stop_pid "$tap_pid"
last=$(sed -n 's/^stopped a at seq \([0-9]*\)$/\1/p' "$tap_out")
[ -n "$last" ] || { cat "$tap_out" >&2; fail "the tap did not print its last seq"; }
# seq 0 (the import, with the 1 MiB written before the tap started), then one seq per write.
[ "$last" = "$writes" ] || fail "the tap's last seq is $last after $writes writes"

"$TIDEMARK" restore --journal "$tgt/tenants/alice/journal" a --latest --output "$tmp/out.img" \
    >/dev/null || fail "restore --latest"
cmp "$tmp/out.img" "$tmp/a.img" || fail "the latest point differs from the volume"

# Every seq 0..last once: nothing lost, no resend made a second version.
"$TIDEMARK" journal dump --journal "$tgt/tenants/alice/journal" a >"$tmp/dump" ||
    fail "journal dump"
sed -n 's/^seq .* seq=\([0-9]*\) .*/\1/p' "$tmp/dump" | sort -n >"$tmp/seqs"
dups=$(uniq -d "$tmp/seqs" | head -n 5 | tr '\n' ' ')
[ -z "$dups" ] || fail "seqs recorded more than once: $dups"
seq 0 "$last" | cmp -s - "$tmp/seqs" ||
    fail "the journal's seqs are not exactly 0..$last ($(wc -l <"$tmp/seqs") seq records)"

echo "== a cut past the spill cap: bitmap, then resync"
target_addr=$proxy_addr start_tap "$tmp/a.img" a alice "$tmp/alice.token" "$tmp/st" \
    "$tmp/a.sock" --max-queue-mib 1 --max-spill-mib 2
kill -USR1 "$proxy_pid"
disconnected() { [ "$(field connected "$(status)")" = false ]; }
wait_for 20 "the tap to notice the third cut" disconnected
qemu_io "$uri" "write -P 0xa1 0 2M" "write -P 0xa2 8M 2M" "write -P 0xa3 16M 2M" \
    "write -P 0xa4 20M 512k"
st=$(status)
[ "$(field state "$st")" = bitmap ] || fail "expected bitmap mode during the long cut: $st"
[ "$(field dirty_bytes "$st")" -ge $((6 << 20)) ] || fail "expected 6.5 MiB dirty: $st"
kill -HUP "$proxy_pid"
resynced() {
    st=$(status) && [ "$(field state "$st")" = protected ] && [ "$(field queued_writes "$st")" = 0 ]
}
wait_for 30 "the resync to end after the heal (state protected, queue empty)" resynced
echo "resync after the heal: $(field resync_bytes "$st") bytes resent," \
    "$(field resync_skipped_bytes "$st") skipped (the target held them)"
stop_pid "$tap_pid"
"$TIDEMARK" restore --journal "$tgt/tenants/alice/journal" a --latest --output "$tmp/out2.img" \
    >/dev/null || fail "restore --latest after the resync"
cmp "$tmp/out2.img" "$tmp/a.img" || fail "the latest point differs from the volume after the resync"
"$TIDEMARK" journal dump --journal "$tgt/tenants/alice/journal" a >"$tmp/dump2"
read -r after upto < <(sed -n 's/^unordered .* after=\([0-9]*\) upto=\([0-9]*\) .*/\1 \2/p' \
    "$tmp/dump2" | tail -n 1)
[ -n "${upto:-}" ] || fail "no closed unordered interval recorded for the resync"
[ "$upto" -gt $((after + 1)) ] || fail "the unordered interval ($after, $upto) is empty"
inside=$((after + 1))
expect_fail_oneline "$TIDEMARK" restore --journal "$tgt/tenants/alice/journal" a --seq "$inside" \
    --output "$tmp/inside.img"
"$TIDEMARK" points --journal "$tgt/tenants/alice/journal" a --flushes --json >"$tmp/points.json"
python3 - "$tmp/points.json" "$after" "$upto" <<'PY' || fail "a point inside the unordered interval is listed"
import json, sys
j = json.load(open(sys.argv[1])); a, u = int(sys.argv[2]), int(sys.argv[3])
pts = [p["seq"] for p in j["flushes"]] + [b["seq"] for b in j["bookmarks"]]
bad = [s for s in pts if a < s < u]
sys.exit(1 if bad else 0)
PY
echo "ok: bitmap mode during the cut, resync after it; seqs $((after + 1))..$((upto - 1)) are not points"
stop_pid "$target_pid"
echo "remote netcut: ok"
