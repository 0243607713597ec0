#!/usr/bin/env bash
# The `make demo` main job on a local journal, no root needed:
# protect a small ext4 image, change files in it, and restore it as it was before and after.
#   usage: tools/demo.sh TIDEMARK_BIN        (work dir: $DEMO_DIR, default next to the build)
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 TIDEMARK_BIN" >&2
    exit 2
fi
tm=$(realpath "$1")
[ -x "$tm" ] || { echo "demo: $1 is not an executable; run 'make build' first" >&2; exit 1; }
for c in mkfs.ext4 debugfs e2fsck cmp truncate; do
    PATH=$PATH:/usr/sbin:/sbin command -v "$c" >/dev/null ||
        { echo "demo: '$c' not found (install e2fsprogs and diffutils)" >&2; exit 1; }
done
export PATH=$PATH:/usr/sbin:/sbin

# Work dir: next to a meson build dir (git ignores build*/), else ./demo-work.
bindir=$(dirname "$tm")
if [ -z "${DEMO_DIR:-}" ] && [ -d "$bindir/../meson-private" ]; then
    DEMO_DIR=$(realpath "$bindir/..")/demo-work
fi
w=$(realpath -m "${DEMO_DIR:-demo-work}")
rm -rf "$w"
mkdir -p "$w"
cd "$w"
j=journal

if [ -t 1 ]; then b=$'\e[1m' g=$'\e[32m' r=$'\e[31m' n=$'\e[0m'; else b= g= r= n=; fi
step() { printf '\n%s== %s%s\n' "$b" "$*" "$n"; }
run() { printf '$ %s\n' "$*"; "$@"; }
tidemark() { printf '$ tidemark %s\n' "$*"; "$tm" "$@"; }
trap 'rc=$?; [ $rc -eq 0 ] || printf "\n%sdemo FAILED%s (exit %d; work dir kept: %s)\n" "$r" "$n" $rc "$w"' EXIT
check() { # what CMD...: runs a check quietly, prints ok or FAILED
    local what=$1
    shift
    if "$@" >/dev/null 2>&1; then
        printf '  %sok%s      %s\n' "$g" "$n" "$what"
    else
        printf '  %sFAILED%s  %s\n' "$r" "$n" "$what"
        failed=1
    fi
}
show() { # IMG CMD: a debugfs request, without debugfs's banner and blank lines
    debugfs -R "$2" "$1" 2>/dev/null | sed '/^$/d'
}
has_files() { # IMG NAME|!NAME...: names present (or absent) in the root directory
    local img=$1 listing f
    shift
    # debugfs exits 0 even when a file is missing, so look at what it lists.
    listing=$(debugfs -R "ls -p /" "$img" 2>/dev/null | cut -d/ -f6)
    for f in "$@"; do
        if [ "${f#!}" != "$f" ]; then
            ! grep -qxF "${f#!}" <<<"$listing" || return 1
        else
            grep -qxF "$f" <<<"$listing" || return 1
        fi
    done
}
failed=0
start=$EPOCHREALTIME

step "1. A small ext4 disk image with a few files (mkfs.ext4 -d, no root)"
mkdir -p "files/etc"
printf 'Hello from tidemark.\nThis is version 1 of this file.\n' >"files/hello.txt"
printf 'Q3 numbers: 17, 42, 99\n' >"files/report.txt"
printf 'listen = 0.0.0.0:8080\nworkers = 4\n' >"files/etc/app.conf"
truncate -s 32M "disk.img"
run mkfs.ext4 -q -F -L demo -d "files" "disk.img"
show "disk.img" "ls -l /"

step "2. Protect it: import the image into a journal (its content becomes seq 0)"
tidemark journal import --journal "$j" --name disk "disk.img"
tidemark bookmark --journal "$j" disk before

step "3. Change the disk: edit hello.txt, delete report.txt, add new.txt (debugfs -w)"
cp --sparse=always "disk.img" "disk-changed.img"
printf 'Hello from tidemark.\nThis is version 2: edited after the bookmark.\n' >"hello-v2.txt"
printf 'Written after the bookmark.\n' >"new.txt"
cat >"changes.debugfs" <<EOF
rm /hello.txt
write hello-v2.txt hello.txt
rm /report.txt
write new.txt new.txt
EOF
cat "changes.debugfs"
debugfs -w -f "changes.debugfs" "disk-changed.img" >/dev/null 2>&1

step "4. Record the change: import the changed image (changed blocks = one new seq)"
tidemark journal import --journal "$j" --name disk "disk-changed.img"
tidemark bookmark --journal "$j" disk after

step "5. Points in time"
tidemark points --journal "$j" disk

step "6. Restore both bookmarks"
tidemark restore --journal "$j" disk --bookmark before --output "restored-before.img"
tidemark restore --journal "$j" disk --bookmark after --output "restored-after.img"

step "7. What changed: the root directory, before and after"
echo "-- before:"
show "restored-before.img" "ls -l /"
echo "-- after:"
show "restored-after.img" "ls -l /"
echo "-- hello.txt before:"
show "restored-before.img" "cat /hello.txt"
echo "-- hello.txt after:"
show "restored-after.img" "cat /hello.txt"

step "8. Checks"
check "e2fsck -fn: restored 'before' is a clean filesystem" e2fsck -fn "restored-before.img"
check "e2fsck -fn: restored 'after' is a clean filesystem" e2fsck -fn "restored-after.img"
check "cmp: 'before' equals the original image byte for byte" \
    cmp "restored-before.img" "disk.img"
check "cmp: 'after' equals the changed image byte for byte" \
    cmp "restored-after.img" "disk-changed.img"
check "'before' has report.txt, and no new.txt" \
    has_files "restored-before.img" report.txt '!new.txt'
check "'after' has new.txt, and no report.txt" \
    has_files "restored-after.img" new.txt '!report.txt'
check "hello.txt is version 1 before, version 2 after" bash -c '
    [ "$(debugfs -R "cat /hello.txt" "$1" 2>/dev/null)" = "$(cat "$3")" ] &&
    [ "$(debugfs -R "cat /hello.txt" "$2" 2>/dev/null)" = "$(cat "$4")" ]' _ \
    "restored-before.img" "restored-after.img" "files/hello.txt" "hello-v2.txt"

elapsed=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
[ "$failed" -eq 0 ] || exit 1
printf '\n%sdemo OK%s in %ss. Journal and images are in %s\n' "$g" "$n" "$elapsed" "$w"
