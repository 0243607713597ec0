#!/usr/bin/env bash
# The bootable test image (issue 5, item 3): tests/lib/boot-image.sh builds a 64 MiB raw
# disk from Debian packages without root, and it boots under TCG through tests/lib/boot.sh:
#   1. the layout: boot.img's code in the MBR beside a partition table (ext4 at 1 MiB), the
#      payload in the filesystem, e2fsck clean;
#   2. a boot prints "TIDEMARK-BOOT-OK payload=<its sha256> written=none" and leaves the
#      disk byte-identical (the root is mounted read-only);
#   3. a /write-request flag put in with debugfs: the next boot copies it to
#      /data/guest-written, prints "TIDEMARK-WROTE sha256=... bytes=...", removes the flag,
#      and the filesystem is clean with that file in it;
#   4. the same disk served by nbdkit over a unix socket (as the tap will serve it) boots and
#      reports the written file;
#   5. the disk with its boot sector zeroed prints no marker: SeaBIOS says the boot failed,
#      and qemu is still running when it does (stopped then: boot_until);
#   6. the failure markers: no /sbin/init (the initramfs says so) and a zeroed ext4
#      superblock (GRUB says so), and qemu exits by itself both times.
# It does not need the tidemark binary.
set -euo pipefail
source "$(dirname "$0")/functions.sh"
source "$TM_SOURCE_ROOT/tests/lib/boot.sh"
export PATH=$PATH:/usr/sbin:/sbin

requires qemu-system-x86_64 timeout debugfs e2fsck sfdisk sha256sum cmp nbdkit
img=$tmp/disk.img
fs="$img?offset=1048576"
kill_quiet() { kill "$@" 2>/dev/null || true; }
sum() { sha256sum "$1" | cut -d' ' -f1; }
dbg() { debugfs -R "$1" "$fs" 2>/dev/null; }
expect_line() { # LOG LINE: LOG has exactly this console line
    tr -d '\r' <"$1" | grep -qxF "$2" || { show "$1"; fail "no line '$2' in $1"; }
}
expect_no() { # LOG PREFIX
    if tr -d '\r' <"$1" | grep -q "^$2"; then show "$1"; fail "unexpected '$2' line in $1"; fi
}
show() { echo "--- $1" >&2; tr -d '\r' <"$1" | tail -40 >&2; cat "$1.qemu" >&2 2>/dev/null || true; }
boot_ok() { # NAME DRIVE: boots, fails unless qemu exited by itself within the timeout
    local rc=0
    boot_image "$2" "$tmp/$1.log" "$boot_timeout_s" || rc=$?
    [ "$rc" -eq 0 ] || { show "$tmp/$1.log"; fail "$1: qemu exited $rc (124: timeout)"; }
    expect_no "$tmp/$1.log" TIDEMARK-BOOT-FAIL
    echo "$1: booted and powered off in $boot_seconds s under TCG"
}

echo "== build"
head -c 200000 /dev/urandom >"$tmp/payload"
t0=$EPOCHREALTIME
rc=0
"$TM_SOURCE_ROOT/tests/lib/boot-image.sh" --payload "$tmp/payload" "$img" || rc=$?
[ "$rc" -ne 77 ] || exit 77 # boot-image.sh said why (and under CI=true it exits 1)
[ "$rc" -eq 0 ] || fail "boot-image.sh exited $rc"
echo "built in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
payload=$(sum "$tmp/payload")

echo "== 1. layout"
[ "$(stat -c %s "$img")" -eq $((64 << 20)) ] || fail "the image is not 64 MiB"
cmp -n 440 "$img" /usr/lib/grub/i386-pc/boot.img || fail "the MBR code is not GRUB's boot.img"
[ "$(od -An -tx1 -j510 -N2 "$img" | tr -d ' ')" = 55aa ] || fail "no 55aa boot signature"
sfdisk -d "$img" >"$tmp/sfdisk"
grep -qE '^[^ ]+1 : start= +2048, size= +129024, type=83, bootable$' "$tmp/sfdisk" ||
    { cat "$tmp/sfdisk" >&2; fail "partition 1 is not ext4 (83) at 1 MiB to the end, bootable"; }
[ "$(grep -c ' : start=' "$tmp/sfdisk")" -eq 1 ] || fail "more than one partition"
# The core image's first sector is GRUB's diskboot.img with the sector count filled in.
cmp -n 500 -i 512:0 "$img" /usr/lib/grub/i386-pc/diskboot.img ||
    fail "sector 1 does not start with GRUB's diskboot.img"
dbg "cat /data/payload" >"$tmp/payload.in"
cmp "$tmp/payload" "$tmp/payload.in" || fail "/data/payload differs from the payload given"
for f in /boot/vmlinuz /boot/initrd.gz /sbin/init /bin/sh; do
    dbg "stat $f" | grep -q '^Inode:' || fail "no $f in the filesystem"
done
e2fsck -fn "$fs" >"$tmp/fsck" 2>&1 || { cat "$tmp/fsck" >&2; fail "e2fsck -fn after the build"; }
echo "ok: boot.img + partition table, diskboot at sector 1, ext4 at 1 MiB, payload $payload"

echo "== 2. boot: the marker, and the disk unchanged"
cp "$img" "$tmp/before.img"
boot_ok boot1 "$img"
expect_line "$tmp/boot1.log" "TIDEMARK-BOOT-OK payload=$payload written=none"
expect_no "$tmp/boot1.log" TIDEMARK-WROTE
cmp "$img" "$tmp/before.img" || fail "a boot without a write request changed the disk"
echo "ok: $(boot_marker "$tmp/boot1.log" TIDEMARK-BOOT-OK)"

echo "== 3. write request"
{ echo "tidemark write request $$"; head -c 150000 /dev/urandom; } >"$tmp/flag"
flag=$(sum "$tmp/flag")
debugfs -w -R "write $tmp/flag write-request" "$fs" >"$tmp/debugfs.out" 2>&1
dbg "stat /write-request" | grep -q '^Inode:' ||
    { cat "$tmp/debugfs.out" >&2; fail "debugfs did not write /write-request"; }
boot_ok boot2 "$img"
expect_line "$tmp/boot2.log" "TIDEMARK-BOOT-OK payload=$payload written=none"
expect_line "$tmp/boot2.log" "TIDEMARK-WROTE sha256=$flag bytes=$(stat -c %s "$tmp/flag")"
dbg "cat /data/guest-written" >"$tmp/written"
cmp "$tmp/flag" "$tmp/written" || fail "/data/guest-written is not the flag's copy"
if dbg "stat /write-request" | grep -q '^Inode:'; then fail "the guest left /write-request"; fi
if dbg "stat /data/guest-written.tmp" | grep -q '^Inode:'; then fail "a guest-written.tmp is left"; fi
e2fsck -fn "$fs" >"$tmp/fsck" 2>&1 || { cat "$tmp/fsck" >&2; fail "e2fsck -fn after the guest's write"; }
echo "ok: the guest wrote /data/guest-written ($flag), removed the flag, fs clean"

echo "== 4. boot over NBD (nbdkit file plugin, unix socket)"
sock=$tmp/nbd.sock
cp "$img" "$tmp/before.img"
# nbdkit writes its pid file once it accepts connections (the socket exists a little earlier).
nbdkit -f -U "$sock" -P "$tmp/nbdkit.pid" file "$img" 2>"$tmp/nbdkit.err" &
nbdkit_pid=$!
cleanup_fn kill_quiet "$nbdkit_pid"
wait_for --pid "$nbdkit_pid" --show "$tmp/nbdkit.err" 10 "nbdkit to listen on $sock" \
    test -s "$tmp/nbdkit.pid"
boot_ok boot3 "nbd:unix:$sock"
expect_line "$tmp/boot3.log" "TIDEMARK-BOOT-OK payload=$payload written=$flag"
expect_no "$tmp/boot3.log" TIDEMARK-WROTE
kill "$nbdkit_pid"
wait "$nbdkit_pid" 2>/dev/null || true
cmp "$img" "$tmp/before.img" || fail "a boot over NBD without a write request changed the disk"
echo "ok: $(boot_marker "$tmp/boot3.log" TIDEMARK-BOOT-OK)"

echo "== 5. boot sector zeroed: no marker, SeaBIOS reports the failed boot"
cp "$img" "$tmp/zeroed.img"
dd if=/dev/zero of="$tmp/zeroed.img" bs=512 count=1 conv=notrunc status=none
rc=0
# Stopped at SeaBIOS's line rather than after a fixed 20 s, which a loaded machine may need
# just to get that far (a qemu that ends by itself first: rc 125).
boot_until "$tmp/zeroed.img" "$tmp/zeroed.log" 'Boot failed|No bootable device' \
    "$boot_timeout_s" || rc=$?
[ "$rc" -eq 0 ] ||
    { show "$tmp/zeroed.log"; fail "zeroed MBR: no 'Boot failed' from SeaBIOS (boot_until returned $rc)"; }
expect_no "$tmp/zeroed.log" TIDEMARK-
echo "ok: zeroed MBR: no marker; after $boot_seconds s: $(complete_line "$tmp/zeroed.log" \
    'Boot failed|No bootable device' | grep -oE 'Boot failed[^.]*|No bootable device' | head -1)"

echo "== 6. failure markers"
cp "$img" "$tmp/noinit.img"
debugfs -w -R "rm /sbin/init" "$tmp/noinit.img?offset=1048576" >/dev/null 2>&1
boot_ok_failing() { # NAME DRIVE LINE: qemu exits by itself and the log has LINE
    local rc=0
    boot_image "$2" "$tmp/$1.log" "$boot_timeout_s" || rc=$?
    [ "$rc" -eq 0 ] || { show "$tmp/$1.log"; fail "$1: qemu exited $rc (124: timeout)"; }
    expect_line "$tmp/$1.log" "$3"
    expect_no "$tmp/$1.log" TIDEMARK-BOOT-OK
    echo "ok: $1: '$3', qemu exited after $boot_seconds s"
}
boot_ok_failing noinit "$tmp/noinit.img" \
    "TIDEMARK-BOOT-FAIL stage=initramfs reason=no /sbin/init on /dev/vda1"
cp "$img" "$tmp/nosb.img"
dd if=/dev/zero of="$tmp/nosb.img" bs=1024 seek=1025 count=1 conv=notrunc status=none
boot_ok_failing nosb "$tmp/nosb.img" "TIDEMARK-BOOT-FAIL stage=grub reason=boot failed"

echo "test-boot-image: OK"
