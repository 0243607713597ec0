#!/usr/bin/env bash
# Bad input to tidemark protect (issue 3, item 4): a missing volume, a journal in use, a
# volume whose size or block size does not match the journal, bad --listen values: one line
# on stderr and a non-zero exit. NBD requests out of range or misaligned (sent by a raw
# client, tests/lib/nbd_raw.py, since qemu-io and libnbd check them first) fail with an NBD
# error and the server stays up. None of it changes the journal: `journal dump` and every
# bookmark's restore are the same before and after.
set -euo pipefail
source "$(dirname "$0")/functions.sh"
source "$TM_SOURCE_ROOT/tests/lib/protect.sh"

requires qemu-io python3 cmp sha256sum "$TIDEMARK"

T() { "$TIDEMARK" "$@"; }
raw=$TM_SOURCE_ROOT/tests/lib/nbd_raw.py
vol=$tmp/vm1.img
j=$tmp/journal
sock=$tmp/nbd.sock
uri="nbd+unix:///vm1?socket=$sock"
bad() { # what CMD...
    local what=$1 msg
    shift
    msg=$(expect_fail_oneline "$@")
    echo "ok: $what: $msg"
}
# P ARG...: tidemark protect that must be refused. If it starts serving instead, it is
# stopped after 5 s (scaled: a refusal that opens the journal first is slow on a loaded
# machine) and P exits 200, which expect_fail_oneline reports as a failure.
P() {
    local rc=0 limit
    limit=$(scaled 5)
    timeout "$limit" "$TIDEMARK" protect "$@" || rc=$?
    if [ "$rc" -eq 124 ]; then
        echo "(test: protect started serving instead of refusing; stopped after $limit s)" >&2
        return 200
    fi
    return "$rc"
}
# bad_protect what ARG...: like bad, but a wrong answer is collected, not fatal, so that
# one product bug does not hide the rest; the test fails at the end if any was collected.
refused_wrongly=()
declare -A what_of=()
bad_protect() {
    local what=$1 msg
    shift
    what_of[${n:-0}]=$what
    if msg=$( (expect_fail_oneline P "$@") 2>&1); then
        echo "ok: $what: $msg"
    else
        echo "NOT OK: $what: $msg" >&2
        refused_wrongly+=("$what")
    fi
}

head -c 8M /dev/urandom >"$vol"
truncate -s 64M "$vol"

echo "== bad arguments, no daemon (a fresh journal dir each)"
n=0
nj() { n=$((n + 1)); jn=$tmp/j$n; }   # sets $jn (no subshell, so $n counts)
nj
bad_protect "missing volume path" --volume "$tmp/nosuch.img" --journal "$jn" --listen "unix:$tmp/s0"
[ ! -e "$tmp/s0" ] || fail "a refused protect left its socket behind"
nj
bad_protect "volume is a directory" --volume "$tmp" --journal "$jn" --listen "unix:$tmp/s0"
nj
bad_protect "no --volume" --journal "$jn" --listen "unix:$tmp/s0"
nj
bad_protect "--block-size not a power of two" \
    --volume "$vol" --journal "$jn" --listen "unix:$tmp/s0" --block-size 1000
nj
bad_protect "--block-size 256 (below 512)" \
    --volume "$vol" --journal "$jn" --listen "unix:$tmp/s0" --block-size 256
nj
bad_protect "--listen without a scheme or port" --volume "$vol" --journal "$jn" --listen bogus
nj
bad_protect "--listen in a missing directory" \
    --volume "$vol" --journal "$jn" --listen "unix:$tmp/no/such/dir/s"
# A port held by another listener (a python3 one, stopped on exit).
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
print(s.getsockname()[1], flush=True); time.sleep(120)
' >"$tmp/port" &
holder=$!
cleanup_fn kill_quiet "$holder"
port_printed() { complete_line "$tmp/port" '^[0-9]+$' >/dev/null; }
wait_for --pid "$holder" 10 "the port holder's port" port_printed
nj
bad_protect "--listen on a port already taken" \
    --volume "$vol" --journal "$jn" --listen "127.0.0.1:$(cat "$tmp/port")"
# A refused protect must not have started protecting: no volume in its journal, no seq 0.
for ((i = 1; i <= n; i++)); do
    [ -d "$tmp/j$i" ] || continue
    if "$TIDEMARK" points --journal "$tmp/j$i" vm1.img >/dev/null 2>&1; then
        echo "NOT OK: refused protect (${what_of[$i]}) left volume vm1.img with seq 0 in its journal" >&2
        refused_wrongly+=("${what_of[$i]}: refused, but imported the volume into the journal")
    fi
done
rm -rf "$tmp"/j[0-9]*

echo "== a running protect, some writes and bookmarks"
start_protect "$vol" "$j" "$sock" --name vm1
cat "$protect_out"
qemu_io "$uri" 'write -P 0x11 0 64k' 'write -P 0x12 5M 512'
T bookmark --journal "$j" vm1 b1
qemu_io "$uri" 'write -P 0x21 4k 4k' 'discard 6M 1M' 'write -z 7M 64k'
T bookmark --journal "$j" vm1 b2
sum_bookmarks() {
    local b
    for b in b1 b2; do
        rm -f "$tmp/bm.img"
        T restore --journal "$j" vm1 --bookmark "$b" --output "$tmp/bm.img" >/dev/null
        echo "$b $(sha256sum <"$tmp/bm.img")"
    done
    rm -f "$tmp/bm.img"
}
sum_bookmarks >"$tmp/sums.before"
cp "$j/daemon.json" "$tmp/daemon.json.before"
# Wait for the secondary instance to see everything, then take the dump.
# A FLUSH from a good client (qemu-io flushes when it closes) re-marks the newest seq with a
# new time, so flush lines are compared by seq and flags only.
dump() {
    T journal dump --journal "$j" vm1 | sed -E 's/^(flush .*) time=[^ ]*$/\1/'
}
dump >"$tmp/dump.before"
grep -q 'name=b2 ' "$tmp/dump.before" || fail "dump before: no bookmark b2"
cp --sparse=always "$vol" "$tmp/backing.before"

echo "== a journal in use"
bad_protect "second protect on the same journal" \
    --volume "$vol" --journal "$j" --listen "unix:$tmp/other.sock" --name vm1
bad_protect "second protect on the same journal, another volume" \
    --volume "$tmp/backing.before" --journal "$j" --listen "unix:$tmp/other.sock" --name vm2
[ ! -e "$tmp/other.sock" ] || fail "a refused protect left its socket behind"
kill -0 "$protect_pid" || fail "the running protect died"
cmp "$j/daemon.json" "$tmp/daemon.json.before" || fail "a refused protect changed daemon.json"

echo "== NBD requests out of range or misaligned (raw client): errors, the server stays up"
M=$((1 << 20))
nbd_ops() { python3 "$raw" ops "$sock" vm1 "$@"; }
out=$(nbd_ops "read 0 4096")
good_read=$out
for req in "write $((63 * M)) $((2 * M)) 0xee" "write $((64 * M)) 4096 0xee" \
           "read $((64 * M - 512)) 1024" "read $((1 << 40)) 512" \
           "trim $((63 * M)) $((2 * M))" "zero $((64 * M)) 4096" \
           "write 100 512 0xee" "write 4096 100 0xee" "read 100 512" "read 0 100" \
           "trim 100 4096" "zero 512 100" "write 0 $((33 * M)) 0xee"; do
    out=$(nbd_ops "$req" "read 0 4096") || fail "$req: the server hung up: $out"
    first=$(head -1 <<<"$out")
    [[ "$first" == "error "* ]] || fail "$req: expected an NBD error, got: $first"
    [ "$(tail -1 <<<"$out")" = "$good_read" ] || fail "$req: the following read failed: $out"
    echo "ok: $req: $first; the next read on the connection works"
done
kill -0 "$protect_pid" || fail "protect died"
qemu_io "$uri" 'read -P 0x11 0 4k' 'read -P 0x21 4k 4k'
echo "ok: qemu-io reads after the bad requests"
# qemu-io refuses some on its own; either way nothing may reach the volume.
qemu-io -f raw "$uri" -c "write -P 0xee 63M 2M" >"$tmp/qio.out" 2>&1 || true
grep -qiE 'error|failed|out of|beyond|range|invalid' "$tmp/qio.out" ||
    { cat "$tmp/qio.out" >&2; fail "qemu-io write 63M 2M past the end did not fail"; }
echo "ok: qemu-io write 63M 2M: $(head -1 "$tmp/qio.out")"
cmp "$vol" "$tmp/backing.before" || fail "a bad request changed the backing"

echo "== the journal is untouched"
dump >"$tmp/dump.after"
diff -u "$tmp/dump.before" "$tmp/dump.after" || fail "journal dump changed (protect running)"
sum_bookmarks >"$tmp/sums.after"
diff -u "$tmp/sums.before" "$tmp/sums.after" || fail "bookmark restores changed"
echo "ok: dump and bookmark restores as before"

stop_protect
[ ! -e "$j/daemon.json" ] || echo "note: daemon.json left after a clean stop"

echo "== a volume that does not match the journal"
truncate -s 32M "$tmp/small/vm1.img" 2>/dev/null || { mkdir "$tmp/small"; truncate -s 32M "$tmp/small/vm1.img"; }
bad_protect "32 MiB volume, journal has 64 MiB" \
    --volume "$tmp/small/vm1.img" --journal "$j" --listen "unix:$sock" --name vm1
truncate -s 96M "$tmp/small/vm1.img"
bad_protect "96 MiB volume, journal has 64 MiB" \
    --volume "$tmp/small/vm1.img" --journal "$j" --listen "unix:$sock" --name vm1
bad_protect "--block-size 8192, journal has 4096" \
    --volume "$vol" --journal "$j" --listen "unix:$sock" --name vm1 --block-size 8192
[ ! -e "$sock" ] || fail "a refused protect left its socket behind"
cmp "$vol" "$tmp/backing.before" || fail "a refused protect changed the backing"
dump >"$tmp/dump.after2"
diff -u "$tmp/dump.before" "$tmp/dump.after2" || fail "journal dump changed (refused protects)"
sum_bookmarks >"$tmp/sums.after2"
diff -u "$tmp/sums.before" "$tmp/sums.after2" || fail "bookmark restores changed (refused protects)"
echo "ok: dump and bookmark restores as before"

echo "== and the right volume still starts"
start_protect "$vol" "$j" "$sock" --name vm1
qemu_io "$uri" 'read -P 0x12 5M 512'

echo "== a unix socket another daemon listens on"
bad_protect "--listen on the socket of a running daemon" \
    --volume "$tmp/backing.before" --journal "$tmp/j3" --listen "unix:$sock" --name vm3
if [ -S "$sock" ] && qemu-io -f raw "$uri" -c 'read -P 0x12 5M 512' >/dev/null 2>&1; then
    echo "ok: the running daemon still answers on $sock"
else
    echo "NOT OK: the running daemon's socket $sock is gone or answers no more" >&2
    refused_wrongly+=("socket of a running daemon taken over")
fi
stop_protect
T journal verify --journal "$j" vm1 || fail "journal verify"

if [ ${#refused_wrongly[@]} -gt 0 ]; then
    fail "protect accepted or misreported bad input: $(printf '[%s] ' "${refused_wrongly[@]}")"
fi
echo "test-protect-badinput: OK"
