#!/usr/bin/env bash
# Bad input to restore, bookmark and points: each must fail with exactly one line on stderr
# and a non-zero exit, and none may change the journal or what its points restore to.
# Also: --force, --at with the journal's own times, other output formats, format floors.
set -euo pipefail
source "$(dirname "$0")/functions.sh"

requires python3 cmp sha256sum qemu-img "$TIDEMARK"

j=$tmp/journal
vsize=$((4 * 1024 * 1024))

# Three versions of a 4 MiB volume; v1 zeroes a block that v0 had, v2 changes part of one.
python3 - "$tmp" "$vsize" <<'EOF'
import os, sys
d, size, bs = sys.argv[1], int(sys.argv[2]), 4096
def make(name, blocks):
    with open(os.path.join(d, name), "wb") as f:
        f.truncate(size)
        for b, data in blocks.items():
            f.seek(b * bs)
            f.write(data)
fill = lambda x: bytes([x]) * bs
v0 = {0: fill(0x11), 5: fill(0x55), 100: bytes(range(256)) * 16, 1023: fill(0xff)}
v1 = dict(v0)
v1[5] = fill(0x56); v1[100] = bytes(bs); v1[200] = fill(0x20)
v2 = dict(v1)
v2[0] = fill(0x11)[:1000] + b"changed in v2" + fill(0x11)[1013:]
v2[512] = bytes(reversed(range(256))) * 16
make("v0.img", v0); make("v1.img", v1); make("v2.img", v2)
EOF

T() { "$TIDEMARK" "$@"; }

echo "== build a journal: 3 imports, a bookmark after each"
for i in 0 1 2; do
    out=$(T journal import --journal "$j" --name vm1 --json "$tmp/v$i.img")
    echo "$out"
    [ "$(json_get 'j["seq"]' <<<"$out")" = "$i" ] || fail "import v$i: expected seq $i: $out"
    T bookmark --journal "$j" vm1 "b$i"
done
T points --journal "$j" vm1
points=$(T points --journal "$j" vm1 --json)
[ "$(json_get '[(b["name"], b["seq"]) for b in j["bookmarks"]]' <<<"$points")" = \
  '[["b0", 0], ["b1", 1], ["b2", 2]]' ] || fail "points: bookmarks: $points"
first_time=$(json_get 'j["first"]["time"]' <<<"$points")
latest_time=$(json_get 'j["latest"]["time"]' <<<"$points")

T journal dump --journal "$j" >"$tmp/dump.before"
[ -s "$tmp/dump.before" ] || fail "journal dump printed nothing"
T journal dump --journal "$j" | cmp - "$tmp/dump.before" || fail "journal dump is not deterministic"

restore_bookmarks() { # JOURNAL SUMFILE: restores b0..b2 and writes their sha256 to SUMFILE
    local i
    : >"$2"
    for i in 0 1 2; do
        rm -f "$tmp/bm.img"
        T restore --journal "$1" vm1 --bookmark "b$i" --output "$tmp/bm.img" >/dev/null
        cmp "$tmp/bm.img" "$tmp/v$i.img" || fail "restore --bookmark b$i differs from v$i"
        echo "b$i $(sha256sum <"$tmp/bm.img")" >>"$2"
    done
    rm -f "$tmp/bm.img"
}
restore_bookmarks "$j" "$tmp/sums.before"
cat "$tmp/sums.before"

echo "== good points in time"
same() { # A B what
    [ "$(stat -c %s "$1")" -eq "$(stat -c %s "$2")" ] || fail "$3: size differs"
    cmp "$1" "$2" || fail "$3: content differs"
    echo "ok: $3"
}
for sel in "--seq 0:v0" "--seq 1:v1" "--seq 2:v2" "--latest:v2" \
           "--at $first_time:v0" "--at $latest_time:v2"; do
    rm -f "$tmp/p.img"
    # shellcheck disable=SC2086
    T restore --journal "$j" vm1 ${sel%:*} --output "$tmp/p.img" >/dev/null
    same "$tmp/p.img" "$tmp/${sel##*:}.img" "restore ${sel%:*}"
done
rm -f "$tmp/p.img"
now=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)
T restore --journal "$j" vm1 --at "$now" --output "$tmp/p.img" >/dev/null
same "$tmp/p.img" "$tmp/v2.img" "restore --at now (after the newest write: latest)"
rm -f "$tmp/p.img"
sleep 2  # now - 1s is after the newest write
T restore --journal "$j" vm1 --at -1s --output "$tmp/p.img" >/dev/null
same "$tmp/p.img" "$tmp/v2.img" "restore --at -1s (relative, after the newest write: latest)"
rm -f "$tmp/p.img"

echo "== bad input: one line on stderr, non-zero exit"
bad() { # what CMD...
    local what=$1 msg
    shift
    msg=$(expect_fail_oneline "$@")
    echo "ok: $what: $msg"
}
o=$tmp/out.img
bad "unknown volume"        T restore --journal "$j" nosuch --latest --output "$o"
bad "--at before seq 0"     T restore --journal "$j" vm1 --at 2000-01-01T00:00:00Z --output "$o"
bad "--at in the future"    T restore --journal "$j" vm1 --at 2999-01-01T00:00:00Z --output "$o"
bad "--at -15m (before seq 0)" T restore --journal "$j" vm1 --at -15m --output "$o"
bad "--at garbage"          T restore --journal "$j" vm1 --at not-a-time --output "$o"
bad "--at bad date"         T restore --journal "$j" vm1 --at 2024-13-45T99:00:00Z --output "$o"
msg=$(expect_fail_oneline T restore --journal "$j" vm1 --at 2026-02-30T00:00:00Z --output "$o")
echo "ok: --at February 30: $msg"
# Any bad date is also before seq 0 or in the future once normalised, so only the message
# can show that it was rejected as a date rather than silently read as March 2.
! grep -q -- '-03-02' <<<"$msg" || fail "--at 2026-02-30 was read as 2026-03-02: $msg"
bad "unknown bookmark"      T restore --journal "$j" vm1 --bookmark nosuch --output "$o"
bad "--seq past the latest" T restore --journal "$j" vm1 --seq 999 --output "$o"
bad "--seq negative"        T restore --journal "$j" vm1 --seq -1 --output "$o"
bad "--seq not a number"    T restore --journal "$j" vm1 --seq abc --output "$o"
bad "no point selector"     T restore --journal "$j" vm1 --output "$o"
bad "two point selectors"   T restore --journal "$j" vm1 --seq 1 --latest --output "$o"
bad "unknown --format"      T restore --journal "$j" vm1 --latest --format bogus --output "$o"
bad "output under a missing directory" \
                            T restore --journal "$j" vm1 --latest --output "$tmp/no/such/dir/x.img"
bad "output in /proc"       T restore --journal "$j" vm1 --latest --output /proc/x/y
[ ! -e "$o" ] || fail "a failed restore left $o behind"

printf 'precious data\n' >"$tmp/existing.img"
sum=$(sha256sum <"$tmp/existing.img")
bad "existing output without --force" \
    T restore --journal "$j" vm1 --latest --output "$tmp/existing.img"
[ "$(sha256sum <"$tmp/existing.img")" = "$sum" ] || fail "restore changed an existing output"

bad "missing journal dir"   T restore --journal "$tmp/nojournal" vm1 --latest --output "$o"
[ ! -e "$tmp/nojournal" ] || fail "restore created the missing journal dir"
bad "points: missing journal dir" T points --journal "$tmp/nojournal" vm1
[ ! -e "$tmp/nojournal" ] || fail "points created the missing journal dir"
bad "points: unknown volume" T points --journal "$j" nosuch
bad "dump: unknown volume"   T journal dump --journal "$j" nosuch
bad "bookmark: duplicate name" T bookmark --journal "$j" vm1 b0
bad "bookmark: unknown volume" T bookmark --journal "$j" nosuch b9
bad "bookmark: missing journal dir" T bookmark --journal "$tmp/nojournal" vm1 b9
[ ! -e "$tmp/nojournal" ] || fail "bookmark created the missing journal dir"

echo "== --help works everywhere"
for c in "" restore points bookmark journal "journal import" "journal replay" "journal dump" \
         "journal set-floors"; do
    # shellcheck disable=SC2086
    T $c --help >"$tmp/help.txt" || fail "tidemark $c --help: exit $?"
    [ -s "$tmp/help.txt" ] || fail "tidemark $c --help printed nothing"
done
echo "ok: --help"

echo "== --json errors: stdout gets {\"error\": {\"code\": C, \"message\": M}}"
for args in "restore --journal $j nosuch --latest --output $o" \
            "restore --journal $j vm1 --bookmark nosuch --output $o" \
            "bookmark --journal $j vm1 b0"; do
    # shellcheck disable=SC2086
    bad "--json $args" T $args --json
    python3 -c '
import json, sys
e = json.load(open(sys.argv[1]))["error"]
assert isinstance(e["message"], str) and e["message"], e
assert "code" in e, e
' "$tmp/last-stdout" || fail "--json $args: bad error object: $(cat "$tmp/last-stdout")"
    echo "ok: --json error object: $(cat "$tmp/last-stdout")"
done

echo "== format floors (on copies of the journal)"
cp -a "$j" "$tmp/j22"
T journal set-floors --journal "$tmp/j22" --read 99 --write 99
msg=$(expect_fail_oneline T restore --journal "$tmp/j22" vm1 --latest --output "$o")
echo "ok: read floor 99: restore: $msg"
grep -Eiq 'format|floor|version' <<<"$msg" || fail "read floor 99: message does not say why: $msg"
bad "read floor 99: bookmark" T bookmark --journal "$tmp/j22" vm1 b9
bad "read floor 99: points"   T points --journal "$tmp/j22" vm1
[ ! -e "$o" ] || fail "a refused restore left $o behind"

cp -a "$j" "$tmp/j12"
T journal set-floors --journal "$tmp/j12" --read 1 --write 99
T restore --journal "$tmp/j12" vm1 --latest --output "$o" >/dev/null
same "$o" "$tmp/v2.img" "write floor 99: restore still works"
rm -f "$o"
msg=$(expect_fail_oneline T bookmark --journal "$tmp/j12" vm1 b9)
echo "ok: write floor 99: bookmark refused: $msg"
bad "write floor 99: import" T journal import --journal "$tmp/j12" --name vm1 "$tmp/v0.img"
T restore --journal "$tmp/j12" vm1 --latest --output "$o" >/dev/null
same "$o" "$tmp/v2.img" "write floor 99: still v2 after the refused writes"
rm -rf "$o" "$tmp/j22" "$tmp/j12"

echo "== the journal is unchanged"
T journal dump --journal "$j" >"$tmp/dump.after"
diff -u "$tmp/dump.before" "$tmp/dump.after" || fail "journal dump changed"
restore_bookmarks "$j" "$tmp/sums.after"
diff -u "$tmp/sums.before" "$tmp/sums.after" || fail "bookmark restores changed"
echo "ok: dump and bookmark checksums as before"

echo "== --force overwrites, leaving no stale bytes"
python3 -c 'import sys; open(sys.argv[1], "wb").write(b"\xff" * (int(sys.argv[2]) + (1 << 20)))' \
    "$tmp/force.img" "$vsize"
T restore --journal "$j" vm1 --bookmark b1 --output "$tmp/force.img" --force >/dev/null
same "$tmp/force.img" "$tmp/v1.img" "--force over a larger file of 0xff"

echo "== other formats"
for fmt in qcow2 vmdk vhdx; do
    T restore --journal "$j" vm1 --bookmark b2 --format "$fmt" --output "$tmp/b2.$fmt" >/dev/null
    info=$(qemu-img info --output=json "$tmp/b2.$fmt")
    [ "$(json_get 'j["format"]' <<<"$info")" = "$fmt" ] || fail "$fmt: qemu-img info: $info"
    [ "$(json_get 'j["virtual-size"]' <<<"$info")" = "$vsize" ] || fail "$fmt: size: $info"
    if [ "$fmt" = qcow2 ]; then
        qemu-img check "$tmp/b2.$fmt" || fail "qcow2: qemu-img check"
    fi
    qemu-img compare -f raw -F "$fmt" "$tmp/v2.img" "$tmp/b2.$fmt" || fail "$fmt: compare"
    echo "ok: --format $fmt"
    rm -f "$tmp/b2.$fmt"
done

echo "test-restore-badinput: OK"
