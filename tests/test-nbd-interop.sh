#!/usr/bin/env bash
# capture/nbd against real NBD clients: nbdinfo, nbdcopy, qemu-img, qemu-io.
# Serves a random 64 MiB file with capture/nbd_test_server (NBD_TEST_SERVER)
# over a unix socket, then over TCP on 127.0.0.1 with an ephemeral port.
set -euo pipefail
source "$(dirname "$0")/functions.sh"

requires nbdinfo nbdcopy qemu-img qemu-io python3 cmp
: "${NBD_TEST_SERVER:=$TM_SOURCE_ROOT/build/capture/nbd_test_server}"
[ -x "$NBD_TEST_SERVER" ] || skip "nbd_test_server not built ($NBD_TEST_SERVER)"

img=$tmp/disk.img
head -c 64M /dev/urandom >"$img"
cp "$img" "$tmp/orig.img"

kill_quiet() { kill "$@" 2>/dev/null || true; }

# start_server LISTEN: starts the server on $img, sets $server_pid and $addr.
start_server() {
    local out=$tmp/server.out
    : >"$out"
    "$NBD_TEST_SERVER" --listen "$1" --description "interop test" "$img" >"$out" 2>"$tmp/server.err" &
    server_pid=$!
    cleanup_fn kill_quiet "$server_pid"
    wait_for --pid "$server_pid" --show "$tmp/server.err" 10 "the server's ready line" \
        complete_line "$out" '^ready ' >/dev/null
    addr=$(complete_line "$out" '^ready ' | awk '{ print $2 }')
}

stop_server() {
    kill -TERM "$server_pid"
    wait "$server_pid" || fail "server exited with $? on SIGTERM"
}

# qemu_io URI CMD...: runs qemu-io with -c for each CMD; any failure fails the test.
qemu_io() {
    local uri=$1 out args=()
    shift
    for c in "$@"; do args+=(-c "$c"); done
    out=$(qemu-io -f raw "$uri" "${args[@]}" 2>&1) || { echo "$out" >&2; fail "qemu-io $*"; }
    if grep -qiE 'failed|error' <<<"$out"; then
        echo "$out" >&2
        fail "qemu-io $*"
    fi
}

# ---- unix socket ----
sock=$tmp/nbd.sock
start_server "unix:$sock"
[ "$addr" = "unix:$sock" ] || fail "address: $addr"
uri="nbd+unix:///?socket=$sock"

info=$(nbdinfo --json "$uri")
[ "$(json_get 'j["exports"][0]["export-size"]' <<<"$info")" = 67108864 ] || fail "size: $info"
[ "$(json_get 'j["exports"][0]["export-name"]' <<<"$info")" = disk.img ] || fail "name: $info"
[ "$(json_get 'j["exports"][0]["block_size_minimum"]' <<<"$info")" = 512 ] || fail "min: $info"
[ "$(json_get 'j["exports"][0]["block_size_preferred"]' <<<"$info")" = 4096 ] || fail "pref: $info"
[ "$(json_get 'j["exports"][0]["block_size_maximum"]' <<<"$info")" = 33554432 ] || fail "max: $info"
[ "$(json_get '"base:allocation" in j["exports"][0]["contexts"]' <<<"$info")" = true ] ||
    fail "contexts: $info"
[ "$(json_get 'j["structured"]' <<<"$info")" = true ] || fail "structured: $info"
[ "$(json_get 'j["exports"][0]["can_multi_conn"]' <<<"$info")" = false ] || fail "multi-conn: $info"
for f in can_flush can_fua can_trim can_zero; do
    [ "$(json_get "j[\"exports\"][0][\"$f\"]" <<<"$info")" = true ] || fail "$f: $info"
done
# The named export works too, and an unknown one is refused.
nbdinfo --size "nbd+unix:///disk.img?socket=$sock" | grep -qx 67108864 || fail "named export"
if nbdinfo --size "nbd+unix:///nope?socket=$sock" >/dev/null 2>&1; then fail "unknown export accepted"; fi
nbdinfo --list "$uri" | grep -q 'export="disk.img"' || fail "nbdinfo --list"

# nbdcopy out, then a new image in and out again, byte-exact.
nbdcopy "$uri" "$tmp/out1.img"
cmp "$tmp/orig.img" "$tmp/out1.img" || fail "nbdcopy out differs"
head -c 64M /dev/urandom >"$tmp/new.img"
nbdcopy "$tmp/new.img" "$uri"
cmp "$tmp/new.img" "$img" || fail "nbdcopy in: the backing file differs"
nbdcopy --connections=4 --requests=16 "$uri" "$tmp/out2.img"
cmp "$tmp/new.img" "$tmp/out2.img" || fail "nbdcopy out after in differs"

# qemu-img convert and compare.
qemu-img convert -f raw -O raw "$uri" "$tmp/conv.img"
cmp "$tmp/new.img" "$tmp/conv.img" || fail "qemu-img convert differs"
qemu-img compare -f raw -F raw "$tmp/conv.img" "$uri" >/dev/null || fail "qemu-img compare"

# qemu-io: patterns, FUA, discard, write zeroes (with and without unmap).
qemu_io "$uri" 'write -P 0xab 0 1M' 'read -P 0xab 0 1M'
qemu_io "$uri" 'write -f -P 0xcd 1M 1M' 'read -P 0xcd 1M 1M'
qemu_io "$uri" 'write -P 0x11 2M 1M' 'discard 2M 1M' 'read -P 0 2M 1M'
qemu_io "$uri" 'write -z 3M 1M' 'read -P 0 3M 1M'
qemu_io "$uri" 'write -z -u 4M 1M' 'read -P 0 4M 1M'
qemu_io "$uri" 'write -P 0x22 5M 4k' 'write -f -z 5M 4k' 'read -P 0 5M 4k' 'flush'
qemu_io "$uri" 'aio_write -P 0x33 6M 64k' 'aio_write -P 0x44 7M 64k' 'aio_flush' \
    'read -P 0x33 6M 64k' 'read -P 0x44 7M 64k'
# Sub-512 requests are read-modify-write in qemu (min block 512).
qemu_io "$uri" 'write -P 0x55 8M 100' 'read -P 0x55 8M 100'
# The backing file holds exactly what was written.
python3 - "$img" <<'EOF' || fail "backing file contents"
import sys
d = open(sys.argv[1], "rb").read()
M = 1 << 20
assert d[0:M] == b"\xab" * M
assert d[M:2*M] == b"\xcd" * M
assert d[2*M:5*M] == b"\0" * (3*M)
assert d[5*M:5*M+4096] == b"\0" * 4096
assert d[6*M:6*M+65536] == b"\x33" * 65536 and d[7*M:7*M+65536] == b"\x44" * 65536
assert d[8*M:8*M+100] == b"\x55" * 100
EOF

# Block status: the trim and the unmapping write-zeroes left holes.
nbdinfo --map "$uri" >"$tmp/map"
grep -qE '^ *2097152 +1048576 +3 +hole,zero$' "$tmp/map" || { cat "$tmp/map" >&2; fail "no hole at 2M"; }
grep -qE '^ *4194304 +1048576 +3 +hole,zero$' "$tmp/map" || { cat "$tmp/map" >&2; fail "no hole at 4M"; }
grep -qE '^ *0 +2097152 +0 +data$' "$tmp/map" || { cat "$tmp/map" >&2; fail "no data at 0"; }
qemu-img map --output=json -f raw "$uri" | grep -q '"data": false' || fail "qemu-img map shows no hole"

stop_server
[ ! -e "$sock" ] || fail "socket file left behind"

# ---- read-only ----
"$NBD_TEST_SERVER" --read-only --listen "unix:$sock" "$img" >"$tmp/ro.out" 2>"$tmp/ro.err" &
ro_pid=$!
cleanup_fn kill_quiet "$ro_pid"
wait_for --pid "$ro_pid" --show "$tmp/ro.err" 10 "the read-only server's ready line" \
    complete_line "$tmp/ro.out" '^ready' >/dev/null
[ "$(nbdinfo --json "$uri" | json_get 'j["exports"][0]["is_read_only"]')" = true ] || fail "read-only flag"
if qemu-io -f raw "$uri" -c 'write -P 0x66 0 4k' >"$tmp/ro.qemu" 2>&1 &&
    ! grep -qi 'error\|denied\|read-only\|failed' "$tmp/ro.qemu"; then
    fail "write to a read-only export succeeded"
fi
cmp -n 4096 "$img" <(head -c 4096 /dev/zero | tr '\0' '\253') >/dev/null || fail "read-only write changed data"
kill -TERM "$ro_pid"
wait "$ro_pid" || fail "read-only server exit"

# ---- TCP, ephemeral port ----
cp "$tmp/orig.img" "$img"
start_server "127.0.0.1:0"
case "$addr" in
    127.0.0.1:0 | 127.0.0.1:) fail "port 0 not resolved: $addr" ;;
    127.0.0.1:*) ;;
    *) fail "address: $addr" ;;
esac
turi="nbd://$addr"
[ "$(nbdinfo --json "$turi" | json_get 'j["exports"][0]["export-size"]')" = 67108864 ] ||
    fail "TCP size"
nbdcopy "$turi" "$tmp/tcp.img"
cmp "$tmp/orig.img" "$tmp/tcp.img" || fail "TCP nbdcopy out differs"
qemu_io "$turi" 'write -P 0x77 0 1M' 'write -f -P 0x78 1M 1M' 'discard 2M 1M' \
    'read -P 0x77 0 1M' 'read -P 0x78 1M 1M' 'read -P 0 2M 1M'
qemu-img compare -f raw -F raw "$img" "$turi" >/dev/null || fail "TCP qemu-img compare"
stop_server

echo "test-nbd-interop: OK"
