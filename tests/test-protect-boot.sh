#!/usr/bin/env bash
# Restores proven bootable (issue 5, item 4, first bullet): the boot image
# (tests/lib/boot-image.sh) with a /write-request flag in it, protected by `tidemark protect`;
# bookmark `before`; the guest boots in qemu THROUGH THE TAP (nbd:unix:SOCK, export vm),
# prints "TIDEMARK-BOOT-OK payload=<sha> written=none" and, through the tap, copies the flag
# to /data/guest-written ("TIDEMARK-WROTE sha256=<flag's sha> ..."); bookmark `after`.
# Then both points are restored (while protect runs, and again after it stopped: the same
# bytes) and each restore boots (qemu -snapshot, so the image stays as restored):
#   before: written=none, and the guest writes again (its flag is still in that image);
#   after:  written=<flag's sha>, no write (the flag is gone).
# Both restores are e2fsck clean, `before` equals the image as built (seq 0, the import),
# and after stop `after` equals the backing (qemu-img compare; the guest wrote nothing later).
set -euo pipefail
source "$(dirname "$0")/functions.sh"
source "$TM_SOURCE_ROOT/tests/lib/protect.sh"
source "$TM_SOURCE_ROOT/tests/lib/boot.sh"
export PATH=$PATH:/usr/sbin:/sbin

requires qemu-system-x86_64 qemu-img timeout debugfs e2fsck sha256sum cmp "$TIDEMARK"
T() { "$TIDEMARK" "$@"; }
img=$tmp/vm.img
j=$tmp/journal
sock=$tmp/nbd.sock
sum() { sha256sum "$1" | cut -d' ' -f1; }
dbg() { debugfs -R "$2" "$1?offset=1048576" 2>/dev/null; } # IMG REQUEST
has() { dbg "$1" "stat $2" | grep -q '^Inode:'; }            # IMG PATH
show() { echo "--- $1" >&2; tr -d '\r' <"$1" | tail -40 >&2; cat "$1.qemu" >&2 2>/dev/null || true; }
expect_line() { # LOG LINE: LOG has exactly this console line
    tr -d '\r' <"$1" | grep -qxF "$2" || { show "$1"; fail "no line '$2' in $1"; }
}
expect_no() { # LOG PREFIX
    if tr -d '\r' <"$1" | grep -q "^$2"; then show "$1"; fail "unexpected '$2' line in $1"; fi
}
boot_ok() { # NAME DRIVE [QEMU_ARG...]: boots; fails unless qemu exited by itself in time
    local name=$1 drive=$2 rc=0
    shift 2
    boot_image "$drive" "$tmp/$name.log" "$boot_timeout_s" "$@" || rc=$?
    [ "$rc" -eq 0 ] || { show "$tmp/$name.log"; fail "$name: qemu exited $rc (124: timeout)"; }
    expect_no "$tmp/$name.log" TIDEMARK-BOOT-FAIL
    echo "$name: booted and powered off in $boot_seconds s under TCG"
}
fsck_clean() { # IMG WHAT
    e2fsck -fn "$1?offset=1048576" >"$tmp/fsck" 2>&1 || { cat "$tmp/fsck" >&2; fail "e2fsck -fn: $2"; }
}

echo "== build the boot image, with a write request in it"
head -c 100000 /dev/urandom >"$tmp/payload"
payload=$(sum "$tmp/payload")
rc=0
"$TM_SOURCE_ROOT/tests/lib/boot-image.sh" --payload "$tmp/payload" "$img" || rc=$?
[ "$rc" -ne 77 ] || exit 77 # boot-image.sh said why (and under CI=true it exits 1)
[ "$rc" -eq 0 ] || fail "boot-image.sh exited $rc"
{ echo "tidemark protect-boot write request $$"; head -c 120000 /dev/urandom; } >"$tmp/flag"
flag=$(sum "$tmp/flag")
flag_bytes=$(stat -c %s "$tmp/flag")
debugfs -w -R "write $tmp/flag write-request" "$img?offset=1048576" >"$tmp/debugfs.out" 2>&1
has "$img" /write-request || { cat "$tmp/debugfs.out" >&2; fail "debugfs did not write /write-request"; }
has "$img" /data/guest-written && fail "test bug: the fresh image has /data/guest-written"
fsck_clean "$img" "the built image"
cp --sparse=always "$img" "$tmp/built.img"
echo "ok: payload $payload, flag $flag ($flag_bytes bytes)"

echo "== protect; bookmark before"
start_protect "$img" "$j" "$sock" --name vm
cat "$protect_out"
T bookmark --journal "$j" vm before

echo "== boot through the tap: the guest writes"
boot_ok tap "nbd:unix:$sock:exportname=vm"
expect_line "$tmp/tap.log" "TIDEMARK-BOOT-OK payload=$payload written=none"
expect_line "$tmp/tap.log" "TIDEMARK-WROTE sha256=$flag bytes=$flag_bytes"
T bookmark --journal "$j" vm after
echo "ok: through the tap: $(boot_marker "$tmp/tap.log" TIDEMARK-WROTE)"
if cmp -s "$img" "$tmp/built.img"; then fail "the guest's write did not reach the backing"; fi

# check_before IMG / check_after IMG: the filesystem state at each point, without booting.
check_before() {
    cmp "$1" "$tmp/built.img" || fail "$1: before differs from the image as built"
    has "$1" /write-request || fail "$1: no /write-request at before"
    if has "$1" /data/guest-written; then fail "$1: /data/guest-written at before"; fi
}
check_after() {
    if has "$1" /write-request; then fail "$1: /write-request still there at after"; fi
    dbg "$1" "cat /data/guest-written" >"$tmp/written"
    cmp "$tmp/flag" "$tmp/written" || fail "$1: /data/guest-written is not the flag's copy"
    if has "$1" /data/guest-written.tmp; then fail "$1: guest-written.tmp left at after"; fi
    fsck_clean "$1" "$1 (after)"
}

echo "== restore before and after (protect running) and boot each"
T restore --journal "$j" vm --bookmark before --output "$tmp/r1.img" >/dev/null
T restore --journal "$j" vm --bookmark after --output "$tmp/r2.img" >/dev/null
check_before "$tmp/r1.img"
fsck_clean "$tmp/r1.img" "restored before"
check_after "$tmp/r2.img"
r1=$(sum "$tmp/r1.img")
r2=$(sum "$tmp/r2.img")

boot_ok r1 "$tmp/r1.img" -snapshot
expect_line "$tmp/r1.log" "TIDEMARK-BOOT-OK payload=$payload written=none"
# Its flag is still there, so that guest writes again (into the -snapshot overlay).
expect_line "$tmp/r1.log" "TIDEMARK-WROTE sha256=$flag bytes=$flag_bytes"
[ "$(sum "$tmp/r1.img")" = "$r1" ] || fail "booting before with -snapshot changed the image"
echo "ok: before: $(boot_marker "$tmp/r1.log" TIDEMARK-BOOT-OK), and it wrote again"

boot_ok r2 "$tmp/r2.img" -snapshot
expect_line "$tmp/r2.log" "TIDEMARK-BOOT-OK payload=$payload written=$flag"
expect_no "$tmp/r2.log" TIDEMARK-WROTE
[ "$(sum "$tmp/r2.img")" = "$r2" ] || fail "booting after with -snapshot changed the image"
echo "ok: after: $(boot_marker "$tmp/r2.log" TIDEMARK-BOOT-OK), no write"

echo "== stop; the same points restore to the same bytes; after = the backing"
stop_protect
cat "$protect_out"
T restore --journal "$j" vm --bookmark before --output "$tmp/s1.img" >/dev/null
T restore --journal "$j" vm --bookmark after --output "$tmp/s2.img" >/dev/null
cmp "$tmp/s1.img" "$tmp/r1.img" || fail "before restored after stop differs from the earlier restore"
cmp "$tmp/s2.img" "$tmp/r2.img" || fail "after restored after stop differs from the earlier restore"
qemu-img compare -q -f raw -F raw "$tmp/s2.img" "$img" || fail "after (restored) differs from the backing"
check_after "$img"
echo "ok: before = as built, after = the backing, both e2fsck clean"

echo "test-protect-boot: OK"
