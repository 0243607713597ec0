#!/usr/bin/env bash
# Makes tests/data/journal-format1.tar.gz and journal-format1.points with a format-1 build of
# tidemark (issue 13, decision 7: the golden journal that `journal upgrade` is tested on).
# Run once, with the last format-1 build (commit noted in tests/data/README.md):
#   tests/data/make-format1-journal.sh build/tools/tidemark tests/data
# The journal holds, through `protect` and qemu-io over NBD: a single volume "disk" (8 MiB,
# imported with data) with 4 KiB, 1 MiB, sub-block (512 B, read-modify-write), unaligned,
# TRIM, WRITE_ZEROES, FUA and FLUSH writes, incompressible data, two bookmarks; and a
# consistency group "g" of "m1" and "m2" (4 MiB each) with writes to both and a group
# bookmark. journal-format1.points lists, for every seq of every volume, the SHA-256 of its
# restore: "VOLUME SEQ SHA256"; journal-format1.dump is its `journal dump`.
set -euo pipefail
tm=$(realpath "$1")
out=$(realpath "$2")
w=$(mktemp -d "${TMPDIR:-/tmp}/tm-format1.XXXXXX")
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$w"' EXIT
cd "$w"

start() { # SOCK ARG...: protect in the background until its socket appears
    local sock=$1
    shift
    "$tm" protect --journal j --listen "unix:$sock" "$@" >"$sock.out" 2>&1 &
    pid=$!
    for ((i = 0; i < 600; i++)); do [ -S "$sock" ] && return 0; sleep 0.1; done
    cat "$sock.out" >&2
    exit 1
}
stop() { kill -TERM "$pid"; wait "$pid"; }
io() { # URI CMD...
    local uri=$1 c args=()
    shift
    for c in "$@"; do args+=(-c "$c"); done
    qemu-io -f raw "$uri" "${args[@]}" >/dev/null
}

# disk: 8 MiB with some data before protection (seq 0), a zero hole in the middle.
truncate -s 8M disk.img
qemu-io -f raw -c "write -P 0x11 0 1M" -c "write -P 0x12 4M 64k" disk.img >/dev/null
start disk.sock --volume disk.img --name disk
u="nbd+unix:///disk?socket=$w/disk.sock"
io "$u" "write -P 0x21 0 4k" "write -P 0x22 1M 1M" "write -P 0x23 1536 512" "flush"
"$tm" bookmark --journal j disk first --wait 60 >/dev/null
io "$u" "write -P 0x24 6656 3k" "discard 1M 256k" "write -z 2M 128k" "write -f -P 0x25 3M 4k"
head -c 65536 /dev/urandom >rand.bin
io "$u" "write -s $w/rand.bin 5M 64k" "write -P 0x26 8384512 4k" "flush"
"$tm" bookmark --journal j disk second >/dev/null
io "$u" "write -P 0x27 0 8k"
stop

# group g: m1 and m2, 4 MiB each.
truncate -s 4M m1.img m2.img
qemu-io -f raw -c "write -P 0x31 0 64k" m1.img >/dev/null
start g.sock --group g --volume m1.img --name m1 --volume m2.img --name m2
io "nbd+unix:///m1?socket=$w/g.sock" "write -P 0x41 4k 4k" "flush"
io "nbd+unix:///m2?socket=$w/g.sock" "write -P 0x42 0 1M" "flush"
"$tm" bookmark --journal j m2 g-first >/dev/null
io "nbd+unix:///m1?socket=$w/g.sock" "write -P 0x43 2M 8k"
stop

"$tm" journal verify --journal j >/dev/null
# Every seq of every volume's seq space (a group's members share one): restore and hash it.
"$tm" journal dump --journal j >dump.txt
for vol in disk m1 m2; do
    python3 - "$vol" dump.txt >"seqs.$vol" <<'PY'
import sys
fields = lambda line: dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)
lines = open(sys.argv[2]).read().splitlines()
space = next(fields(l)["space"] for l in lines
             if l.startswith("volume ") and fields(l)["name"] == sys.argv[1])
for l in lines:
    if l.startswith("seq ") and fields(l)["space"] == space:
        print(fields(l)["seq"])
PY
done
for vol in disk m1 m2; do
    while read -r seq; do
        if "$tm" restore --journal j "$vol" --seq "$seq" --output "r.img" --force >/dev/null 2>&1; then
            echo "$vol $seq $(sha256sum <r.img | cut -d' ' -f1)" >>points
        fi
    done <"seqs.$vol"
done
[ "$(wc -l <points)" -ge 10 ] || { cat points >&2; echo "too few points" >&2; exit 1; }
tar -C j --exclude=LOCK --exclude='LOG*' --sort=name --owner=0 --group=0 --numeric-owner \
    -czf "$out/journal-format1.tar.gz" .
cp points "$out/journal-format1.points"
cp dump.txt "$out/journal-format1.dump"
echo "wrote $out/journal-format1.tar.gz ($(stat -c %s "$out/journal-format1.tar.gz") bytes)," \
    "$(wc -l <points) points"
