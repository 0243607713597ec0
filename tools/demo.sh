#!/usr/bin/env bash
# The `make demo` main job: protect a small ext4 image with `tidemark protect`, mount it
# through the tap (nbdfuse + losetup + mount), change files at different moments with a
# bookmark at each, restore an earlier point while protection runs, and show what the
# restored filesystem holds next to the live one.
# Without root, /dev/fuse, a free loop device or nbdfuse, it falls back (and says so) to
# the import-based demo: the same story told with `journal import` of changed images.
#   usage: tools/demo.sh TIDEMARK_BIN        (work dir: $DEMO_DIR, default next to the build;
#                                             DEMO_LIVE=0 forces the import-based demo)
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

import_demo() {
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
}

# ---- the live demo: protect + nbdfuse + losetup + mount ----
live_pids=()
live_cleanup() {
    set +e
    mountpoint -q mnt 2>/dev/null && { fsfreeze -u mnt 2>/dev/null; umount -l mnt; }
    [ -n "${loopdev:-}" ] && losetup -j fuse/disk 2>/dev/null | grep -q "^$loopdev:" &&
        losetup -d "$loopdev"
    mountpoint -q fuse 2>/dev/null && umount -l fuse
    local p
    for p in "${live_pids[@]}"; do kill "$p" 2>/dev/null; done
}
live_possible() { # prints why not, returns 1, if the live demo cannot run here
    [ "${DEMO_LIVE:-1}" != 0 ] || { echo "DEMO_LIVE=0"; return 1; }
    [ "$(id -u)" -eq 0 ] || { echo "not root (losetup and mount need it)"; return 1; }
    [ -c /dev/fuse ] || { echo "no /dev/fuse"; return 1; }
    local c
    for c in nbdfuse losetup mount umount mountpoint fsfreeze; do
        command -v "$c" >/dev/null || { echo "'$c' not found"; return 1; }
    done
    losetup -f >/dev/null 2>&1 || { echo "no free loop device"; return 1; }
}
wait_for() { # SECONDS WHAT CMD...: polls CMD every 0.1 s
    local n=$(($1 * 10)) what=$2 i
    shift 2
    for ((i = 0; i < n; i++)); do "$@" 2>/dev/null && return 0; sleep 0.1; done
    echo "demo: timed out waiting for $what" >&2
    return 1
}
moment() { # NAME: sync, freeze (a clean filesystem), bookmark NAME, thaw
    run sync
    run fsfreeze -f mnt
    tidemark bookmark --journal "$j" disk "$1" || { fsfreeze -u mnt; return 1; }
    run fsfreeze -u mnt
}
names_sizes() { # IMG: "name size" for each regular file in the root directory
    debugfs -R "ls -l /" "$1" 2>/dev/null |
        awk '$2 ~ /^100/ { printf "%-12s %6s bytes\n", $NF, $(NF - 3) }'
}
side_by_side() { # LEFT-TITLE LEFT-FILE RIGHT-TITLE RIGHT-FILE
    printf '  %-40s | %s\n' "$1" "$3"
    printf '  %-40s | %s\n' "----------------------------------------" "----------------------------------------"
    awk -v L="$2" -v R="$4" 'BEGIN {
        while ((getline l < L) > 0) left[++nl] = l
        while ((getline r < R) > 0) right[++nr] = r
        n = nl > nr ? nl : nr
        for (i = 1; i <= n; i++) printf "  %-40s | %s\n", left[i], right[i] }'
}

live_demo() {
    local sock=$w/nbd.sock uri
    uri="nbd+unix:///disk?socket=$sock"

    step "1. A small ext4 disk image with a few files (mkfs.ext4 -d)"
    mkdir -p "files/etc"
    printf 'Hello from tidemark.\nThis is version 1 of this file.\n' >"files/hello.txt"
    printf 'Q3 numbers: 17, 42, 99\n' >"files/report.txt"
    printf 'listen = 0.0.0.0:8080\nworkers = 4\n' >"files/etc/app.conf"
    truncate -s 32M "disk.img"
    run mkfs.ext4 -q -F -L demo -d "files" "disk.img"
    cp --sparse=always disk.img disk-original.img
    show "disk.img" "ls -l /"

    step "2. Monday: protect it (tidemark protect serves it over NBD, journals every write)"
    printf '$ tidemark protect --volume disk.img --journal %s --listen unix:%s --name disk &\n' "$j" "$sock"
    "$tm" protect --volume disk.img --journal "$j" --listen "unix:$sock" --name disk \
        >protect.out 2>protect.err &
    live_pids+=($!)
    # Its socket appears only when it is ready (docs/design.md#readiness): wait for it.
    printf '$ while [ ! -S %s ]; do sleep 0.1; done\n' "$sock"
    wait_for 60 "protect's socket" test -S "$sock" ||
        { cat protect.out protect.err >&2; return 1; }
    wait_for 10 "protect's ready line" grep -q '^protecting ' protect.out
    sed 's/^/  /' protect.out
    tidemark bookmark --journal "$j" disk monday

    step "3. Mount it through the tap: nbdfuse (NBD as a file) + losetup + mount"
    mkdir -p fuse mnt
    printf '$ nbdfuse fuse/disk %s &\n' "$uri"
    nbdfuse fuse/disk "$uri" 2>nbdfuse.err &
    live_pids+=($!)
    wait_for 10 "nbdfuse" test -s fuse/disk || { cat nbdfuse.err >&2; return 1; }
    loopdev=$(losetup -f --show fuse/disk)
    echo "$ losetup -f --show fuse/disk  ->  $loopdev"
    run mount "$loopdev" mnt

    step "4. Tuesday: edit hello.txt, add notes.txt (writes go through the tap)"
    printf 'Hello from tidemark.\nThis is version 2: edited on Tuesday.\n' >mnt/hello.txt
    printf 'Tuesday notes: ship it.\n' >mnt/notes.txt
    moment tuesday

    step "5. Wednesday: ransomware encrypts every file and deletes report.txt"
    local f
    for f in mnt/hello.txt mnt/notes.txt mnt/etc/app.conf; do
        { echo "ENCRYPTED - pay 1 BTC"; head -c 3000 /dev/urandom | base64 -w 64; } >"$f"
    done
    rm mnt/report.txt
    moment wednesday

    step "6. Points in time (read while protect runs)"
    tidemark points --journal "$j" disk

    step "7. Restore Tuesday (protect keeps running; the live disk is untouched)"
    tidemark restore --journal "$j" disk --bookmark tuesday --output restored-tuesday.img
    tidemark restore --journal "$j" disk --bookmark monday --output restored-monday.img

    step "8. Stop: unmount, detach, stop protect"
    run umount mnt
    run losetup -d "$loopdev"
    loopdev=
    run umount fuse
    kill -TERM "${live_pids[0]}"
    wait "${live_pids[0]}" || { echo "demo: protect exited with $?" >&2; return 1; }
    sed 's/^/  /' protect.out | tail -1
    tidemark restore --journal "$j" disk --latest --output restored-latest.img

    step "9. Restored Tuesday next to the live disk (Wednesday)"
    names_sizes restored-tuesday.img >tuesday.ls
    names_sizes disk.img >live.ls
    side_by_side "restored-tuesday.img: /" tuesday.ls "disk.img (live): /" live.ls
    echo
    debugfs -R "cat /hello.txt" restored-tuesday.img 2>/dev/null >tuesday.hello
    # Into a file first: `head` closing the pipe early would kill debugfs
    # with SIGPIPE, which pipefail turns into a failed demo.
    debugfs -R "cat /hello.txt" disk.img 2>/dev/null >live.full
    head -3 live.full | cut -c1-40 >live.hello
    side_by_side "restored-tuesday.img: hello.txt" tuesday.hello "disk.img (live): hello.txt" live.hello

    step "10. Checks"
    check "e2fsck -fn: restored Tuesday is a clean filesystem" e2fsck -fn restored-tuesday.img
    check "e2fsck -fn: restored Monday is a clean filesystem" e2fsck -fn restored-monday.img
    check "e2fsck -fn: the live disk is a clean filesystem" e2fsck -fn disk.img
    check "Monday (before any write through the tap) equals the original image" \
        cmp restored-monday.img disk-original.img
    check "the latest point equals the live disk byte for byte" cmp restored-latest.img disk.img
    check "Tuesday has report.txt and notes.txt" \
        has_files restored-tuesday.img report.txt notes.txt hello.txt
    check "the live disk has no report.txt" has_files disk.img '!report.txt'
    check "Tuesday's hello.txt is version 2, the live one is encrypted" bash -c '
        debugfs -R "cat /hello.txt" "$1" 2>/dev/null | grep -q "version 2: edited on Tuesday" &&
        debugfs -R "cat /hello.txt" "$2" 2>/dev/null | grep -q "^ENCRYPTED"' _ \
        restored-tuesday.img disk.img
    check "Tuesday's notes.txt is as written" bash -c '
        [ "$(debugfs -R "cat /notes.txt" "$1" 2>/dev/null)" = "Tuesday notes: ship it." ]' _ \
        restored-tuesday.img
}

if why=$(live_possible); then
    trap 'rc=$?; live_cleanup; [ $rc -eq 0 ] || printf "\n%sdemo FAILED%s (exit %d; work dir kept: %s)\n" "$r" "$n" $rc "$w"' EXIT
    live_demo
else
    printf '%snote:%s the live demo (protect + nbdfuse + loop mount) cannot run here: %s.\n' "$b" "$n" "$why"
    echo "      Falling back to the import-based demo (same journal, same restores, no tap)."
    import_demo
fi

elapsed=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
[ "$failed" -eq 0 ] || exit 1
printf '\n%sdemo OK%s in %ss. Journal and images are in %s\n' "$g" "$n" "$elapsed" "$w"
