#!/usr/bin/env bash
# Power cuts under `tidemark protect` (issue 13: decision 4, "Power loss"). kill -9 keeps
# the page cache, so a power loss is simulated on the journal's files: tests/lib/powercut.c
# (LD_PRELOAD) logs how long each file under the journal was at each fsync/fdatasync, and
# after the kill tests/lib/powercut.py cuts every file back to that, keeping a random part
# of what followed (a torn last write); files never synced vanish. A raw NBD writer
# (tests/lib/nbd_raw.py) sends a FLUSH every 40 acknowledged writes. Each round: the
# journal opens, `journal check` passes, and every write acknowledged before the last
# answered FLUSH is in restore --latest. The backing is left as the page cache had it (the
# worst case: every write reached it, while the journal lost its unsynced tail); after
# protect's next start (its activity log sets those extents back to the journal's latest,
# docs/format-journal.md#power-loss) the backing equals restore --latest: it is never
# ahead of the journal.
set -euo pipefail
source "$(dirname "$0")/functions.sh"
source "$TM_SOURCE_ROOT/tests/lib/protect.sh"

requires python3 cc "$TIDEMARK"

T() { "$TIDEMARK" "$@"; }
raw=$TM_SOURCE_ROOT/tests/lib/nbd_raw.py
cut=$TM_SOURCE_ROOT/tests/lib/powercut.py
vol=$tmp/vm1.img
j=$tmp/journal
sock=$tmp/nbd.sock
rounds=${POWERCUT_ROUNDS:-4}
slot=16384
per_round=1500

cc -shared -fPIC -O2 -o "$tmp/powercut.so" "$TM_SOURCE_ROOT/tests/lib/powercut.c" -ldl
head -c 4M /dev/urandom >"$vol"
truncate -s 128M "$vol"
start_protect "$vol" "$j" "$sock" --name vm1
stop_protect

lost_rounds=0
for ((r = 1; r <= rounds; r++)); do
    log=$tmp/acked.$r.log
    : >"$log"
    rm -f "$log.flushed" "$tmp/sync.log"
    sync
    python3 "$cut" snapshot "$j" "$tmp/snapshot.json"
    jreal=$(realpath "$j")
    LD_PRELOAD=$tmp/powercut.so POWERCUT_DIR=$jreal POWERCUT_LOG=$tmp/sync.log \
        start_protect "$vol" "$j" "$sock" --name vm1
    first=$((256 + (r - 1) * per_round))
    python3 "$raw" writer "$sock" vm1 "$log" "$r" "$first" "$per_round" "$slot" 8 1000 40 \
        2>"$tmp/writer.err" &
    writer=$!
    flushed() { [ -s "$log.flushed" ]; }
    wait_for --pid "$writer" --show "$tmp/writer.err" 20 "round $r's first answered FLUSH" flushed
    ms=$((300 + RANDOM % 1200))
    sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
    kill9_protect
    wait "$writer" || { cat "$tmp/writer.err" >&2; fail "round $r: the writer failed"; }
    durable=$(cat "$log.flushed")
    acked=$(wc -l <"$log")
    python3 "$cut" cut "$j" "$tmp/snapshot.json" "$tmp/sync.log" "$r" >"$tmp/cut.$r.out"
    cuts=$(grep -c '^cut\|^removed' "$tmp/cut.$r.out" || true)

    T journal check --journal "$j" >"$tmp/check.out" 2>&1 ||
        { cat "$tmp/check.out" "$tmp/cut.$r.out" >&2; fail "round $r: journal check after the power cut"; }
    rm -f "$tmp/latest.img"
    T restore --journal "$j" vm1 --latest --output "$tmp/latest.img" >/dev/null ||
        fail "round $r: restore --latest after the power cut"
    python3 "$raw" check "$tmp/latest.img" "$log" "$durable" >"$tmp/check.out" ||
        { cat "$tmp/check.out" "$tmp/cut.$r.out" >&2
          fail "round $r: writes acknowledged before a FLUSH are missing after the power cut"; }
    # Did the journal lose acknowledged writes after the last FLUSH (allowed)?
    lost=$(python3 "$raw" check "$tmp/latest.img" "$log" >/dev/null && echo 0 || echo 1)
    # The journal takes writes again (protect's start replays its tail onto the backing,
    # and sets the activity log's extents back to the journal's latest).
    start_protect "$vol" "$j" "$sock" --name vm1
    stop_protect
    reverted=$(grep -c 'power-loss activity log' "$protect_err" || true)
    rm -f "$tmp/latest.img"
    T restore --journal "$j" vm1 --latest --output "$tmp/latest.img" >/dev/null ||
        fail "round $r: restore --latest after protect's restart"
    cmp -s "$vol" "$tmp/latest.img" ||
        { cat "$protect_err" "$tmp/cut.$r.out" >&2
          fail "round $r: the backing is not the journal's latest after the power cut (ahead of it)"; }
    lost_rounds=$((lost_rounds + lost))
    printf 'round %d: killed after %4d ms, %4d writes acknowledged, %4d before the last FLUSH; %d files cut; %s; ok\n' \
        "$r" "$ms" "$acked" "$durable" "$cuts" \
        "$([ "$reverted" = 0 ] && echo "nothing set back" || echo "backing set back")"
done
# The journal lost acknowledged, unflushed writes in some round (else the check above
# could not fail); the backing held them until the activity log set it back.
[ "$lost_rounds" -gt 0 ] || echo "test-protect-powercut: no round lost an unflushed write"
rm -f "$tmp/latest.img"
T journal check --journal "$j" >/dev/null || fail "journal check at the end"
echo "test-protect-powercut: OK ($rounds power cuts)"
