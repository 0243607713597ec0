#!/usr/bin/env bash
# The golden format-1 journal (tests/data/README.md, issue 13 decision 7): `journal dump`
# equals the recorded one; check, points and restore refuse it naming the upgrade; with the
# format-1 reader every seq of every volume restores to the recorded SHA-256; `journal
# upgrade` rewrites it as format 2, and every point of the upgraded journal restores to the
# same bytes.
source "$(dirname "$0")/functions.sh"
requires tar sha256sum
set -e
data=$TM_SOURCE_ROOT/tests/data
mkdir "$tmp/j"
tar -C "$tmp/j" -xzf "$data/journal-format1.tar.gz"
"$TIDEMARK" journal dump --journal "$tmp/j" >"$tmp/dump"
diff -u "$data/journal-format1.dump" "$tmp/dump" >&2 || fail "journal dump differs from the recorded one"
# Everything but dump and upgrade refuses format 1, in one line naming the upgrade.
for cmd in "journal check" "points" "restore"; do
    case $cmd in
    restore) args=(restore --journal "$tmp/j" disk --latest --output "$tmp/r.img") ;;
    points) args=(points --journal "$tmp/j" disk) ;;
    *) args=(journal check --journal "$tmp/j") ;;
    esac
    msg=$(expect_fail_oneline "$TIDEMARK" "${args[@]}")
    case $msg in *"format 1: run tidemark journal upgrade --journal $tmp/j"*) ;;
    *) fail "$cmd of a format-1 journal: $msg" ;; esac
done
[ ! -e "$tmp/r.img" ] || fail "a refused restore left its output"
echo "ok: format 1 refused by check, points and restore: $msg"
# The format-1 reader itself, as the unit suites use it ($TIDEMARK_JOURNAL_FORMAT=1):
# every seq of every volume restores to the recorded SHA-256.
TIDEMARK_JOURNAL_FORMAT=1 "$TIDEMARK" journal check --journal "$tmp/j" >"$tmp/verify.out" ||
    { cat "$tmp/verify.out" >&2; fail "journal check of the golden journal"; }
n=0
while read -r vol seq sum; do
    TIDEMARK_JOURNAL_FORMAT=1 "$TIDEMARK" restore --journal "$tmp/j" "$vol" --seq "$seq" \
        --output "$tmp/r.img" --force >/dev/null || fail "restore $vol seq $seq"
    got=$(sha256sum <"$tmp/r.img" | cut -d' ' -f1)
    [ "$got" = "$sum" ] || fail "$vol seq $seq: restore is $got, recorded $sum"
    n=$((n + 1))
done <"$data/journal-format1.points"
[ "$n" -ge 19 ] || fail "only $n points in journal-format1.points"
echo "ok: $n points of the golden format-1 journal restore to their recorded bytes"

# journal upgrade: format 2 beside it, checked, swapped in; the same points.
cp -a "$tmp/j" "$tmp/u"
"$TIDEMARK" journal upgrade --journal "$tmp/u" --json >"$tmp/up.json" || fail "journal upgrade"
json_field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$@"; }
[ "$(json_field "$tmp/up.json" upgraded)" = True ] || fail "upgrade: $(cat "$tmp/up.json")"
[ -d "$tmp/u.format1" ] || fail "the format-1 journal was not kept beside it"
[ ! -e "$tmp/u.upgrade" ] || fail "the upgrade left its working copy"
"$TIDEMARK" journal dump --journal "$tmp/u" | head -1 | grep -q "^meta version=2 read_floor=2 write_floor=2 " ||
    fail "the upgraded journal is not format 2: $("$TIDEMARK" journal dump --journal "$tmp/u" | head -1)"
"$TIDEMARK" journal verify --journal "$tmp/u" >/dev/null || fail "journal verify of the upgraded journal"
n=0
while read -r vol seq sum; do
    "$TIDEMARK" restore --journal "$tmp/u" "$vol" --seq "$seq" --output "$tmp/r.img" --force \
        >/dev/null || fail "upgraded: restore $vol seq $seq"
    got=$(sha256sum <"$tmp/r.img" | cut -d' ' -f1)
    [ "$got" = "$sum" ] || fail "upgraded: $vol seq $seq: restore is $got, recorded $sum"
    n=$((n + 1))
done <"$data/journal-format1.points"
# Bookmarks, flush markers and unordered intervals came along: the same points listed.
for vol in $(cut -d' ' -f1 "$data/journal-format1.points" | sort -u); do
    TIDEMARK_JOURNAL_FORMAT=1 "$TIDEMARK" points --journal "$tmp/j" "$vol" --json >"$tmp/p1.json"
    "$TIDEMARK" points --journal "$tmp/u" "$vol" --json >"$tmp/p2.json"
    cmp -s "$tmp/p1.json" "$tmp/p2.json" || {
        diff <(python3 -m json.tool "$tmp/p1.json") <(python3 -m json.tool "$tmp/p2.json") >&2
        fail "$vol: points differ after the upgrade"
    }
done
# The upgrade wrote its flush markers, bookmarks, unordered intervals and checkpoints as
# segment records too: an index rebuilt from the segments alone dumps the same.
"$TIDEMARK" journal dump --journal "$tmp/u" | grep -v '^meta ' >"$tmp/u.dump"
"$TIDEMARK" journal check --journal "$tmp/u" --rebuild-index >/dev/null ||
    fail "journal check --rebuild-index of the upgraded journal"
"$TIDEMARK" journal dump --journal "$tmp/u" | grep -v '^meta ' >"$tmp/u.rebuilt.dump"
diff -u "$tmp/u.dump" "$tmp/u.rebuilt.dump" >&2 || fail "the rebuilt index of the upgraded journal differs"
echo "ok: journal upgrade: $n points restore to the same bytes; points, bookmarks and flushes equal; a rebuilt index dumps the same"
# Again: nothing to do. Into a place where the old copy still is: refused in one line.
"$TIDEMARK" journal upgrade --journal "$tmp/u" | grep -q "format 2 already" || fail "second upgrade"
cp -a "$tmp/j" "$tmp/v"; mkdir "$tmp/v.format1"
msg=$(expect_fail_oneline "$TIDEMARK" journal upgrade --journal "$tmp/v")
case $msg in *"v.format1 exists"*) ;; *) fail "upgrade over a kept copy: $msg" ;; esac
msg=$(expect_fail_oneline "$TIDEMARK" journal upgrade --journal "$tmp/none")
echo "ok: upgrade refusals: $msg"
