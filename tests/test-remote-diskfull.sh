#!/usr/bin/env bash
# The target's disk fills up under a tap (issue #4, item 6). The tenants' journals live on a
# small loop-mounted ext4; a filler file takes most of it, and the tap writes more random
# (incompressible) data than is left. Checked:
# - ingest stops with a clear error: the target logs no_space and the tap's status says the
#   target refused with a no-space message; the target keeps running;
# - the workload keeps going meanwhile (the tap's memory queue holds what was not acknowledged);
# - nothing the target acknowledged is lost: its journal, read while the disk is full, holds
#   every acknowledged write byte for byte;
# - once the filler is deleted, ingest resumes by itself (the tap reconnects with backoff),
#   the queue drains, the latest point equals the volume, and `journal verify` finds no damage.
# The target stops ingest while less than ~160 MiB is free (target/tenant_journal.cc,
# kReserveBytes): RocksDB aborts on a disk that is really full, so the test's disk is "full"
# at that mark. The data written stays below the tap's 256 MiB memory queue.
# Needs root (loop mount); skips only when not root or without loop devices.
source "$(dirname "$0")/functions.sh"
source "$(dirname "$0")/lib/protect.sh"
source "$(dirname "$0")/lib/remote.sh"
requires qemu-io python3 cmp mkfs.ext4 losetup mount umount fallocate df
[ "$(id -u)" = 0 ] || skip "needs root to mount a loop device"
[ -e /dev/loop-control ] || skip "no loop devices (/dev/loop-control)"

MiB=$((1 << 20))
tgt=$tmp/target
init_target "$tgt"
add_tenant "$target_conf" alice "$tmp/alice.token"

# The tenants' directory on its own 512 MiB ext4 (a sparse image).
truncate -s 512M "$tmp/fs.img"
mkfs.ext4 -q -F -m 0 "$tmp/fs.img" || fail "mkfs.ext4"
loop=$(losetup -f --show "$tmp/fs.img") || fail "losetup (as root, with /dev/loop-control)"
mnt=$tgt/tenants
detach_fs() {
    umount "$mnt" 2>/dev/null || umount -l "$mnt"
    losetup -d "$loop"
}
cleanup_fn detach_fs
mkdir -p "$mnt"
mount "$loop" "$mnt" || fail "mount $loop"
free_mib() { echo $(($(df -k --output=avail "$mnt" | tail -n 1) / 1024)); }

start_target "$target_conf"
truncate -s 256M "$tmp/a.img"
start_tap "$tmp/a.img" a alice "$tmp/alice.token" "$tmp/st" "$tmp/a.sock"
uri="nbd+unix:///a?socket=$tmp/a.sock"
status() { tap_status "$tmp/st" | json_get 'j["volumes"][0]'; }
field() { json_get "j[\"$1\"]" <<<"$2"; }
drained() {  # the status in $st
    st=$(status) && [ "$(field queued_writes "$st")" = 0 ] && [ "$(field connected "$st")" = true ]
}
wait_drained() { wait_for "$1" "the tap's queue to drain" drained; }  # SECONDS (scaled)

# Chunk i is 4 MiB of random data at offset 4i MiB, written as one NBD write: seq i + 1.
for k in 0 1 2 3; do head -c 4M /dev/urandom >"$tmp/r$k"; done
write_chunks() {  # FIRST COUNT
    local i
    for ((i = $1; i < $1 + $2; i++)); do
        qemu_io "$uri" "write -s $tmp/r$((i % 4)) $((i * 4))M 4M"
    done
}

# 16 MiB with room to spare: acknowledged.
write_chunks 0 4
wait_drained 30

# Fill the disk but for 40 MiB above the target's reserve, then write 96 MiB.
fallocate -l $((($(free_mib) - 200) * MiB)) "$mnt/filler" || fail "fallocate the filler"
echo "free on the target's disk: $(free_mib) MiB"
t0=$(date +%s)
write_chunks 4 24
took=$(($(date +%s) - t0))
echo "the workload wrote 96 MiB in $took s"
# The writes completed while the target refused them (acked stays below 28, checked below):
# the workload did not wait for the full target. The time is only a loose bound.
[ "$took" -lt "$(scaled 30)" ] || fail "the workload took $took s: it blocked on the full target"

# Ingest stops with a clear error, and stays stopped.
refused() {
    st=$(status) || return 1
    case $(field last_error "$st") in *"refused"*"no space"*) return 0 ;; esac
    return 1
}
wait_for 30 "a no-space refusal in the tap's status" refused
err=$(field last_error "$st")
echo "tap: $err"
# The target's log line and its answer to the tap are written apart: wait for the line.
target_logged() { grep -qs 'no_space' "$target_out" "$target_out.err"; }
wait_for 10 "the target to log no_space" target_logged
kill -0 "$target_pid" 2>/dev/null || fail "the target died when its disk filled"
acked=$(field acked_seq "$st")
sleep 3  # an observation window: nothing may be acknowledged while the disk is full
st=$(status)
[ "$(field acked_seq "$st")" = "$acked" ] || fail "acked moved from $acked while the disk is full"
queued=$(field queued_writes "$st")
[ "$queued" -gt 0 ] || fail "nothing queued while the target refuses"
echo "full: acknowledged up to seq $acked, $queued writes queued, $(free_mib) MiB free"
[ "$acked" -ge 4 ] && [ "$acked" -lt 28 ] || fail "acknowledged seq $acked: expected ingest to stop part-way"

# Nothing acknowledged is lost: read the journal now (the target still runs, disk still full).
j=$tgt/tenants/alice/journal
"$TIDEMARK" restore --journal "$j" a --seq "$acked" --output "$tmp/acked.img" >/dev/null ||
    fail "restore --seq $acked while the disk is full"
cmp -n $((acked * 4 * MiB)) "$tmp/acked.img" "$tmp/a.img" ||
    fail "seq $acked (acknowledged) lacks acknowledged writes"

# Space comes back: ingest resumes by itself.
rm -f "$mnt/filler"
echo "free after deleting the filler: $(free_mib) MiB"
t0=$(date +%s)
wait_drained 60
st=$(status)
echo "resumed: drained $(($(date +%s) - t0)) s after space came back, reconnects $(field reconnects "$st")"
[ "$(field reconnects "$st")" -ge 1 ] || fail "no reconnect recorded: $st"
[ "$(field acked_seq "$st")" = 28 ] || fail "acknowledged up to $(field acked_seq "$st"), expected 28"

stop_pid "$tap_pid"
"$TIDEMARK" restore --journal "$j" a --latest --output "$tmp/out.img" >/dev/null ||
    fail "restore --latest"
cmp "$tmp/out.img" "$tmp/a.img" || fail "the latest point differs from the volume"
stop_pid "$target_pid"
"$TIDEMARK" journal verify --journal "$j" || fail "journal verify after the disk was full"
echo "remote diskfull: ok"
