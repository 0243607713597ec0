#!/usr/bin/env bash
# kill -9 of tidemark protect in the middle of a write stream (issue 3, item 4; STYLE.md 7
# "Crash"), 10 rounds. A raw NBD writer (tests/lib/nbd_raw.py, 8 requests in flight) writes
# random pieces of 16 KiB slots, each slot written once in the whole test, and logs each write
# only after the server acknowledged it. protect is killed at a random moment, restarted
# (its tail replay runs), and stopped cleanly. Then: the backing equals restore --latest, and
# every acknowledged write is in both. A kill -9 keeps the page cache, so nothing
# acknowledged may be missing.
set -euo pipefail
source "$(dirname "$0")/functions.sh"
source "$TM_SOURCE_ROOT/tests/lib/protect.sh"

requires python3 cmp "$TIDEMARK"

T() { "$TIDEMARK" "$@"; }
raw=$TM_SOURCE_ROOT/tests/lib/nbd_raw.py
vol=$tmp/vm1.img
j=$tmp/journal
sock=$tmp/nbd.sock
log=$tmp/acked.log
rounds=${CRASH_ROUNDS:-10}
slot=16384
per_round=1500   # slots a round may use; the writer is held to 1000 writes a second

head -c 4M /dev/urandom >"$vol"
truncate -s 256M "$vol"
: >"$log"

total=0
prev_seq=0
for ((r = 1; r <= rounds; r++)); do
    start_protect "$vol" "$j" "$sock" --name vm1
    first=$((256 + (r - 1) * per_round))   # slots 0-255 hold the imported 4 MiB
    python3 "$raw" writer "$sock" vm1 "$log" "$r" "$first" "$per_round" "$slot" 8 1000 \
        2>"$tmp/writer.err" &
    writer=$!
    # The kill comes at a random moment once the writer's writes are acknowledged (a loaded
    # machine may take longer than the random delay just to start the writer).
    round_acked() { awk -v r="$r" '$1 == r { n++ } END { exit n < 1 }' "$log"; }
    wait_for --pid "$writer" --show "$tmp/writer.err" 20 "round $r's first acknowledged write" \
        round_acked
    ms=$((200 + RANDOM % 1300))
    sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
    kill9_protect
    wait "$writer" || { cat "$tmp/writer.err" >&2; fail "round $r: the writer failed"; }
    acked=$(awk -v r="$r" '$1 == r' "$log" | wc -l)
    total=$((total + acked))

    # Restart: the tail replay brings the backing up to the journal; then stop cleanly.
    start_protect "$vol" "$j" "$sock" --name vm1
    ready=$(cat "$protect_out")
    stop_protect
    stopped=$(grep '^stopped' "$protect_out")
    seq=$(sed -n 's/^stopped .* at seq \([0-9]*\)$/\1/p' "$protect_out")
    # Each acknowledged write has its own seq; at most the 8 in flight at the kill add more.
    [ "$((seq - prev_seq))" -ge "$acked" ] && [ "$((seq - prev_seq))" -le $((acked + 8)) ] ||
        fail "round $r: seqs $prev_seq..$seq for $acked acknowledged writes (8 in flight at most)"
    prev_seq=$seq

    rm -f "$tmp/latest.img"
    T restore --journal "$j" vm1 --latest --output "$tmp/latest.img" >/dev/null
    cmp "$tmp/latest.img" "$vol" || fail "round $r: restore --latest differs from the backing"
    python3 "$raw" check "$vol" "$log" >"$tmp/check.out" ||
        { cat "$tmp/check.out" >&2; fail "round $r: acknowledged writes missing from the backing"; }
    python3 "$raw" check "$tmp/latest.img" "$log" >"$tmp/check.out" ||
        { cat "$tmp/check.out" >&2; fail "round $r: acknowledged writes missing from the latest point"; }
    printf 'round %2d: killed after %4d ms, %4d writes acknowledged (%5d in all); %s; %s; ok\n' \
        "$r" "$ms" "$acked" "$total" "restarted from ${ready##* from }" "$stopped"
done
rm -f "$tmp/latest.img"

[ "$total" -ge $((rounds * 20)) ] || fail "only $total writes acknowledged in $rounds rounds: the test proves little"
T journal verify --journal "$j" vm1 || fail "journal verify"
latest=$(T points --journal "$j" vm1 --json | json_get 'j["latest"]["seq"]')
[ "$latest" -ge "$total" ] || fail "latest seq $latest < $total acknowledged writes"
# The imported 4 MiB (seq 0) is untouched by all of it.
T restore --journal "$j" vm1 --seq 0 --output "$tmp/s0.img" >/dev/null
cmp -n $((4 << 20)) "$tmp/s0.img" "$vol" || fail "seq 0 / the first 4 MiB changed"
# The index rebuilt from the segments alone (journal check --rebuild-index) is the same
# (docs/format-journal.md#roll-forward): the same dump, the same latest image.
T journal dump --journal "$j" >"$tmp/dump.before"
T journal check --journal "$j" --rebuild-index >/dev/null || fail "journal check --rebuild-index"
T journal dump --journal "$j" >"$tmp/dump.after"
diff "$tmp/dump.before" "$tmp/dump.after" >&2 || fail "the rebuilt index differs (journal dump)"
T restore --journal "$j" vm1 --latest --output "$tmp/rebuilt.img" >/dev/null
cmp "$tmp/rebuilt.img" "$vol" || fail "restore --latest after --rebuild-index differs from the backing"
echo "test-protect-crash: OK ($total acknowledged writes, latest seq $latest, index rebuilt)"
