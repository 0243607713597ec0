#!/usr/bin/env bash
# An ext4 filesystem made and filled through tidemark protect (issue 3, item 4):
# nbdfuse exposes the export as a file, losetup makes it a block device, mkfs.ext4 (which
# discards the whole device first) and mount. Three rounds of file changes, each ended by
# sync + fsfreeze (a clean, checkpointed filesystem) and a bookmark. Every bookmark restores
# to a filesystem that e2fsck -fn finds clean, holding exactly the files, with the sha256
# sums, recorded then. mkfs's whole-device discard is one range record, not one record per
# block, and the point right after it reads back as zeros where seq 0 had data.
set -euo pipefail
source "$(dirname "$0")/functions.sh"
source "$TM_SOURCE_ROOT/tests/lib/protect.sh"
export PATH=$PATH:/usr/sbin:/sbin

requires nbdfuse losetup mountpoint mkfs.ext4 e2fsck mount umount fsfreeze sha256sum python3 cmp \
    "$TIDEMARK"
[ "$(id -u)" -eq 0 ] || skip "needs root (losetup, mount)"
[ -c /dev/fuse ] || skip "no /dev/fuse"
losetup -f >/dev/null 2>&1 || skip "no free loop device"

T() { "$TIDEMARK" "$@"; }
quiet() { "$@" >/dev/null 2>&1; }
detach_ours() { # DEV FILE: detach DEV only if it is still the loop device of FILE
    losetup -j "$2" 2>/dev/null | grep -q "^$1:" && losetup -d "$1"
}
unmount_if() { mountpoint -q "$1" && umount -l "$1"; }
vol=$tmp/vm1.img
j=$tmp/journal
sock=$tmp/nbd.sock
uri="nbd+unix:///vm1?socket=$sock"
size=$((128 << 20))

# The volume holds old data before mkfs: random bytes at the start and in the last 16 MiB
# (seq 0), so that "the discard reads back as zeros" means something.
head -c 4M /dev/urandom >"$vol"
truncate -s "$size" "$vol"
dd if=/dev/urandom of="$vol" bs=1M seek=112 count=16 conv=notrunc status=none
cp --sparse=always "$vol" "$tmp/orig.img"

start_protect "$vol" "$j" "$sock" --name vm1
cat "$protect_out"

echo "== nbdfuse + losetup"
mkdir "$tmp/fuse" "$tmp/mnt"
nbdfuse "$tmp/fuse/disk" "$uri" 2>"$tmp/nbdfuse.err" &
fuse_pid=$!
cleanup_fn kill_quiet "$fuse_pid"
cleanup_fn unmount_if "$tmp/fuse"
fuse_ready() { [ "$(stat -c %s "$tmp/fuse/disk" 2>/dev/null)" = "$size" ]; }
wait_for --pid "$fuse_pid" --show "$tmp/nbdfuse.err" 10 "nbdfuse's $tmp/fuse/disk of $size bytes" \
    fuse_ready
dev=$(losetup -f --show "$tmp/fuse/disk")
cleanup_fn detach_ours "$dev" "$tmp/fuse/disk"
echo "loop device: $dev"

echo "== mkfs.ext4 (discards the whole device)"
before_mkfs=$(T points --journal "$j" vm1 --json | json_get 'j["latest"]["seq"]')
mkfs.ext4 -q -F -L tm-test "$dev"
cleanup_fn unmount_if "$tmp/mnt"
mount "$dev" "$tmp/mnt"

# round N: changes, then sync, freeze, bookmark bN, record the files' sums, thaw.
record() {
    local n=$1
    sync
    fsfreeze -f "$tmp/mnt"
    T bookmark --journal "$j" vm1 "b$n" || { fsfreeze -u "$tmp/mnt"; fail "bookmark b$n"; }
    (cd "$tmp/mnt" && find . -path ./lost+found -prune -o -type f -print0 | sort -z |
        xargs -0 sha256sum) >"$tmp/sums-$n"
    fsfreeze -u "$tmp/mnt"
    echo "-- b$n: $(wc -l <"$tmp/sums-$n") files"
    sed 's/^/   /' "$tmp/sums-$n"
}
rnd() { dd if=/dev/urandom of="$1" bs=1M count="$2" status=none; }

echo "== round 1: new files"
mkdir "$tmp/mnt/dir"
rnd "$tmp/mnt/a.bin" 3
rnd "$tmp/mnt/b.bin" 2
rnd "$tmp/mnt/dir/c.bin" 1
echo "hello round 1" >"$tmp/mnt/hello.txt"
record 1

echo "== round 2: a new file, a deletion, a partial overwrite, an append"
rnd "$tmp/mnt/d.bin" 4
rm "$tmp/mnt/b.bin"
dd if=/dev/urandom of="$tmp/mnt/a.bin" bs=4k seek=100 count=50 conv=notrunc status=none
dd if=/dev/urandom bs=1k count=300 status=none >>"$tmp/mnt/dir/c.bin"
echo "hello round 2" >"$tmp/mnt/hello.txt"
record 2

echo "== round 3: a directory removed, a file replaced, a new one"
rm -r "$tmp/mnt/dir"
rnd "$tmp/mnt/d.bin" 2
rnd "$tmp/mnt/e.bin" 5
dd if=/dev/urandom of="$tmp/mnt/a.bin" bs=512 seek=7 count=3 conv=notrunc status=none
record 3

echo "== unmount, detach, stop"
umount "$tmp/mnt"
losetup -d "$dev"
umount "$tmp/fuse"
wait "$fuse_pid" || true
stop_protect
cat "$protect_out"
T journal verify --journal "$j" vm1 || fail "journal verify"
T restore --journal "$j" vm1 --latest --output "$tmp/latest.img" >/dev/null
cmp "$tmp/latest.img" "$vol" || fail "restore --latest differs from the backing"
rm -f "$tmp/latest.img"

echo "== restore each bookmark: e2fsck -fn clean, every file as recorded"
for n in 1 2 3; do
    img=$tmp/b$n.img
    T restore --journal "$j" vm1 --bookmark "b$n" --output "$img" >/dev/null
    e2fsck -fn "$img" >"$tmp/fsck-$n" 2>&1 || { cat "$tmp/fsck-$n" >&2; fail "b$n: e2fsck -fn"; }
    mkdir -p "$tmp/ro$n"
    mount -o ro,loop,noload "$img" "$tmp/ro$n"
    cleanup_fn unmount_if "$tmp/ro$n"
    (cd "$tmp/ro$n" && find . -path ./lost+found -prune -o -type f -print0 | sort -z |
        xargs -0 sha256sum) >"$tmp/rsums-$n"
    umount "$tmp/ro$n"
    diff -u "$tmp/sums-$n" "$tmp/rsums-$n" || fail "b$n: files differ from those recorded"
    echo "ok: b$n: e2fsck clean, $(wc -l <"$tmp/sums-$n") files as recorded"
    rm -f "$img"
done

echo "== mkfs's whole-device discard"
T journal dump --journal "$j" vm1 >"$tmp/dump"
# The TRIM seq covering the whole volume: "seq ... seq=S ... op=2 ... extents=1 0+SIZE".
dseq=$(awk -v sz="$size" '$1 == "seq" && / op=2 / && $NF == "0+" sz {
    sub("seq=", "", $3); print $3; exit }' "$tmp/dump")
[ -n "$dseq" ] || { grep '^seq ' "$tmp/dump" | head -20 >&2; fail "no whole-device TRIM in the journal"; }
[ "$dseq" -gt "$before_mkfs" ] || fail "the whole-device TRIM seq $dseq is not after $before_mkfs"
echo "whole-device discard: seq $dseq"
grep -E "^range .* seq=$dseq " "$tmp/dump" || fail "no range record for seq $dseq"
nblk=$(grep -cE "^(block|zero-block) .* seq=$dseq( |$)" "$tmp/dump" || true)
echo "block records at seq $dseq: $nblk (of $((size / 4096)) blocks)"
[ "$nblk" -le 2 ] || fail "the whole-device discard wrote $nblk block records"
T restore --journal "$j" vm1 --seq "$dseq" --output "$tmp/d.img" >/dev/null
cmp -n "$size" "$tmp/d.img" /dev/zero || fail "seq $dseq (after the discard) does not read as zeros"
T restore --journal "$j" vm1 --seq $((dseq - 1)) --output "$tmp/d1.img" >/dev/null
cmp -s -i $((112 << 20)) "$tmp/d1.img" "$tmp/orig.img" -n $((16 << 20)) ||
    fail "seq $((dseq - 1)) (before the discard) lost seq 0's data at 112 MiB"
echo "ok: seq $((dseq - 1)) has the old data at 112 MiB, seq $dseq reads zeros everywhere"
# And the latest point still reads zeros in the last 16 MiB where mkfs and the files left
# nothing (each block whose newest version is the discard).
python3 - "$vol" "$tmp/orig.img" <<'PY' || fail "old data survived the discard in the latest point"
import sys
new, old = open(sys.argv[1], "rb"), open(sys.argv[2], "rb")
new.seek(112 << 20); old.seek(112 << 20)
bad = 0
for i in range(4096):
    a, b = new.read(4096), old.read(4096)
    if a == b and a != bytes(4096):
        bad += 1
print("latest, last 16 MiB: %d of 4096 blocks still hold seq 0's data" % bad)
sys.exit(1 if bad else 0)
PY
rm -f "$tmp/d.img" "$tmp/d1.img"

echo "test-protect-ext4: OK"
