#!/usr/bin/env bash
# Journal bytes on disk per byte written through `tidemark protect` (issue #6):
#   ext4:           mkfs.ext4 on the export (nbdfuse + losetup), mount, copy
#                   /usr/include and /usr/lib/gcc, sync; then delete the copy of
#                   /usr/lib/gcc, copy /usr/share/doc, rewrite 2000 headers in
#                   place, sync, unmount. Bytes written = the loop device's
#                   write sectors (what the filesystem sent, discards excluded).
#   incompressible: fio's nbd engine, 1 MiB sequential writes over the whole
#                   volume, then 4 KiB random writes of a quarter of it (fio's
#                   default random buffers). Bytes written = fio's io_bytes.
# The journal is measured after `protect` stopped (SIGTERM: memtables flushed),
# `du -sb` without RocksDB's info LOG files; each round uses a fresh journal.
#
#   bench/journal_bytes.sh BUILD [--rounds R] [--size-mib N]
# The ext4 case needs root, /dev/fuse, a free loop device and nbdfuse; without
# them it is reported as not run. Prints a markdown section on stdout.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
rounds=2 size_mib=2048
bench_options journal_bytes.sh rounds size_mib -- "$@"
export PATH=$PATH:/usr/sbin:/sbin
bench_requires fio python3
bench_setup bytes
dev="" quick=0
(( size_mib < 512 )) && quick=1
bench_cleanup_hook() {
  mountpoint -q "$work/mnt" 2>/dev/null && umount -l "$work/mnt"
  [ -n "$dev" ] && losetup -d "$dev" 2>/dev/null
  mountpoint -q "$work/fuse" 2>/dev/null && umount -l "$work/fuse"
  return 0
}
nbd_export=vol  # fio_nbd

# A fresh journal and volume, protected at $work/p.sock.
start_fresh() {
  rm -rf "$work/journal"
  new_volume "$work/vol.img"
  start_protect "$work"
}
# Sets journal_bytes. Not in a $(...) of its own: stop_protect's wait needs this shell.
stop_and_measure() {
  stop_protect
  journal_bytes=$(du -sb --exclude='LOG*' "$work/journal" | cut -f1)
}

can_ext4=1 why=""
[ "$(id -u)" -eq 0 ] || { can_ext4=0; why="needs root"; }
[ -c /dev/fuse ] || { can_ext4=0; why="no /dev/fuse"; }
for t in nbdfuse losetup mkfs.ext4 mount umount; do
  command -v $t >/dev/null || { can_ext4=0; why="$t is missing"; }
done

ext4_round() {  # prints "written_bytes journal_bytes"
  start_fresh
  mkdir -p "$work/fuse" "$work/mnt"
  nbdfuse "$work/fuse/disk" "nbd+unix:///vol?socket=$work/p.sock" 2>"$work/nbdfuse.err" &
  local fuse_pid=$!
  for _ in $(seq 100); do [ -e "$work/fuse/disk" ] && break; sleep 0.1; done
  dev=$(losetup -f --show "$work/fuse/disk")
  # A loop device's counters survive detach and attach: take the difference.
  local name sectors0 sectors
  name=$(basename "$dev")
  sectors0=$(awk '{print $7}' "/sys/block/$name/stat")
  mkfs.ext4 -q -F "$dev"
  mount "$dev" "$work/mnt"
  if (( quick )); then
    cp -a /usr/include/linux "$work/mnt/include"
  else
    cp -a /usr/include "$work/mnt/include"
    cp -a /usr/lib/gcc "$work/mnt/gcc"
  fi
  sync
  rm -rf "$work/mnt/gcc"
  if (( quick )); then cp -a /usr/include/asm-generic "$work/mnt/doc"; else cp -a /usr/share/doc "$work/mnt/doc"; fi
  find "$work/mnt/include" -name '*.h' | sort | head -2000 | xargs sed -i 's/int/long/g'
  sync
  umount "$work/mnt"
  sectors=$(awk '{print $7}' "/sys/block/$name/stat")
  losetup -d "$dev"; dev=""
  umount "$work/fuse"; wait "$fuse_pid" 2>/dev/null || true
  stop_and_measure
  echo "$(((sectors - sectors0) * 512)) $journal_bytes"
}

incompressible_round() {
  start_fresh
  local w1 w2
  fio_nbd "$work/p.sock" "$work/f1.json" --rw=write --bs=1m --iodepth=8 --size="${size_mib}M"
  fio_nbd "$work/p.sock" "$work/f2.json" --rw=randwrite --bs=4k --iodepth=32 --size="${size_mib}M" \
    --io_size="$((size_mib / 4))M"
  w1=$(fio_get "$work/f1.json" write io_bytes)
  w2=$(fio_get "$work/f2.json" write io_bytes)
  stop_and_measure
  echo "$((w1 + w2)) $journal_bytes"
}

E="" I=""
for r in $(seq 1 "$rounds"); do
  if (( can_ext4 )); then
    x=$(ext4_round); E+="$x;"; echo "round $r ext4: written/journal bytes $x" >&2
  fi
  x=$(incompressible_round); I+="$x;"; echo "round $r incompressible: written/journal bytes $x" >&2
done

python3 - "$size_mib" "$E" "$I" "$why" <<'PY'
import statistics, sys
from benchlib import result, spread
size, E, I, why = sys.argv[1:5]
print(f"`protect` on a {size} MiB volume, journal codec zstd; bytes on disk measured after `protect` stopped "
      "(`du -sb` of the journal directory without RocksDB's info LOG files). *ext4*: mkfs.ext4, "
      "copy /usr/include and /usr/lib/gcc, sync, delete the gcc copy, copy /usr/share/doc, rewrite 2000 headers "
      "in place, sync, unmount (written = the loop device's write sectors). *incompressible*: fio writes the "
      "volume once with 1 MiB writes, then a quarter of it with 4 KiB random writes.\n")
print("| workload | bytes written (median) | journal bytes (median) | journal / written min / median / max | goal |")
print("|---|---|---|---|---|")
for name, data, goal in (("ext4", E, "<= 0.6"), ("incompressible", I, "<= 1.05")):
    runs = [tuple(map(int, x.split())) for x in data.split(";") if x]
    if not runs:
        print(f"| {name} | not run ({why}) | | | {goal} |")
        result(f"journal bytes on disk per byte written, {name} workload", "not run", "(absolute)", [], goal, "-", why)
        continue
    ratios = [j / w for w, j in runs]
    lo, med, hi = spread(ratios)
    w = statistics.median(r[0] for r in runs) / 2**20
    j = statistics.median(r[1] for r in runs) / 2**20
    print(f"| {name} | {w:,.0f} MiB | {j:,.0f} MiB | {lo:.3f} / {med:.3f} / {hi:.3f} | {goal.replace('<=', '≤')} |")
    result(f"journal bytes on disk per byte written, {name} workload", f"{med:.3f} ({j:,.0f} of {w:,.0f} MiB)",
           "(absolute)", ratios, goal, "-")
PY
