#!/usr/bin/env bash
# restore --format qcow2|vmdk|vhdx (issue 5, item 4, last bullet): the boot image
# (tests/lib/boot-image.sh) with a /write-request flag, protected by `tidemark protect`; the
# guest boots through the tap and writes /data/guest-written; bookmark `after`. That point
# restored as raw, qcow2, vmdk and vhdx (protect still running):
# - `qemu-img check` accepts the qcow2, vmdk and vhdx images, `qemu-img info` names their
#   format, and `qemu-img compare` finds each equal to the raw restore;
# - each boots in qemu (-drive format=qcow2|vmdk|vhdx, -snapshot so the image stays as
#   restored): TIDEMARK-BOOT-OK with the payload's checksum and written=<the flag's>, no
#   second write (the flag is gone at that point).
set -euo pipefail
source "$(dirname "$0")/functions.sh"
source "$TM_SOURCE_ROOT/tests/lib/protect.sh"
source "$TM_SOURCE_ROOT/tests/lib/boot.sh"
export PATH=$PATH:/usr/sbin:/sbin

requires qemu-system-x86_64 qemu-img timeout debugfs sha256sum cmp "$TIDEMARK"
T() { "$TIDEMARK" "$@"; }
img=$tmp/vm.img
j=$tmp/journal
sock=$tmp/nbd.sock
sum() { sha256sum "$1" | cut -d' ' -f1; }
show() { echo "--- $1" >&2; tr -d '\r' <"$1" | tail -30 >&2; cat "$1.qemu" >&2 2>/dev/null || true; }

echo "== build, protect, boot through the tap (the guest writes), bookmark after"
head -c 70000 /dev/urandom >"$tmp/payload"
payload=$(sum "$tmp/payload")
rc=0
"$TM_SOURCE_ROOT/tests/lib/boot-image.sh" --payload "$tmp/payload" "$img" || rc=$?
[ "$rc" -ne 77 ] || exit 77 # boot-image.sh said why (and under CI=true it exits 1)
[ "$rc" -eq 0 ] || fail "boot-image.sh exited $rc"
{ echo "tidemark restore-formats write request $$"; head -c 50000 /dev/urandom; } >"$tmp/flag"
flag=$(sum "$tmp/flag")
debugfs -w -R "write $tmp/flag write-request" "$img?offset=1048576" >/dev/null 2>&1
start_protect "$img" "$j" "$sock" --name vm
rc=0
boot_image "nbd:unix:$sock:exportname=vm" "$tmp/tap.log" "$boot_timeout_s" || rc=$?
[ "$rc" -eq 0 ] || { show "$tmp/tap.log"; fail "boot through the tap: qemu exited $rc"; }
tr -d '\r' <"$tmp/tap.log" | grep -q "^TIDEMARK-WROTE sha256=$flag " ||
    { show "$tmp/tap.log"; fail "the guest did not write through the tap"; }
T bookmark --journal "$j" vm after >/dev/null

echo "== restore as raw, qcow2, vmdk, vhdx; qemu-img check, info, compare"
T restore --journal "$j" vm --bookmark after --output "$tmp/after.raw" >/dev/null
for f in qcow2 vmdk vhdx; do
    t0=$EPOCHREALTIME
    T restore --journal "$j" vm --bookmark after --output "$tmp/after.$f" --format "$f" >/dev/null
    t=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
    qemu-img check -f "$f" "$tmp/after.$f" >"$tmp/check.$f" 2>&1 ||
        { cat "$tmp/check.$f" >&2; fail "qemu-img check rejects the $f restore"; }
    grep -q "No errors were found on the image" "$tmp/check.$f" ||
        { cat "$tmp/check.$f" >&2; fail "qemu-img check $f: no 'No errors' line"; }
    [ "$(qemu-img info --output=json "$tmp/after.$f" | json_get 'j["format"]')" = "$f" ] ||
        fail "qemu-img info: $tmp/after.$f is not $f"
    qemu-img compare -q -f "$f" -F raw "$tmp/after.$f" "$tmp/after.raw" ||
        fail "the $f restore differs from the raw one"
    echo "ok: $f: restored in $t s, $(du -k "$tmp/after.$f" | cut -f1) KiB on disk; check, info, compare"
done

echo "== boot each format"
for f in qcow2 vmdk vhdx; do
    before=$(sum "$tmp/after.$f")
    rc=0
    BOOT_FORMAT=$f boot_image "$tmp/after.$f" "$tmp/$f.log" "$boot_timeout_s" -snapshot || rc=$?
    [ "$rc" -eq 0 ] || { show "$tmp/$f.log"; fail "$f: qemu exited $rc (124: timeout)"; }
    tr -d '\r' <"$tmp/$f.log" | grep -qxF "TIDEMARK-BOOT-OK payload=$payload written=$flag" ||
        { show "$tmp/$f.log"; fail "$f: no marker with written=<flag>"; }
    if tr -d '\r' <"$tmp/$f.log" | grep -qE '^TIDEMARK-(WROTE|BOOT-FAIL)'; then
        show "$tmp/$f.log"
        fail "$f: unexpected write or failure"
    fi
    [ "$(sum "$tmp/after.$f")" = "$before" ] || fail "$f: booting with -snapshot changed the image"
    echo "ok: $f boots ($boot_seconds s): $(tr -d '\r' <"$tmp/$f.log" | grep -m1 '^TIDEMARK-BOOT-OK')"
done

stop_protect
echo "test-restore-formats: OK"
