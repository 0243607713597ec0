#!/usr/bin/env bash
# tidemark protect with real NBD clients (issue 3, item 4): a 64 MiB volume that already
# holds data (seq 0 = the import); qemu-io writes patterns in 5 rounds (sub-4K, unaligned to
# the journal block, overlapping, concurrent aio, FUA, discard, write -z), a bookmark and a
# copy of the backing after each; every bookmark restores to its copy, seq 0 to the original.
# nbdinfo shows size, block sizes and base:allocation; nbdcopy and qemu-img convert copy in
# and out byte-exact.
set -euo pipefail
source "$(dirname "$0")/functions.sh"
source "$TM_SOURCE_ROOT/tests/lib/protect.sh"

requires qemu-io qemu-img nbdinfo nbdcopy python3 cmp cp "$TIDEMARK"

T() { "$TIDEMARK" "$@"; }
vol=$tmp/vm1.img
j=$tmp/journal
sock=$tmp/nbd.sock
uri="nbd+unix:///vm1?socket=$sock"

# A volume with data: random first 8 MiB, scattered random pieces, holes elsewhere.
python3 - "$vol" <<'PY'
import os, random, sys
r = random.Random(3)
M = 1 << 20
with open(sys.argv[1], "wb") as f:
    f.truncate(64 * M)
    f.write(r.randbytes(8 * M))
    for off in (12 * M + 512, 20 * M, 33 * M + 4096, 47 * M - 3072, 64 * M - 8192):
        f.seek(off)
        f.write(r.randbytes(min(r.choice((512, 4096, 69632, 8192)), 64 * M - off)))
PY
cp --sparse=always "$vol" "$tmp/orig.img"

echo "== protect (imports the volume as seq 0)"
start_protect "$vol" "$j" "$sock" --name vm1
cat "$protect_out"
grep -q '^protecting vm1 .* from seq 0$' "$protect_out" || fail "ready line: $(cat "$protect_out")"
[ "$(json_get 'j["volume"]' <"$j/daemon.json")" = vm1 ] || fail "daemon.json: $(cat "$j/daemon.json")"
[ "$(json_get 'j["pid"]' <"$j/daemon.json")" = "$protect_pid" ] || fail "daemon.json pid"

echo "== nbdinfo"
info=$(nbdinfo --json "$uri")
e() { json_get "j[\"exports\"][0]$1" <<<"$info"; }
[ "$(e '["export-size"]')" = 67108864 ] || fail "size: $info"
[ "$(e '["block_size_minimum"]')" = 512 ] || fail "min block size: $info"
[ "$(e '["block_size_preferred"]')" = 4096 ] || fail "preferred block size: $info"
[ "$(e '["block_size_maximum"]')" = 33554432 ] || fail "max block size: $info"
[ "$(e '["contexts"]' | python3 -c 'import json,sys; print("base:allocation" in json.load(sys.stdin))')" = True ] ||
    fail "base:allocation: $info"
for f in can_flush can_fua can_trim can_zero; do
    [ "$(e "[\"$f\"]")" = true ] || fail "$f: $info"
done
# The empty export name maps to the one volume.
[ "$(nbdinfo --size "nbd+unix:///?socket=$sock")" = 67108864 ] || fail "empty export name"
echo "ok: nbdinfo: 64 MiB, 512/4096/33554432, base:allocation"

# nbdcopy out equals the backing (and the original: nothing written yet).
nbdcopy "$uri" "$tmp/out0.img"
cmp "$tmp/out0.img" "$tmp/orig.img" || fail "nbdcopy out differs from the original volume"
rm -f "$tmp/out0.img"

rounds=(
    # 1: aligned and sub-4K 512-aligned writes, one across a 4 KiB boundary
    'write -P 0x11 0 1M|write -P 0x12 5M 4k|write -P 0x13 1536 512|write -P 0x14 10485248 3584|write -P 0x15 12582400 1024'
    # 2: overlapping, concurrent aio (in flight together), FUA, flush
    'write -P 0x21 512k 1M|write -P 0x22 1M 64k|aio_write -P 0x23 2M 128k|aio_write -P 0x24 2162688 128k|aio_write -P 0x25 2M 4608|aio_flush|write -f -P 0x26 30M 8k|flush'
    # 3: a discard over imported data, sub-4K into the hole, write zeroes (allocating and at the end)
    'discard 4M 4M|write -P 0x31 6M 512|write -z 20M 2M|write -z 67107328 1024|write -P 0x32 4194816 2560'
    # 4: a large write, a write across a block boundary, overlapping sub-block writes
    'write -P 0x41 32M 8M|write -P 0x42 7336448 1024|write -P 0x43 32M 512|write -P 0x44 33555968 1536|write -P 0x45 40M 3M'
    # 5: write zeroes with unmap, an unaligned discard, the last MiB, FUA on a sub-block write
    'write -z -u 0 512k|discard 8389120 7168|write -P 0x51 63M 1M|write -f -P 0x52 1048064 512|flush'
)
n=0
for r in "${rounds[@]}"; do
    n=$((n + 1))
    echo "== round $n"
    IFS='|' read -r -a cmds <<<"$r"
    printf '   %s\n' "${cmds[@]}"
    qemu_io "$uri" "${cmds[@]}"
    T bookmark --journal "$j" vm1 "r$n"
    cp --sparse=always "$vol" "$tmp/ref-$n.img"
done

echo "== points while protect runs"
points=$(T points --journal "$j" vm1 --json)
echo "$points"
[ "$(json_get '[b["name"] for b in j["bookmarks"]]' <<<"$points")" = '["r1", "r2", "r3", "r4", "r5"]' ] ||
    fail "bookmarks: $points"
[ "$(json_get 'j["first"]["seq"]' <<<"$points")" = 0 ] || fail "first seq: $points"

echo "== restore every bookmark (while protect runs) and compare with the copy taken then"
for ((i = 1; i <= n; i++)); do
    rm -f "$tmp/r.img"
    T restore --journal "$j" vm1 --bookmark "r$i" --output "$tmp/r.img" >/dev/null
    qemu-img compare -q -f raw -F raw "$tmp/ref-$i.img" "$tmp/r.img" || fail "bookmark r$i: qemu-img compare differs"
    cmp "$tmp/ref-$i.img" "$tmp/r.img" || fail "bookmark r$i: cmp differs"
    echo "ok: r$i"
done
rm -f "$tmp/r.img"
T restore --journal "$j" vm1 --seq 0 --output "$tmp/s0.img" >/dev/null
cmp "$tmp/s0.img" "$tmp/orig.img" || fail "seq 0 differs from the original volume"
echo "ok: seq 0 = the original volume"
rm -f "$tmp/s0.img"
T restore --journal "$j" vm1 --latest --output "$tmp/latest.img" >/dev/null
cmp "$tmp/latest.img" "$vol" || fail "latest differs from the backing"
rm -f "$tmp/latest.img"

echo "== nbdcopy out, qemu-img convert in, nbdcopy in"
nbdcopy "$uri" "$tmp/out.img"
cmp "$tmp/out.img" "$vol" || fail "nbdcopy out differs from the backing"
cmp "$tmp/out.img" "$tmp/ref-$n.img" || fail "nbdcopy out differs from the last copy"
rm -f "$tmp/out.img"
# A random image with zero runs (qemu-img and nbdcopy may send those as zero/trim requests).
python3 - "$tmp/rand1.img" "$tmp/rand2.img" <<'PY'
import random, sys
M = 1 << 20
for seed, path in enumerate(sys.argv[1:]):
    r = random.Random(seed + 10)
    data = bytearray(r.randbytes(64 * M))
    runs = [(r.randrange(0, 60 * M) // 512 * 512, r.choice((512, 4096, 102400, 2 * M)))
            for _ in range(6)] + [(16 * M, 3 * M), (40 * M + 512, 65536)]
    for off, ln in runs:
        data[off:off + ln] = bytes(ln)
    open(path, "wb").write(bytes(data))
PY
[ "$(stat -c %s "$tmp/rand1.img")" = 67108864 ] || fail "test bug: rand1 size"
qemu-img convert -n -f raw -O raw "$tmp/rand1.img" "$uri"
T bookmark --journal "$j" vm1 converted
T restore --journal "$j" vm1 --latest --output "$tmp/latest.img" >/dev/null
cmp "$tmp/latest.img" "$tmp/rand1.img" || fail "latest after qemu-img convert differs from the image"
cmp "$vol" "$tmp/rand1.img" || fail "backing after qemu-img convert differs from the image"
rm -f "$tmp/latest.img"
echo "ok: qemu-img convert in"
nbdcopy "$tmp/rand2.img" "$uri"
T restore --journal "$j" vm1 --latest --output "$tmp/latest.img" >/dev/null
cmp "$tmp/latest.img" "$tmp/rand2.img" || fail "latest after nbdcopy in differs from the image"
cmp "$vol" "$tmp/rand2.img" || fail "backing after nbdcopy in differs from the image"
rm -f "$tmp/latest.img"
echo "ok: nbdcopy in"

echo "== stop; the journal verifies and still restores every point"
stop_protect
cat "$protect_out"
T journal verify --journal "$j" vm1 || fail "journal verify"
for ((i = 1; i <= n; i++)); do
    rm -f "$tmp/r.img"
    T restore --journal "$j" vm1 --bookmark "r$i" --output "$tmp/r.img" >/dev/null
    cmp "$tmp/ref-$i.img" "$tmp/r.img" || fail "after stop: bookmark r$i differs"
done
rm -f "$tmp/r.img"
T restore --journal "$j" vm1 --bookmark converted --output "$tmp/r.img" >/dev/null
cmp "$tmp/r.img" "$tmp/rand1.img" || fail "after stop: bookmark converted differs"
echo "ok: all bookmarks after stop"

echo "test-protect-rounds: OK"
