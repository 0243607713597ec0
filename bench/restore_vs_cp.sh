#!/usr/bin/env bash
# Restore of a volume with ~3 versions per block, next to `cp --sparse=always`
# of a raw file holding the same data and to `qemu-img convert` of a 3-layer
# qcow2 snapshot chain holding the same versions, in the same run, caches warm
# for all and cold for all (issues #2, #6). Then a fragmented point (issue 13):
# seq 3 overwrites a random quarter of the 4 KiB blocks of seq 2, and its restore
# is timed next to cp of the same image. Prints a markdown section on stdout.
#
#   bench/restore_vs_cp.sh BUILD [--size-mib N] [--rounds R] [--codec C]
#
# Every side ends durable: restore fdatasyncs its output, cp and qemu-img are
# followed by `sync FILE`. Cold runs drop the page cache first (needs root; skipped, and
# said so, otherwise). Work files go to $BENCH_WORK (default BUILD/bench-work)
# and are removed at the end.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
size_mib=4096 rounds=3 codec=zstd
bench_options restore_vs_cp.sh size_mib rounds codec -- "$@"
bench_setup restore
size=$((size_mib * 1048576))

# Deterministic incompressible data: AES-CTR keystream of a pass phrase.
gen() { (openssl enc -aes-128-ctr -pass "pass:$1" -nosalt -pbkdf2 -in /dev/zero 2>/dev/null || true) | head -c "$size"; }
now() { date +%s.%N; }
can_drop=0
if [ -w /proc/sys/vm/drop_caches ]; then can_drop=1; fi
drop() { sync; [ $can_drop = 1 ] && echo 3 > /proc/sys/vm/drop_caches || true; }

echo "building a ${size_mib} MiB volume with 3 versions per block..." >&2
import_s=0 backing=()
for v in 1 2 3; do
  gen "v$v" > "$work/image.img"
  t0=$(now)
  "$tm" journal import --journal "$work/journal" --name vol --codec "$codec" "$work/image.img" >&2
  t1=$(now)
  import_s=$(echo "$import_s + $t1 - $t0" | bc)
  # The same version as one more layer of a qcow2 chain: layer v = version v.
  qemu-img convert -f raw -O qcow2 "${backing[@]}" "$work/image.img" "$work/layer$v.qcow2"
  backing=(-B "$work/layer$v.qcow2" -F qcow2)
done
journal_bytes=$(du -sb "$work/journal" | cut -f1)
# image.img now holds version 3, the latest point (seq 2). frag.img: version 3 with a
# random quarter of its 4 KiB blocks rewritten, imported as seq 3 (scattered extents).
python3 - "$work/image.img" "$work/frag.img" <<'PY'
import os, random, shutil, sys
src, dst = sys.argv[1], sys.argv[2]
shutil.copyfile(src, dst)
blocks = os.path.getsize(dst) // 4096
rnd = random.Random(13)
with open(dst, "r+b") as f:
    for b in sorted(rnd.sample(range(blocks), blocks // 4)):
        f.seek(b * 4096)
        f.write(rnd.randbytes(4096))
PY
"$tm" journal import --journal "$work/journal" --name vol --codec "$codec" "$work/frag.img" >&2

run_restore() { rm -f "$work/out.img"; "$tm" restore --journal "$work/journal" vol --seq "$1" --output "$work/out.img" >/dev/null; }
run_cp() { rm -f "$work/cp.img"; cp --sparse=always "$work/${1:-image}.img" "$work/cp.img"; sync "$work/cp.img"; }
# seq N of the journal is version N+1, the top of a chain of N+1 qcow2 layers.
run_qemu() { rm -f "$work/q.img"; qemu-img convert -f qcow2 -O raw "$work/layer$(($1 + 1)).qcow2" "$work/q.img"; sync "$work/q.img"; }
timed() { local a b; a=$(now); "$@"; b=$(now); echo "$b - $a" | bc; }

declare -A R
for cache in warm cold; do
  if [ $cache = cold ] && [ $can_drop = 0 ]; then continue; fi
  for point in 2 1; do
    [ $cache = warm ] && { run_restore $point; run_cp; run_qemu $point; }
    for r in $(seq 1 "$rounds"); do
      [ $cache = cold ] && drop
      tr=$(timed run_restore $point)
      [ $cache = cold ] && drop
      tc=$(timed run_cp)
      [ $cache = cold ] && drop
      tq=$(timed run_qemu $point)
      R[$cache,$point]+="$tr:$tc:$tq "
      echo "round $r $cache seq $point: restore $tr s, cp $tc s, qemu-img $tq s" >&2
    done
  done
done
for cache in warm cold; do
  if [ $cache = cold ] && [ $can_drop = 0 ]; then continue; fi
  [ $cache = warm ] && { run_restore 3; run_cp frag; }
  for r in $(seq 1 "$rounds"); do
    [ $cache = cold ] && drop
    tr=$(timed run_restore 3)
    [ $cache = cold ] && drop
    tc=$(timed run_cp frag)
    R[$cache,3]+="$tr:$tc "
    echo "round $r $cache seq 3 (fragmented): restore $tr s, cp $tc s" >&2
  done
done
cmp "$work/out.img" "$work/frag.img" || { echo "restore of seq 3 is not the fragmented image" >&2; exit 1; }
run_restore 1
cmp "$work/out.img" <(gen v2) >/dev/null || { echo "restore of seq 1 is not version 2" >&2; exit 1; }
cmp "$work/q.img" "$work/out.img" || { echo "qemu-img convert of layer 2 is not version 2" >&2; exit 1; }
run_restore 2; cmp "$work/out.img" "$work/image.img" || { echo "restore of seq 2 differs" >&2; exit 1; }

python3 - "$size_mib" "$import_s" "$journal_bytes" "$codec" "$can_drop" "${R[warm,2]:-}" "${R[warm,1]:-}" "${R[cold,2]:-}" "${R[cold,1]:-}" "${R[warm,3]:-}" "${R[cold,3]:-}" <<'PY'
import statistics, sys
from benchlib import result, spread
size_mib, import_s, jbytes, codec, can_drop = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
rows = [("warm", "latest (seq 2)", sys.argv[6]), ("warm", "middle (seq 1)", sys.argv[7]),
        ("cold", "latest (seq 2)", sys.argv[8]), ("cold", "middle (seq 1)", sys.argv[9])]
print(f"Volume {size_mib} MiB of incompressible data, 3 versions per block (3 imports, codec {codec}); "
      f"imports took {import_s:.1f} s in all ({3*size_mib/import_s:.0f} MiB/s); journal {jbytes/2**20:.0f} MiB on disk "
      f"({jbytes/(3*size_mib*2**20):.2f} bytes per byte written). The qcow2 chain holds the same three "
      f"versions as three layers (`qemu-img convert -B`); the point at seq N is the top of a chain of "
      f"N+1 layers, converted with `qemu-img convert -f qcow2 -O raw` (default cache mode).\n")
print("| caches | point | tidemark restore MiB/s | cp --sparse=always MiB/s | qemu-img convert MiB/s | restore/cp min / median / max | restore/qemu-img min / median / max |")
print("|---|---|---|---|---|---|---|")
for cache, point, data in rows:
    runs = [tuple(map(float, p.split(":"))) for p in data.split()]
    if not runs:
        print(f"| {cache} | {point} | not run (cannot drop caches) | | | | |"); continue
    rc = [tc / tr for tr, tc, _ in runs]
    rq = [tq / tr for tr, _, tq in runs]
    mr, mc, mq = (size_mib / statistics.median(r[i] for r in runs) for i in range(3))
    print(f"| {cache} | {point} | {mr:.0f} | {mc:.0f} | {mq:.0f} | "
          "{:.2f} / {:.2f} / {:.2f} | ".format(*spread(rc)) + "{:.2f} / {:.2f} / {:.2f} |".format(*spread(rq)))
    what = "restore of a %d MiB volume, 3 versions per block, %s" % (size_mib, point)
    result(what, f"{mr:.0f} MiB/s", f"cp --sparse=always {mc:.0f} MiB/s", rc, ">= 0.7", cache)
    result(what, f"{mr:.0f} MiB/s", f"qemu-img convert, 3-layer qcow2 {mq:.0f} MiB/s", rq, ">= 1.0", cache)
print("\nA fragmented point: seq 3 rewrote a random quarter of the 4 KiB blocks of seq 2 "
      "(one import: the changed blocks, scattered); its restore beside `cp --sparse=always` of the same image.\n")
print("| caches | point | tidemark restore MiB/s | cp --sparse=always MiB/s | restore/cp min / median / max |")
print("|---|---|---|---|---|")
for cache, data in (("warm", sys.argv[10]), ("cold", sys.argv[11])):
    runs = [tuple(map(float, p.split(":"))) for p in data.split()]
    if not runs:
        print(f"| {cache} | fragmented (seq 3) | not run (cannot drop caches) | | |"); continue
    rc = [tc / tr for tr, tc in runs]
    mr, mc = (size_mib / statistics.median(r[i] for r in runs) for i in range(2))
    print(f"| {cache} | fragmented (seq 3) | {mr:.0f} | {mc:.0f} | " + "{:.2f} / {:.2f} / {:.2f} |".format(*spread(rc)))
    result("restore of a %d MiB volume, a fragmented point (a quarter of its blocks rewritten at random)" % size_mib,
           f"{mr:.0f} MiB/s", f"cp --sparse=always {mc:.0f} MiB/s", rc, ">= 0.6", cache)
print(f"\nThe ratio per round is the peer's time over restore's; a goal is met when the median is at least the goal. "
      f"journal bytes per byte written: {jbytes/(3*size_mib*2**20):.3f} (incompressible data).")
PY
