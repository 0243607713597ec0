#!/usr/bin/env bash
# A tenant's journal on the target loses bytes it had acknowledged (issue 13, decision 4: a
# cut at or below the newest ACKed seq is damage, docs/protocol.md#ack). The target ACKs a
# seq only after its segment is fdatasync'd and the synced tail recorded; here the segment
# file is then cut short while the target is stopped. Checked:
# - `journal check` fails naming the volume, the segment file and the seqs made durable;
# - the restarted target does not cut the journal back silently: it opens it read-only,
#   logs the damage and refuses the tap with it (the tap's error names volume, file and
#   seqs), and the segment file keeps its length (nothing appended past the damage);
# - the acknowledged writes before the damage still restore.
source "$(dirname "$0")/functions.sh"
source "$(dirname "$0")/lib/protect.sh"
source "$(dirname "$0")/lib/remote.sh"
requires qemu-io python3 cmp

MiB=$((1 << 20))
tgt=$tmp/target
init_target "$tgt"
add_tenant "$target_conf" alice "$tmp/alice.token"
start_target "$target_conf"
truncate -s 64M "$tmp/a.img"
start_tap "$tmp/a.img" a alice "$tmp/alice.token" "$tmp/st" "$tmp/a.sock"
uri="nbd+unix:///a?socket=$tmp/a.sock"
status() { tap_status "$tmp/st" | json_get 'j["volumes"][0]'; }
field() { json_get "j[\"$1\"]" <<<"$2"; }
head -c 8M /dev/urandom >"$tmp/data"
for i in 0 1 2 3 4 5 6 7; do
    qemu_io "$uri" "write -s $tmp/data $((i * 8))M 8M"
done
acked_all() { st=$(status) && [ "$(field acked_seq "$st")" = 8 ]; }
wait_for 30 "the target to acknowledge seq 8" acked_all
stop_pid "$tap_pid"
stop_pid "$target_pid"

j=$tgt/tenants/alice/journal
seg=$(find "$j/segments" -type f | sort | tail -n 1)
[ -n "$seg" ] || fail "no segment file under $j/segments"
size=$(stat -c %s "$seg")
cut_to=$((size - 6 * MiB))
truncate -s "$cut_to" "$seg"
echo "cut $seg from $size to $cut_to bytes"

# journal check names the damage.
if "$TIDEMARK" journal check --journal "$j" >"$tmp/check.out" 2>&1; then
    cat "$tmp/check.out" >&2
    fail "journal check passed on a journal cut below its synced tail"
fi
grep -q "segment file $seg" "$tmp/check.out" && grep -q "seqs up to 8" "$tmp/check.out" ||
    { cat "$tmp/check.out" >&2; fail "journal check does not name the file and the seqs"; }
echo "journal check: $(grep -m1 'segment file' "$tmp/check.out")"

# The target refuses the tap, naming the damage (the tap gives up at start); nothing is
# appended.
start_target "$target_conf"
rc=0
"$TIDEMARK" tap --volume "$tmp/a.img" --target "$target_addr" --tenant alice \
    --token-file "$tmp/alice.token" --name a --listen "unix:$tmp/a.sock" --ca "$target_ca" \
    --state "$tmp/st" --connect-timeout 3 >"$tmp/tap.out" 2>"$tmp/tap.err" || rc=$?
[ "$rc" != 0 ] || fail "the tap started on a damaged tenant journal"
grep -q "damaged: volume a: segment file $seg .*seqs up to 8" "$tmp/tap.err" ||
    { cat "$tmp/tap.out" "$tmp/tap.err" >&2; fail "the tap's error does not name the damage"; }
echo "tap (exit $rc): $(tail -n 1 "$tmp/tap.err")"
grep -q "damaged" "$target_out" "$target_out.err" ||
    { cat "$target_out" "$target_out.err" >&2; fail "the target did not log the damage"; }
[ "$(stat -c %s "$seg")" = "$cut_to" ] || fail "the target wrote to the damaged segment file"
kill -0 "$target_pid" 2>/dev/null || fail "the target died on a damaged tenant journal"
stop_pid "$target_pid"

# What lies before the damage still restores, byte for byte (seq 1: the first 8 MiB).
"$TIDEMARK" restore --journal "$j" a --seq 1 --output "$tmp/one.img" >/dev/null ||
    fail "restore --seq 1 of the damaged journal"
cmp -n $((8 * MiB)) "$tmp/one.img" "$tmp/data" || fail "seq 1 differs from what was written"
echo "remote damage: ok"
