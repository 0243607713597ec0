#!/usr/bin/env bash
# Consistency groups (issue 4, item 5; docs/design.md#consistency-groups): one `protect` and one remote
# `tap` each serve two volumes as one group (one seq space). Writes go to both volumes; a
# bookmark taken through either volume is the group's; `restore --group G --output-dir DIR`
# gives every volume at that one seq, byte-equal to copies of both backings taken at the
# bookmark. A kill -9 during writes to both volumes: after restart both backings equal the
# group's latest point. Bad input: several volumes without --group, a member protected alone,
# another member order, --output with --group: one-line errors.
set -euo pipefail
source "$(dirname "$0")/functions.sh"
source "$TM_SOURCE_ROOT/tests/lib/protect.sh"
source "$TM_SOURCE_ROOT/tests/lib/remote.sh"

requires qemu-io cmp python3 fio "$TIDEMARK"

T() { "$TIDEMARK" "$@"; }
a=$tmp/a.img b=$tmp/b.img j=$tmp/journal sock=$tmp/nbd.sock
python3 - "$a" "$b" <<'PY'
import random, sys
r = random.Random(5)
M = 1 << 20
with open(sys.argv[1], "wb") as f:
    f.truncate(32 * M); f.write(r.randbytes(2 * M))
with open(sys.argv[2], "wb") as f:
    f.truncate(16 * M); f.seek(9 * M); f.write(r.randbytes(M))
PY
cp "$a" "$tmp/a0.img"; cp "$b" "$tmp/b0.img"
group_args=(--name sda --volume "$b" --name sdb --group vm1)
ua="nbd+unix:///sda?socket=$sock" ub="nbd+unix:///sdb?socket=$sock"

echo "== bad input"
expect_fail_oneline T protect --volume "$a" --volume "$b" --journal "$j" --listen "unix:$sock"
expect_fail_oneline T protect --volume "$a" --volume "$b" --name x --journal "$j" \
    --listen "unix:$sock" --group g
expect_fail_oneline T protect --volume "$a" --volume "$b" --name x --name x --journal "$j" \
    --listen "unix:$sock" --group g

echo "== protect a group of two"
start_protect "$a" "$j" "$sock" "${group_args[@]}"
grep -q '^protecting sda .* in group vm1 .* from seq 1$' "$protect_out" ||
    fail "ready line: $(cat "$protect_out")"
grep -q '^protecting sdb .* in group vm1 ' "$protect_out" || fail "ready line: $(cat "$protect_out")"

round() {  # round N: writes to both volumes, a bookmark through volume $2, copies
    local n=$1 via=$2
    qemu_io "$ua" "write -P $((n + 10)) $((n * 3))M 1M" "write -P $((n + 20)) 100k 4k"
    qemu_io "$ub" "write -P $((n + 30)) $((n * 2))M 512k" "write -z 9M 64k"
    T bookmark --journal "$j" "$via" "b$n" >/dev/null
    cp "$a" "$tmp/a$n.img"; cp "$b" "$tmp/b$n.img"
    qemu_io "$ua" "write -P 99 31M 4k"  # after the bookmark: not in it
    qemu_io "$ub" "write -P 98 15M 4k"
}
round 1 sda
round 2 sdb
T points --journal "$j" sdb --json | json_get '[b["name"] for b in j["bookmarks"]]' |
    grep -q '"b1", "b2"' || fail "sdb does not list the group's bookmarks"

echo "== group restores while protect runs"
for n in 1 2; do
    T restore --journal "$j" --group vm1 --bookmark "b$n" --output-dir "$tmp/r$n" >/dev/null
    cmp "$tmp/r$n/sda.img" "$tmp/a$n.img" || fail "sda at b$n differs from its copy"
    cmp "$tmp/r$n/sdb.img" "$tmp/b$n.img" || fail "sdb at b$n differs from its copy"
done
echo "ok: both bookmarks restore both volumes at one seq"
T restore --journal "$j" --group vm1 --seq 1 --output-dir "$tmp/r0" --json >"$tmp/r0.json"
cmp "$tmp/r0/sda.img" "$tmp/a0.img" || fail "sda at the group's first point"
cmp "$tmp/r0/sdb.img" "$tmp/b0.img" || fail "sdb at the group's first point"
[ "$(json_get 'len(j["volumes"])' <"$tmp/r0.json")" = 2 ] || fail "restore --json: $(cat "$tmp/r0.json")"
expect_fail_oneline T restore --journal "$j" --group vm1 --seq 0 --output-dir "$tmp/rx"
expect_fail_oneline T restore --journal "$j" --group vm1 --latest --output "$tmp/x.img"
expect_fail_oneline T restore --journal "$j" --group nope --latest --output-dir "$tmp/rx"
expect_fail_oneline T restore --journal "$j" --group vm1 --latest --output-dir "$tmp/r1"  # exists

echo "== kill -9 during writes to both volumes"
seq_before=$(T points --journal "$j" sda --json | json_get 'j["latest"]["seq"]')
for f in "$ua" "$ub"; do
    exp=${f#nbd+unix:///}; exp=${exp%%\?*}
    fio --name=w --ioengine=nbd --uri="$f" --rw=randwrite --bs=4k --iodepth=16 --size=8M \
        --time_based --runtime=30 --output=/dev/null >/dev/null 2>&1 &
done
# The kill comes once writes are flowing (not after a fixed 3 s, in which a loaded machine
# may not even have started fio).
writing() {
    [ "$(T points --journal "$j" sda --json | json_get 'j["latest"]["seq"]')" -ge $((seq_before + 200)) ]
}
wait_for 20 "fio's writes through protect (200 seqs)" writing
kill9_protect
wait 2>/dev/null || true
start_protect "$a" "$j" "$sock" "${group_args[@]}"
stop_protect
T restore --journal "$j" --group vm1 --latest --output-dir "$tmp/rl" >/dev/null
cmp "$tmp/rl/sda.img" "$a" || fail "sda: latest point differs from the backing after kill -9"
cmp "$tmp/rl/sdb.img" "$b" || fail "sdb: latest point differs from the backing after kill -9"
echo "ok: after kill -9 and restart, both backings equal the group's latest point"

echo "== members protected otherwise"
expect_fail_oneline T protect --volume "$a" --name sda --journal "$j" --listen "unix:$sock"
expect_fail_oneline T protect --volume "$b" --name sdb --volume "$a" --name sda --group vm1 \
    --journal "$j" --listen "unix:$sock"
expect_fail_oneline T protect --volume "$a" --name sda --volume "$b" --name sdb --group vm2 \
    --journal "$j" --listen "unix:$sock"

echo "== a remote tap with a group"
init_target "$tmp/tgt"
add_tenant "$target_conf" acme "$tmp/acme.token"
start_target "$target_conf"
cp "$tmp/a0.img" "$a"; cp "$tmp/b0.img" "$b"
tsock=$tmp/tap.sock
start_tap "$a" sda acme "$tmp/acme.token" "$tmp/state" "$tsock" --volume "$b" --name sdb --group vm1
grep -q '^tapping sdb .* in group vm1 ' "$tap_out" || fail "tap ready line: $(cat "$tap_out")"
R=(--target "$target_addr" --tenant acme --token-file "$tmp/acme.token" --ca "$target_ca")
ua="nbd+unix:///sda?socket=$tsock" ub="nbd+unix:///sdb?socket=$tsock"
qemu_io "$ua" "write -P 41 1M 1M"
qemu_io "$ub" "write -P 42 2M 1M"
T bookmark --journal "$tmp/state" sdb rb1 >/dev/null  # in-band, through the tap
cp "$a" "$tmp/ra1.img"; cp "$b" "$tmp/rb1.img"
qemu_io "$ua" "write -P 43 5M 4k"
stop_pid "$tap_pid"
T restore "${R[@]}" --group vm1 --bookmark rb1 --output-dir "$tmp/rr" >/dev/null
cmp "$tmp/rr/sda.img" "$tmp/ra1.img" || fail "remote: sda at rb1"
cmp "$tmp/rr/sdb.img" "$tmp/rb1.img" || fail "remote: sdb at rb1"
T restore "${R[@]}" --group vm1 --latest --output-dir "$tmp/rrl" >/dev/null
cmp "$tmp/rrl/sda.img" "$a" || fail "remote: sda latest"
cmp "$tmp/rrl/sdb.img" "$b" || fail "remote: sdb latest"
echo "ok: a tap ships a group; its group bookmark and latest restore from the target"
rc=0
timeout 60 "$TIDEMARK" tap --volume "$a" --name sda "${R[@]}" --listen "unix:$tmp/t2.sock" \
    --state "$tmp/state2" >"$tmp/t2.out" 2>"$tmp/t2.err" || rc=$?
{ [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ]; } || fail "a group member shipped alone: exit $rc"
grep -q 'belongs to group vm1' "$tmp/t2.err" || fail "refusal: $(cat "$tmp/t2.err")"
echo "ok: a group member shipped alone is refused: $(tail -1 "$tmp/t2.err")"
echo "PASS"
