#!/usr/bin/env bash
# journal import of an ext4 image, then of a copy changed with debugfs: the copy becomes one
# new seq, a third identical import changes nothing, and both points restore byte-exact and
# fsck clean. Also with other codecs and block sizes, and a volume size mismatch is refused.
set -euo pipefail
source "$(dirname "$0")/functions.sh"

requires mkfs.ext4 debugfs e2fsck python3 cmp truncate "$TIDEMARK"

T() { "$TIDEMARK" "$@"; }
j=$tmp/journal

echo "== a 64 MiB ext4 image with a few files"
mkdir -p "$tmp/content/docs" "$tmp/content/data"
for i in 1 2 3; do
    printf 'file %d\nline two of file %d\n' "$i" "$i" >"$tmp/content/docs/note$i.txt"
done
echo "this file is removed in the copy" >"$tmp/content/docs/readme.txt"
python3 -c 'import os, sys; open(sys.argv[1], "wb").write(os.urandom(3 << 20))' \
    "$tmp/content/data/blob.bin"
truncate -s 64M "$tmp/base.img"
mkfs.ext4 -q -F -d "$tmp/content" "$tmp/base.img"
e2fsck -fn "$tmp/base.img" >/dev/null || fail "the test image itself is not clean"

echo "== import it"
out=$(T journal import --journal "$j" --name fs1 --json "$tmp/base.img")
echo "$out"
[ "$(json_get 'j["volume"]' <<<"$out")" = fs1 ] || fail "import: volume: $out"
[ "$(json_get 'j["seq"]' <<<"$out")" = 0 ] || fail "first import: expected seq 0: $out"
[ "$(json_get 'j["blocks_changed"] > 0' <<<"$out")" = true ] || fail "first import: $out"
# Zero blocks are skipped: far fewer than the 16384 blocks of 4 KiB.
[ "$(json_get 'j["blocks_changed"] < 8192' <<<"$out")" = true ] ||
    fail "first import did not skip zero blocks: $out"

echo "== change a copy with debugfs: add a file, remove one"
cp --sparse=always "$tmp/base.img" "$tmp/changed.img"
printf 'a new file, written after seq 0\n' >"$tmp/newfile.txt"
cat >"$tmp/debugfs.cmds" <<EOF
write $tmp/newfile.txt newfile.txt
rm /docs/readme.txt
EOF
debugfs -w -f "$tmp/debugfs.cmds" "$tmp/changed.img" >/dev/null 2>&1
e2fsck -fn "$tmp/changed.img" >/dev/null || fail "the changed image is not clean"
cmp -s "$tmp/base.img" "$tmp/changed.img" && fail "debugfs changed nothing"

out=$(T journal import --journal "$j" --name fs1 --json "$tmp/changed.img")
echo "$out"
[ "$(json_get 'j["seq"]' <<<"$out")" = 1 ] || fail "second import: expected seq 1: $out"
[ "$(json_get 'j["blocks_changed"] > 0' <<<"$out")" = true ] || fail "second import: $out"
changed=$(json_get 'j["blocks_changed"]' <<<"$out")

out=$(T journal import --journal "$j" --name fs1 --json "$tmp/changed.img")
echo "$out"
[ "$(json_get 'j["seq"]' <<<"$out")" = null ] || fail "same image again: expected seq null: $out"
[ "$(json_get 'j["blocks_changed"]' <<<"$out")" = 0 ] || fail "same image again: $out"

echo "== restore seq 0 and seq 1"
T restore --journal "$j" fs1 --seq 0 --output "$tmp/r0.img" >/dev/null
T restore --journal "$j" fs1 --seq 1 --output "$tmp/r1.img" >/dev/null
cmp "$tmp/r0.img" "$tmp/base.img" || fail "seq 0 differs from the original image"
cmp "$tmp/r1.img" "$tmp/changed.img" || fail "seq 1 differs from the changed copy"
[ "$(stat -c %s "$tmp/r0.img")" -eq $((64 << 20)) ] || fail "seq 0: wrong size"
[ "$(stat -c %s "$tmp/r1.img")" -eq $((64 << 20)) ] || fail "seq 1: wrong size"
e2fsck -fn "$tmp/r0.img" || fail "e2fsck on seq 0"
e2fsck -fn "$tmp/r1.img" || fail "e2fsck on seq 1"
debugfs -R "cat /newfile.txt" "$tmp/r1.img" 2>/dev/null | cmp - "$tmp/newfile.txt" ||
    fail "seq 1: /newfile.txt"
debugfs -R "cat /docs/readme.txt" "$tmp/r0.img" 2>/dev/null | cmp - "$tmp/content/docs/readme.txt" ||
    fail "seq 0: /docs/readme.txt"
echo "ok: seq 0 = original, seq 1 = changed copy ($changed blocks), both fsck clean"

echo "== points --json"
points=$(T points --journal "$j" fs1 --json)
echo "$points"
python3 - "$points" <<'EOF' || fail "points --json: $points"
import json, re, sys
p = json.loads(sys.argv[1])
assert p["format"] == 1, p
assert p["volume"] == "fs1", p
assert p["first"]["seq"] == 0 and p["latest"]["seq"] == 1, p
assert p["bookmarks"] == [], p
rfc = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")
for k in ("first", "latest"):
    assert isinstance(p[k]["seq"], int), p
    assert rfc.match(p[k]["time"]), p[k]["time"]
assert p["first"]["time"] <= p["latest"]["time"], p
assert "flushes" not in p, "flushes without --flushes"
EOF
T points --journal "$j" fs1 --json --flushes | json_get 'j["flushes"]' | grep -qx '\[\]' ||
    fail "points --flushes: expected an empty flushes list (imports have no flushes)"

echo "== refused: a different image size or block size"
cp --sparse=always "$tmp/changed.img" "$tmp/small.img"
truncate -s 32M "$tmp/small.img"
msg=$(expect_fail_oneline T journal import --journal "$j" --name fs1 "$tmp/small.img")
echo "ok: size mismatch: $msg"
msg=$(expect_fail_oneline T journal import --journal "$j" --name fs1 --block-size 8192 \
    "$tmp/base.img")
echo "ok: block size mismatch: $msg"
msg=$(expect_fail_oneline T journal import --journal "$j" --name fs1 "$tmp/nosuch.img")
echo "ok: missing image: $msg"
T points --journal "$j" fs1 --json | json_get 'j["latest"]["seq"]' | grep -qx 1 ||
    fail "a refused import added a seq"

echo "== a volume whose size is not a multiple of the block size"
python3 -c 'import os, sys; open(sys.argv[1], "wb").write(os.urandom(3 * 4096 + 512))' \
    "$tmp/odd.img"
T journal import --journal "$j" --name odd "$tmp/odd.img"
rm -f "$tmp/r.img"
T restore --journal "$j" odd --latest --output "$tmp/r.img" >/dev/null
cmp "$tmp/r.img" "$tmp/odd.img" || fail "a 3.5-block volume does not restore byte-exact"
rm -f "$tmp/r.img"
head -c 1000 "$tmp/odd.img" >"$tmp/odd1000.img"
msg=$(expect_fail_oneline T journal import --journal "$j" --name odd2 "$tmp/odd1000.img")
echo "ok: an image of 1000 bytes (not whole sectors) is refused: $msg"

echo "== other codecs and block sizes"
for variant in zstd:4096 igzip:4096 none:65536 zstd:512; do
    codec=${variant%:*} bs=${variant#*:}
    jv=$tmp/journal-$codec-$bs
    out=$(T journal import --journal "$jv" --name fs1 --codec "$codec" --block-size "$bs" \
        "$tmp/base.img")
    echo "$out"
    grep -q 'seq 0' <<<"$out" || fail "$variant: import output does not name seq 0: $out"
    T journal import --journal "$jv" --name fs1 "$tmp/changed.img"
    rm -f "$tmp/r0.img" "$tmp/r1.img"
    T restore --journal "$jv" fs1 --seq 0 --output "$tmp/r0.img" >/dev/null
    T restore --journal "$jv" fs1 --latest --output "$tmp/r1.img" >/dev/null
    cmp "$tmp/r0.img" "$tmp/base.img" || fail "$variant: seq 0 differs"
    cmp "$tmp/r1.img" "$tmp/changed.img" || fail "$variant: latest differs"
    T journal verify --journal "$jv" || fail "$variant: journal verify found problems"
    echo "ok: codec $codec, block size $bs"
    rm -rf "$jv"
done

echo "test-journal-import: OK"
