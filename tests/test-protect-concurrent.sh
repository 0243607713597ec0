#!/usr/bin/env bash
# tidemark protect under concurrent overlapping writes (issue 3, item 4): fio's nbd engine,
# two connections at queue depth 32 each, random 4 KiB and 64 KiB writes (and trims in the
# second run) crowded into the first 8 MiB of a 64 MiB volume. Decision 2: overlapping writes
# in flight together reach the backing in seq order, so after the writes are done the
# latest point equals the backing byte for byte: checked while protect still runs, and again
# after SIGTERM.
set -euo pipefail
source "$(dirname "$0")/functions.sh"
source "$TM_SOURCE_ROOT/tests/lib/protect.sh"

requires fio qemu-img python3 cmp "$TIDEMARK"
fio --enghelp 2>/dev/null | grep -qw nbd || skip "fio has no nbd engine"

T() { "$TIDEMARK" "$@"; }
vol=$tmp/vm1.img
j=$tmp/journal
sock=$tmp/nbd.sock
uri="nbd+unix:///vm1?socket=$sock"
runtime=${FIO_RUNTIME:-8}

head -c 16M /dev/urandom >"$vol"
truncate -s 64M "$vol"

start_protect "$vol" "$j" "$sock" --name vm1
cat "$protect_out"

run_fio() { # NAME SEED EXTRA-JOB-TEXT
    cat >"$tmp/$1.fio" <<FIO
[global]
ioengine=nbd
uri=$uri
size=8m
offset=0
time_based=1
runtime=$runtime
randrepeat=0
randseed=$2
refill_buffers=1
group_reporting=1

[writers]
rw=randwrite
bssplit=4k/50:64k/30:512/10:20k/10
iodepth=32
numjobs=2
$3
FIO
    echo "== fio $1"
    fio --output-format=json "$tmp/$1.fio" >"$tmp/$1.json" 2>"$tmp/$1.err" ||
        { cat "$tmp/$1.json" "$tmp/$1.err" >&2; fail "fio $1 failed"; }
    python3 - "$tmp/$1.json" <<'PY' || fail "fio $1 reported errors or wrote nothing"
import json, sys
text = open(sys.argv[1]).read()  # fio prints "fio: connected to NBD server" first
for job in json.loads(text[text.index("{"):])["jobs"]:
    w, t = job["write"], job["trim"]
    print("   fio %s: %d writes (%d KiB/s), %d trims, error %d"
          % (job["jobname"], w["total_ios"], w["bw"], t["total_ios"], job["error"]))
    assert job["error"] == 0 and w["total_ios"] + t["total_ios"] > 0
PY
    if grep -qi 'error' "$tmp/$1.err"; then cat "$tmp/$1.err" >&2; fail "fio $1: errors on stderr"; fi
}

latest_equals_backing() { # WHAT
    rm -f "$tmp/latest.img"
    T restore --journal "$j" vm1 --latest --output "$tmp/latest.img" >/dev/null
    if ! cmp "$tmp/latest.img" "$vol" >"$tmp/cmp.out" 2>&1; then
        cat "$tmp/cmp.out" >&2
        cmp -l "$tmp/latest.img" "$vol" 2>/dev/null | awk '{ b = int(($1 - 1) / 4096); if (!(b in s)) { s[b]; n++ } } END { print n " 4 KiB blocks differ" }' >&2
        fail "$1: restore --latest differs from the backing"
    fi
    rm -f "$tmp/latest.img"
    echo "ok: $1: restore --latest equals the backing"
}

run_fio run1 1 ""
latest_equals_backing "after fio run 1, protect running"
T points --journal "$j" vm1 | sed -n '1,3p'

# Second run: trims among the writes, on the same region.
run_fio run2 2 "
[trimmer]
rw=randtrim
bs=64k
iodepth=4
"
stop_protect
cat "$protect_out"
latest_equals_backing "after fio run 2 and SIGTERM"
T journal verify --journal "$j" vm1 || fail "journal verify"

# Restart: the tail replay must not change the backing (it already holds every write).
cp --sparse=always "$vol" "$tmp/before-restart.img"
start_protect "$vol" "$j" "$sock" --name vm1
stop_protect
cmp "$vol" "$tmp/before-restart.img" || fail "a clean restart changed the backing"
latest_equals_backing "after a clean restart"

echo "test-protect-concurrent: OK"
