#!/usr/bin/env bash
# Restore of a volume with ~3 versions per block, next to `cp --sparse=always`
# of a raw file holding the same data, in the same run, caches warm for both
# and cold for both (issue #2). Prints a markdown section on stdout.
#
#   bench/restore_vs_cp.sh BUILD [--size-mib N] [--rounds R] [--codec C]
#
# Both sides end durable: restore fdatasyncs its output, cp is followed by
# `sync FILE`. Cold runs drop the page cache first (needs root; skipped, and
# said so, otherwise). Work files go to $BENCH_WORK (default BUILD/bench-work)
# and are removed at the end.
set -euo pipefail
build=$1; shift
size_mib=4096 rounds=3 codec=zstd
while [ $# -gt 0 ]; do
  case $1 in
    --size-mib) size_mib=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --codec) codec=$2; shift 2 ;;
    *) echo "restore_vs_cp.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
tm=$(readlink -f "$build/tools/tidemark")
work=${BENCH_WORK:-$build/bench-work}/restore
rm -rf "$work"; mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
size=$((size_mib * 1048576))

# Deterministic incompressible data: AES-CTR keystream of a pass phrase.
gen() { (openssl enc -aes-128-ctr -pass "pass:$1" -nosalt -pbkdf2 -in /dev/zero 2>/dev/null || true) | head -c "$size"; }
now() { date +%s.%N; }
can_drop=0
if [ -w /proc/sys/vm/drop_caches ]; then can_drop=1; fi
drop() { sync; [ $can_drop = 1 ] && echo 3 > /proc/sys/vm/drop_caches || true; }

echo "building a ${size_mib} MiB volume with 3 versions per block..." >&2
t0=$(now)
for v in 1 2 3; do
  gen "v$v" > "$work/image.img"
  "$tm" journal import --journal "$work/journal" --name vol --codec "$codec" "$work/image.img" >&2
done
t1=$(now)
import_s=$(echo "$t1 - $t0" | bc)
journal_bytes=$(du -sb "$work/journal" | cut -f1)
# image.img now holds version 3, the latest point (seq 2).

run_restore() { rm -f "$work/out.img"; "$tm" restore --journal "$work/journal" vol --seq "$1" --output "$work/out.img" >/dev/null; }
run_cp() { rm -f "$work/cp.img"; cp --sparse=always "$work/image.img" "$work/cp.img"; sync "$work/cp.img"; }
timed() { local a b; a=$(now); "$@"; b=$(now); echo "$b - $a" | bc; }

declare -A R
for cache in warm cold; do
  if [ $cache = cold ] && [ $can_drop = 0 ]; then continue; fi
  for point in 2 1; do
    [ $cache = warm ] && { run_restore $point; run_cp; }
    for r in $(seq 1 "$rounds"); do
      [ $cache = cold ] && drop
      tr=$(timed run_restore $point)
      [ $cache = cold ] && drop
      tc=$(timed run_cp)
      R[$cache,$point]+="$tr:$tc "
    done
  done
done
cmp "$work/out.img" <(gen v2) >/dev/null || { echo "restore of seq 1 is not version 2" >&2; exit 1; }
run_restore 2; cmp "$work/out.img" "$work/image.img" || { echo "restore of seq 2 differs" >&2; exit 1; }

python3 - "$size_mib" "$import_s" "$journal_bytes" "$codec" "$can_drop" "${R[warm,2]:-}" "${R[warm,1]:-}" "${R[cold,2]:-}" "${R[cold,1]:-}" <<'PY'
import statistics, sys
size_mib, import_s, jbytes, codec, can_drop = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
rows = [("warm", "latest (seq 2)", sys.argv[6]), ("warm", "middle (seq 1)", sys.argv[7]),
        ("cold", "latest (seq 2)", sys.argv[8]), ("cold", "middle (seq 1)", sys.argv[9])]
print(f"Volume {size_mib} MiB of incompressible data, 3 versions per block (3 imports, codec {codec}); "
      f"imports took {import_s:.1f} s in all ({3*size_mib/import_s:.0f} MiB/s); journal {jbytes/2**20:.0f} MiB on disk "
      f"({jbytes/(3*size_mib*2**20):.2f} bytes per byte written).\n")
print("| caches | point | tidemark restore MiB/s (median) | cp --sparse=always MiB/s (median) | ratio restore/cp min / median / max |")
print("|---|---|---|---|---|")
for cache, point, data in rows:
    pairs = [tuple(map(float, p.split(":"))) for p in data.split()]
    if not pairs:
        print(f"| {cache} | {point} | not run (cannot drop caches) | | |"); continue
    ratios = sorted(tc / tr for tr, tc in pairs)
    mr = size_mib / statistics.median(tr for tr, _ in pairs)
    mc = size_mib / statistics.median(tc for _, tc in pairs)
    print(f"| {cache} | {point} | {mr:.0f} | {mc:.0f} | {ratios[0]:.2f} / {statistics.median(ratios):.2f} / {ratios[-1]:.2f} |")
PY
