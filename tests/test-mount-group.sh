#!/usr/bin/env bash
# Group mounts and group drills (issue #5 follow-up; docs/design.md#consistency-groups, docs/design.md#reads-of-the-past): `protect`
# serves two volumes as group vm1; qemu-io writes different data to each, bookmark b1, more
# writes.
# - `mount --group vm1 --bookmark b1` serves one export per member, named by the member, each
#   equal to that member's image from `restore --group vm1 --bookmark b1` (qemu-img compare,
#   cmp of an nbdcopy); --json gives the group's point and its members;
# - `--writable`: writes to both exports read back, each export has its own overlay; after the
#   mount stops, a restore of b1 is unchanged (cmp) and so are the protected volumes;
# - bad input: VOLUME with --group, an unknown group, neither: one-line errors, non-zero exit;
# - `drill start --group` / `drill list` / `points` (last drill of each member) / `drill stop`,
#   and --boot-check with a stand-in qemu-system-x86_64 that records its -drive options: the
#   first member boots, the other is attached after it;
# - the same group mount from a target, fed by a remote tap (--target).
set -euo pipefail
source "$(dirname "$0")/functions.sh"
source "$TM_SOURCE_ROOT/tests/lib/protect.sh"
source "$TM_SOURCE_ROOT/tests/lib/mount.sh"
source "$TM_SOURCE_ROOT/tests/lib/remote.sh"

requires qemu-io qemu-img nbdcopy python3 cmp "$TIDEMARK"

T() { "$TIDEMARK" "$@"; }
a=$tmp/a.img b=$tmp/b.img j=$tmp/journal sock=$tmp/nbd.sock msock=$tmp/m.sock
python3 - "$a" "$b" <<'PY'
import random, sys
r = random.Random(7)
M = 1 << 20
with open(sys.argv[1], "wb") as f:
    f.truncate(16 * M); f.write(r.randbytes(M))
with open(sys.argv[2], "wb") as f:
    f.truncate(8 * M); f.seek(4 * M); f.write(r.randbytes(M))
PY
cp "$a" "$tmp/a0.img"; cp "$b" "$tmp/b0.img"
group_args=(--name sda --volume "$b" --name sdb --group vm1)
uri() { echo "nbd+unix:///$1?socket=$2"; }  # EXPORT SOCK
chk() {  # WANT CMD...: a one-line error containing WANT
    local want=$1 msg
    shift
    msg=$(expect_fail_oneline "$@")
    case $msg in *"$want"*) ;; *) fail "$*: '$msg' lacks '$want'" ;; esac
}

echo "== protect group vm1 (sda, sdb); different writes to each; bookmark b1; more writes"
start_protect "$a" "$j" "$sock" "${group_args[@]}"
qemu_io "$(uri sda "$sock")" "write -P 0x11 0 1M" "write -P 0x12 9M 64k"
qemu_io "$(uri sdb "$sock")" "write -P 0x21 1M 1M" "write -z 4M 128k"
T bookmark --journal "$j" sda b1 >/dev/null
b1_seq=$(T points --journal "$j" sdb --json | json_get '[b["seq"] for b in j["bookmarks"] if b["name"] == "b1"][0]')
qemu_io "$(uri sda "$sock")" "write -P 0x13 0 512k"
qemu_io "$(uri sdb "$sock")" "write -P 0x22 2M 64k"
T restore --journal "$j" --group vm1 --bookmark b1 --output-dir "$tmp/r1" >/dev/null
cmp -s "$tmp/r1/sda.img" "$a" && fail "sda did not change after b1"
cmp -s "$tmp/r1/sdb.img" "$b" && fail "sdb did not change after b1"

echo "== mount --group at b1 while protect runs"
start_mount "$msock" --journal "$j" --group vm1 --bookmark b1
grep -qE "^mounted group vm1 \(sda, sdb\) at seq $b1_seq \(.*Z\) on unix:$msock, read-only$" \
    "$mount_out" || fail "ready line: $(cat "$mount_out")"
for v in sda sdb; do
    qemu-img compare -q -f raw -F raw "$(uri $v "$msock")" "$tmp/r1/$v.img" ||
        fail "$v: the group mount differs from restore --group"
    nbdcopy "$(uri $v "$msock")" "$tmp/c-$v.img"
    cmp "$tmp/c-$v.img" "$tmp/r1/$v.img" || fail "$v: nbdcopy of the export differs"
done
stop_mount
grep -qE '^unmounted group vm1: sda [0-9]+ reads .*; sdb [0-9]+ reads .*, 0 writes' "$mount_out" ||
    fail "final line: $(cat "$mount_out")"
echo "ok: each export equals its member restored at b1"

start_mount "$msock" --journal "$j" --group vm1 --bookmark b1 --json
ready=$(head -1 "$mount_out")
[ "$(json_get '[j["group"], j["point"]["seq"], [v["export"] for v in j["volumes"]],
               [v["size_bytes"] for v in j["volumes"]]]' <<<"$ready")" = \
  "[\"vm1\", $b1_seq, [\"sda\", \"sdb\"], [16777216, 8388608]]" ] || fail "--json ready: $ready"
stop_mount
[ "$(tail -1 "$mount_out" | json_get '[j["stopped"], [v["volume"] for v in j["volumes"]]]')" = \
  '["vm1", ["sda", "sdb"]]' ] || fail "--json final: $(tail -1 "$mount_out")"
echo "ok: --json ready and final lines"

echo "== --writable group mount"
cp "$a" "$tmp/a-live.img"; cp "$b" "$tmp/b-live.img"  # protect gets no writes from here on
start_mount "$msock" --journal "$j" --group vm1 --bookmark b1 --writable --overlay-dir "$tmp"
grep -q 'writable (changes are thrown away at exit)$' "$mount_out" || fail "ready: $(cat "$mount_out")"
qemu_io "$(uri sda "$msock")" "write -P 0x71 0 64k" "write -P 0x72 15M 4k" "discard 9M 64k"
qemu_io "$(uri sdb "$msock")" "write -P 0x81 0 64k" "write -P 0x82 1M 512"
qemu_io "$(uri sda "$msock")" "read -P 0x71 0 64k" "read -P 0x72 15M 4k" "read -P 0 9M 64k"
qemu_io "$(uri sdb "$msock")" "read -P 0x81 0 64k" "read -P 0x82 1M 512"
# Each member has an overlay of its own: the rest of each export is still b1.
cp "$tmp/r1/sda.img" "$tmp/wa.img"; cp "$tmp/r1/sdb.img" "$tmp/wb.img"
qemu_io "$tmp/wa.img" "write -P 0x71 0 64k" "write -P 0x72 15M 4k" "write -z 9M 64k"
qemu_io "$tmp/wb.img" "write -P 0x81 0 64k" "write -P 0x82 1M 512"
qemu-img compare -q -f raw -F raw "$(uri sda "$msock")" "$tmp/wa.img" || fail "writable sda"
qemu-img compare -q -f raw -F raw "$(uri sdb "$msock")" "$tmp/wb.img" || fail "writable sdb"
stop_mount
grep -qE '^unmounted group vm1: sda .*, 3 writes .*; sdb .*, 2 writes ' "$mount_out" ||
    fail "final line: $(cat "$mount_out")"
T restore --journal "$j" --group vm1 --bookmark b1 --output-dir "$tmp/r1b" >/dev/null
for v in sda sdb; do cmp "$tmp/r1b/$v.img" "$tmp/r1/$v.img" || fail "$v at b1 changed"; done
cmp "$a" "$tmp/a-live.img" || fail "the protected sda saw the mount's writes"
cmp "$b" "$tmp/b-live.img" || fail "the protected sdb saw the mount's writes"
echo "ok: writable group mount: writes read back, thrown away; b1 and the volumes unchanged"

echo "== bad input"
chk "not both" T mount --journal "$j" sda --group vm1 --latest --listen "unix:$msock"
chk "no group 'nope'" T mount --journal "$j" --group nope --latest --listen "unix:$msock"
chk "give a VOLUME or --group G" T mount --journal "$j" --latest --listen "unix:$msock"
chk "no bookmark" T mount --journal "$j" --group vm1 --bookmark nosuch --listen "unix:$msock"
chk "exactly one of" T mount --journal "$j" --group vm1 --listen "unix:$msock"
expect_fail_oneline T mount --journal "$j" --group vm1 --seq 0 --listen "unix:$msock" >/dev/null
rc=0
T mount --journal "$j" --group nope --latest --listen "unix:$msock" --json >"$tmp/err.json" \
    2>/dev/null || rc=$?
[ "$rc" -ne 0 ] || fail "--json error exit"
[ "$(json_get 'j["error"]["code"]' <"$tmp/err.json")" = not_found ] ||
    fail "--json error: $(cat "$tmp/err.json")"
chk "not both" T drill start --journal "$j" sda --group vm1 --latest
chk "no group 'nope'" T drill start --journal "$j" --group nope --latest --name bad
[ ! -e "$j/drills/bad.json" ] || fail "a failed drill start left a record"
echo "ok: one-line errors"

echo "== group drill: start, list, points, stop"
T drill start --journal "$j" --group vm1 --bookmark b1 --name gd1 --overlay-dir "$tmp" \
    >"$tmp/gd1.out"
grep -qE "^drill gd1 \(group vm1: sda, sdb at seq $b1_seq, .*\) started: writable exports sda, sdb on unix:.*/gd1.sock " \
    "$tmp/gd1.out" || fail "drill start: $(cat "$tmp/gd1.out")"
dsock=$j/drills/gd1.sock
qemu-img compare -q -f raw -F raw "$(uri sda "$dsock")" "$tmp/r1/sda.img" || fail "drill: sda"
qemu_io "$(uri sdb "$dsock")" "write -P 0x91 0 4k"
T drill list --journal "$j" | grep -qE '^gd1 +vm1\[sda,sdb\] +seq '"$b1_seq"' .* running ' ||
    fail "drill list: $(T drill list --journal "$j")"
[ "$(T drill list --journal "$j" sdb --json |
    json_get '[[d["name"], d["group"], d["volumes"], d["volume"], d["export"]] for d in j["drills"]]')" = \
  '[["gd1", "vm1", ["sda", "sdb"], "sda", "sda"]]' ] || fail "drill list --json"
for v in sda sdb; do
    [ "$(T points --journal "$j" $v --json | json_get 'j["last_drill"]["name"]')" = gd1 ] ||
        fail "points $v: last drill"
done
T status --journal "$j" | grep -q 'last drill: gd1' || fail "status: $(T status --journal "$j")"
[ "$(T drill stop --journal "$j" gd1 --json | json_get '[j["state"], j["writes"]]')" = \
  '["stopped", 1]' ] || fail "drill stop"
echo "ok: a group drill's round trip"

echo "== group drill --boot-check: the first member boots, the other is attached"
mkdir -p "$tmp/bin"
cat >"$tmp/bin/qemu-system-x86_64" <<'SH'
#!/bin/sh
log= d=
while [ $# -gt 0 ]; do
    case $1 in -serial) log=${2#file:}; shift ;; -drive) d="$d [$2]"; shift ;; esac
    shift
done
echo "drives:$d" >"$log"; echo "FAKE-BOOT-OK" >>"$log"; exit 0
SH
chmod +x "$tmp/bin/qemu-system-x86_64"
PATH=$tmp/bin:$PATH T drill start --journal "$j" --group vm1 --latest --name gd2 --boot-check \
    --marker FAKE-BOOT-OK --timeout 30 --stop-after-check --json >"$tmp/gd2.json"
[ "$(json_get '[j["result"], j["state"]]' <"$tmp/gd2.json")" = '["pass", "stopped"]' ] ||
    fail "boot check: $(cat "$tmp/gd2.json")"
grep -qF "drives: [file=nbd:unix:$j/drills/gd2.sock:exportname=sda,format=raw,if=virtio,cache=none] [file=nbd:unix:$j/drills/gd2.sock:exportname=sdb,format=raw,if=virtio,cache=none]" \
    "$j/drills/gd2.console.log" || fail "qemu's drives: $(cat "$j/drills/gd2.console.log")"
echo "ok: boot check of a group drill: sda boots, sdb attached"
stop_protect

echo "== a group mount from a target (remote tap of the group)"
init_target "$tmp/tgt"
add_tenant "$target_conf" acme "$tmp/acme.token"
start_target "$target_conf"
cp "$tmp/a0.img" "$a"; cp "$tmp/b0.img" "$b"
tsock=$tmp/tap.sock
start_tap "$a" sda acme "$tmp/acme.token" "$tmp/state" "$tsock" --volume "$b" --name sdb --group vm1
R=(--target "$target_addr" --tenant acme --token-file "$tmp/acme.token" --ca "$target_ca")
qemu_io "$(uri sda "$tsock")" "write -P 0x41 1M 1M"
qemu_io "$(uri sdb "$tsock")" "write -P 0x42 2M 1M"
T bookmark --journal "$tmp/state" sdb rb1 >/dev/null  # in-band, through the tap
qemu_io "$(uri sda "$tsock")" "write -P 0x43 5M 4k"
stop_pid "$tap_pid"
T restore "${R[@]}" --group vm1 --bookmark rb1 --output-dir "$tmp/rr" >/dev/null
start_mount "$msock" "${R[@]}" --group vm1 --bookmark rb1
for v in sda sdb; do
    qemu-img compare -q -f raw -F raw "$(uri $v "$msock")" "$tmp/rr/$v.img" ||
        fail "remote: $v differs from restore --target --group"
done
stop_mount
chk "nope" T mount "${R[@]}" --group nope --latest --listen "unix:$msock"
echo "ok: a group mounted from a target equals its group restore"
echo "PASS"
