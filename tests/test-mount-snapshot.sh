#!/usr/bin/env bash
# tidemark mount (issue #5, item 1): virtual snapshots served over NBD straight from the
# journal while `protect` keeps running on it.
# - qemu-io writes patterns in 4 rounds through protect, a bookmark and a copy of the backing
#   after each; each bookmark mounted read-only equals its copy (qemu-img compare, cmp of an
#   nbdcopy), so does seq 0 the original volume;
# - nbdinfo --map: ranges never written are hole,zero, written ones data;
# - two nbdcopy readers at once get the same bytes;
# - a read-only mount refuses writes (qemu-io fails; a raw WRITE/TRIM gets EPERM);
# - a --writable mount takes writes (aligned, sub-chunk, unaligned, discard, write -z) and
#   reads them back, the protected volume and the journal never see them (points --json
#   while protect runs; journal dump with protect stopped; every bookmark restores as
#   before), and the overlay is gone after the mount stops;
# - bad input: one-line errors, non-zero exits, --json error objects.
set -euo pipefail
source "$(dirname "$0")/functions.sh"
source "$TM_SOURCE_ROOT/tests/lib/protect.sh"
source "$TM_SOURCE_ROOT/tests/lib/mount.sh"

requires qemu-io qemu-img nbdinfo nbdcopy python3 cmp cp "$TIDEMARK"

T() { "$TIDEMARK" "$@"; }
raw=$TM_SOURCE_ROOT/tests/lib/nbd_raw.py
vol=$tmp/vm1.img
j=$tmp/journal
sock=$tmp/protect.sock
msock=$tmp/mount.sock
muri="nbd+unix:///vm1?socket=$msock"

# 64 MiB: random first 8 MiB, a piece at 20 MiB; 48-64 MiB is never written by anyone.
python3 - "$vol" <<'PY'
import random, sys
r = random.Random(5)
M = 1 << 20
with open(sys.argv[1], "wb") as f:
    f.truncate(64 * M)
    f.write(r.randbytes(8 * M))
    f.seek(20 * M + 512)
    f.write(r.randbytes(70000 // 512 * 512))
PY
cp --sparse=always "$vol" "$tmp/orig.img"

echo "== protect, 4 rounds of writes with a bookmark and a copy after each"
start_protect "$vol" "$j" "$sock" --name vm1
puri="nbd+unix:///vm1?socket=$sock"
rounds=(
    'write -P 0x11 0 1M|write -P 0x12 5M 4k|write -P 0x13 1536 512|write -P 0x14 10485248 3584'
    'write -P 0x21 512k 1M|aio_write -P 0x22 2M 128k|aio_write -P 0x23 2162688 4608|aio_flush|write -f -P 0x24 30M 8k'
    'discard 4M 2M|write -P 0x31 6M 512|write -z 20M 2M|write -P 0x32 4194816 2560'
    'write -P 0x41 32M 8M|write -P 0x42 7336448 1024|write -z -u 0 512k|write -P 0x43 47M 1M'
)
n=0
for r in "${rounds[@]}"; do
    n=$((n + 1))
    IFS='|' read -r -a cmds <<<"$r"
    qemu_io "$puri" "${cmds[@]}"
    T bookmark --journal "$j" vm1 "r$n" >/dev/null
    cp --sparse=always "$vol" "$tmp/ref-$n.img"
done

echo "== mount each bookmark while protect runs; compare with its copy"
for ((i = 1; i <= n; i++)); do
    start_mount "$msock" --journal "$j" vm1 --bookmark "r$i"
    grep -qE "^mounted vm1 at seq [0-9]+ \(.*Z\) on unix:$msock, read-only$" "$mount_out" ||
        fail "ready line: $(cat "$mount_out")"
    qemu-img compare -q -f raw -F raw "$muri" "$tmp/ref-$i.img" || fail "r$i: qemu-img compare differs"
    stop_mount
    echo "ok: r$i"
done
start_mount "$msock" --journal "$j" vm1 --seq 0
nbdcopy "$muri" "$tmp/s0.img"
cmp "$tmp/s0.img" "$tmp/orig.img" || fail "seq 0 differs from the original volume"
stop_mount
rm -f "$tmp/s0.img"
echo "ok: seq 0 = the original volume"

echo "== nbdinfo --map, two readers at once, read-only refuses writes"
start_mount "$msock" --journal "$j" vm1 --bookmark r3 --json
[ "$(head -1 "$mount_out" | json_get 'j["point"]["seq"]')" = \
  "$(T points --journal "$j" vm1 --json | json_get '[b["seq"] for b in j["bookmarks"] if b["name"] == "r3"][0]')" ] ||
    fail "--json ready line: $(cat "$mount_out")"
map=$(nbdinfo --map --json "$muri")
python3 - "$map" <<'PY' || fail "nbdinfo --map: $map"
import json, sys
M = 1 << 20
m = json.loads(sys.argv[1])
def types(lo, hi):  # the types of the extents overlapping [lo, hi)
    return {e["type"] for e in m if e["offset"] < hi and e["offset"] + e["length"] > lo}
assert sum(e["length"] for e in m) == 64 * M, "the map does not cover the volume"
assert types(48 * M, 64 * M) == {3}, "never written: %s" % types(48 * M, 64 * M)
assert types(4 * M + 8192, 6 * M) == {3}, "discarded: %s" % types(4 * M + 8192, 6 * M)
assert types(20 * M, 22 * M) == {3}, "write -z: %s" % types(20 * M, 22 * M)
assert types(0, 4 * M) == {0}, "data: %s" % types(0, 4 * M)
assert types(30 * M, 30 * M + 8192) == {0}, "data at 30M"
PY
echo "ok: nbdinfo --map: holes and zeros where never written, discarded or zeroed"
nbdcopy "$muri" "$tmp/c1.img" & p1=$!
nbdcopy "$muri" "$tmp/c2.img" & p2=$!
wait "$p1" || fail "nbdcopy 1"
wait "$p2" || fail "nbdcopy 2"
cmp "$tmp/c1.img" "$tmp/ref-3.img" || fail "concurrent reader 1 differs"
cmp "$tmp/c2.img" "$tmp/ref-3.img" || fail "concurrent reader 2 differs"
rm -f "$tmp/c1.img" "$tmp/c2.img"
echo "ok: two nbdcopy readers at once"
if qemu-io -f raw "$muri" -c 'write -P 0x66 0 4k' >"$tmp/qio.out" 2>&1 &&
    ! grep -qiE 'read-only|not permitted|failed|error' "$tmp/qio.out"; then
    cat "$tmp/qio.out" >&2
    fail "qemu-io wrote to a read-only mount"
fi
out=$(python3 "$raw" ops "$msock" vm1 "write 0 4096 0x66" "trim 0 4096" "zero 0 4096" "read 0 4096")
[ "$(sed -n 1,3p <<<"$out" | tr '\n' ' ')" = "error 1 error 1 error 1 " ] || fail "raw writes: $out"
stop_mount
grep -q '"writes":0' "$mount_out" || fail "final line: $(cat "$mount_out")"
echo "ok: read-only mount: qemu-io fails, WRITE/TRIM/WRITE_ZEROES get EPERM"

echo "== --writable mount of r2 while protect runs"
points_before=$(T points --journal "$j" vm1 --json --flushes)
start_mount "$msock" --journal "$j" vm1 --bookmark r2 --writable --overlay-dir "$tmp"
grep -q 'writable (changes are thrown away at exit)$' "$mount_out" || fail "ready: $(cat "$mount_out")"
drill=(
    'write -P 0x71 1M 64k' 'write -P 0x72 3M 512' 'write -P 0x73 8387584 1024'
    'discard 2M 128k' 'write -z 30M 4k' 'write -P 0x74 50M 4M' 'write -P 0x75 67107840 512'
)
qemu_io "$muri" "${drill[@]}"
qemu_io "$muri" 'read -P 0x71 1M 64k' 'read -P 0x72 3M 512' 'read -P 0x73 8387584 1024' \
    'read -P 0 2M 128k' 'read -P 0 30M 4k' 'read -P 0x74 50M 4M' 'read -P 0x75 67107840 512'
# Everything else is still r2: build the expected image and compare the whole export.
cp "$tmp/ref-2.img" "$tmp/drill.img"
qemu_io "$tmp/drill.img" "${drill[@]}"
qemu-img compare -q -f raw -F raw "$muri" "$tmp/drill.img" || fail "writable mount differs from r2 + the drill's writes"
[ -z "$(find "$tmp" -maxdepth 1 -name 'tidemark-overlay-*')" ] || fail "the overlay file is visible"
stop_mount
grep -qE '^unmounted vm1: [0-9]+ reads .*, 7 writes \(.* overlay thrown away\)$' "$mount_out" ||
    fail "final line: $(cat "$mount_out")"
[ "$(T points --journal "$j" vm1 --json --flushes)" = "$points_before" ] || fail "points changed"
cmp "$vol" "$tmp/ref-4.img" || fail "the protected volume saw the drill's writes"
echo "ok: writable mount: writes read back, thrown away; points and the volume unchanged"

echo "== bad input"
chk() {  # WANT CMD...: a one-line error containing WANT
    local want=$1 msg
    shift
    msg=$(expect_fail_oneline "$@")
    case $msg in *"$want"*) ;; *) fail "$*: '$msg' lacks '$want'" ;; esac
}
chk "no volume" T mount --journal "$j" nosuch --latest --listen "unix:$msock"
chk "no bookmark" T mount --journal "$j" vm1 --bookmark nosuch --listen "unix:$msock"
chk "has no seq 99999" T mount --journal "$j" vm1 --seq 99999 --listen "unix:$msock"
chk "in the future" T mount --journal "$j" vm1 --at 2099-01-01T00:00:00Z --listen "unix:$msock"
chk "exactly one of --at" T mount --journal "$j" vm1 --latest --seq 1 --listen "unix:$msock"
chk "exactly one of --at" T mount --journal "$j" vm1 --listen "unix:$msock"
chk "in use" T mount --journal "$j" vm1 --latest --listen "unix:$sock"
chk "listen" T mount --journal "$j" vm1 --latest
chk "exactly one of --journal" T mount vm1 --latest --listen "unix:$msock"
chk "power of two" T mount --journal "$j" vm1 --latest --writable --overlay-granularity 3000 \
    --listen "unix:$msock"
chk "$tmp/nojournal" T mount --journal "$tmp/nojournal" vm1 --latest --listen "unix:$msock"
rc=0
T mount --journal "$j" nosuch --latest --listen "unix:$msock" --json >"$tmp/err.json" 2>/dev/null || rc=$?
[ "$rc" -ne 0 ] || fail "--json error exit"
[ "$(json_get 'j["error"]["code"]' <"$tmp/err.json")" = not_found ] || fail "--json error: $(cat "$tmp/err.json")"
T mount --help | grep -q -- '--writable' || fail "--help"
[ ! -e "$msock" ] || fail "a failed mount left its socket"
echo "ok: bad input"

echo "== protect stopped: a writable mount leaves the journal byte-for-byte as it was"
stop_protect
T journal dump --journal "$j" >"$tmp/dump-before"
start_mount "$msock" --journal "$j" vm1 --latest --writable
qemu_io "$muri" 'write -P 0x99 0 8M' 'discard 16M 16M'
qemu_io "$muri" 'read -P 0x99 0 8M'
stop_mount
T journal dump --journal "$j" >"$tmp/dump-after"
cmp "$tmp/dump-before" "$tmp/dump-after" || fail "journal dump changed across a writable mount"
for ((i = 1; i <= n; i++)); do
    rm -f "$tmp/r.img"
    T restore --journal "$j" vm1 --bookmark "r$i" --output "$tmp/r.img" >/dev/null
    cmp "$tmp/r.img" "$tmp/ref-$i.img" || fail "after the drills: bookmark r$i differs"
done
cmp "$vol" "$tmp/ref-4.img" || fail "the volume changed"
echo "ok: journal dump unchanged, every bookmark restores as before"

echo "test-mount-snapshot: OK"
