#!/usr/bin/env bash
# The golden format-1 journal (tests/data/README.md, issue 13 decision 7) reads: `journal
# verify` passes, `journal dump` equals the recorded one, and every seq of every volume
# restores to the recorded SHA-256. Once format 2 lands, this is where `journal upgrade` is
# checked against the same points.
source "$(dirname "$0")/functions.sh"
requires tar sha256sum
set -e
data=$TM_SOURCE_ROOT/tests/data
mkdir "$tmp/j"
tar -C "$tmp/j" -xzf "$data/journal-format1.tar.gz"
"$TIDEMARK" journal verify --journal "$tmp/j" >"$tmp/verify.out" ||
    { cat "$tmp/verify.out" >&2; fail "journal verify of the golden journal"; }
"$TIDEMARK" journal dump --journal "$tmp/j" >"$tmp/dump"
diff -u "$data/journal-format1.dump" "$tmp/dump" >&2 || fail "journal dump differs from the recorded one"
n=0
while read -r vol seq sum; do
    "$TIDEMARK" restore --journal "$tmp/j" "$vol" --seq "$seq" --output "$tmp/r.img" --force \
        >/dev/null || fail "restore $vol seq $seq"
    got=$(sha256sum <"$tmp/r.img" | cut -d' ' -f1)
    [ "$got" = "$sum" ] || fail "$vol seq $seq: restore is $got, recorded $sum"
    n=$((n + 1))
done <"$data/journal-format1.points"
[ "$n" -ge 19 ] || fail "only $n points in journal-format1.points"
echo "ok: $n points of the golden format-1 journal restore to their recorded bytes"
