#!/usr/bin/env bash
# Journal API ingest, format 2 against format 1 (issue #13's first row), in
# interleaved rounds, with zstd (the default). Each round runs back to back:
#   - journal_format_bench's `versioned` rows (format 1's layout: a RocksDB
#     value per 4 KiB block) and its `format2` rows (the journal as built, on
#     the same data and harness), 4 KiB random and 1 MiB sequential writes;
#   - journal_ingest_bench on a format-1 journal (TIDEMARK_JOURNAL_FORMAT=1),
#     then on a format-2 journal (the default).
# Each ratio is format 2 / format 1 of the same program and round; the
# summary reports min / median / max over the rounds. Every case writes a
# fresh journal under $BENCH_WORK and deletes it.
#
#   bench/journal_ingest.sh BUILD [--rounds R] [--quick]
# --quick: an eighth of the data (TM_BENCH_QUICK=1). Prints a markdown
# section on stdout.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
rounds=3 quick=0
bench_options journal_ingest.sh rounds quick! -- "$@"
bench_requires python3
bench_setup ingest
fmt=$build/bench/journal_format_bench
ing=$build/bench/journal_ingest_bench
for exe in "$fmt" "$ing"; do
  [[ -x $exe ]] || { echo "journal_ingest.sh: $exe is missing (build with libbenchmark-dev)" >&2; exit 1; }
done
(( quick )) && export TM_BENCH_QUICK=1
export TM_BENCH_DIR=$work BENCH_WORK=$work

for r in $(seq "$rounds"); do
  echo "journal_ingest.sh: round $r of $rounds (df: $(df -h --output=avail "$work" | tail -1 | tr -d ' ') free)" >&2
  "$fmt" --benchmark_filter='^(rand4k|seq1m)/(versioned|format2)/zstd/' \
    --benchmark_out_format=json --benchmark_out="$work/f1-layout-$r.json" >/dev/null
  TIDEMARK_JOURNAL_FORMAT=1 "$ing" --benchmark_filter='^BM_Ingest(4KiBRandom|1MiBSequential)/1/' \
    --benchmark_out_format=json --benchmark_out="$work/f1-api-$r.json" >/dev/null
  "$ing" --benchmark_filter='^BM_Ingest(4KiBRandom|1MiBSequential)/1/' \
    --benchmark_out_format=json --benchmark_out="$work/f2-api-$r.json" >/dev/null
done

python3 - "$work" "$rounds" <<'EOF'
import json, sys
from benchlib import result, spread
work, rounds = sys.argv[1], int(sys.argv[2])

def load(name):
    return {b["name"].split("/iterations")[0]: b for b in json.load(open(f"{work}/{name}.json"))["benchmarks"]}

# label, unit, (program, file prefixes, format-1 row, format-2 row, figure, scale)
cases = [
    ("4 KiB random write", "k writes/s", [
        ("journal_format_bench", "f1-layout", "f1-layout", "rand4k/versioned/zstd", "rand4k/format2/zstd", "writes_per_s", 1e3),
        ("journal_ingest_bench", "f1-api", "f2-api", "BM_Ingest4KiBRandom/1", "BM_Ingest4KiBRandom/1", "items_per_second", 1e3)]),
    ("1 MiB sequential write", "MB/s", [
        ("journal_format_bench", "f1-layout", "f1-layout", "seq1m/versioned/zstd", "seq1m/format2/zstd", "MB_per_s", 1),
        ("journal_ingest_bench", "f1-api", "f2-api", "BM_Ingest1MiBSequential/1", "BM_Ingest1MiBSequential/1", "bytes_per_second", 1e6)]),
]
med = lambda v: spread(v)[1]
s3 = lambda v: " / ".join(f"{x:.2f}" for x in spread(v))
print("| case | program | format 1 | format 2 | format 2 / format 1, min / median / max |")
print("|---|---|---:|---:|---|")
for label, unit, progs in cases:
    for prog, p1, p2, row1, row2, key, scale in progs:
        f1 = [load(f"{p1}-{r}")[row1][key] / scale for r in range(1, rounds + 1)]
        f2 = [load(f"{p2}-{r}")[row2][key] / scale for r in range(1, rounds + 1)]
        ratios = [b / a for a, b in zip(f1, f2)]
        print(f"| {label}, zstd | {prog} | {med(f1):,.1f} {unit} | {med(f2):,.1f} {unit} | {s3(ratios)} |")
        result(f"journal API ingest, {label}, zstd: format 2 / format 1 ({prog})",
               f"{med(f2):,.1f} {unit}", f"format 1 {med(f1):,.1f} {unit}", ratios, goal=">= 2", caches="-")
print()
print(f"{rounds} interleaved rounds; each figure is the median over the rounds, each ratio is per round. "
      "journal_format_bench writes blocks of 256-byte runs of random bytes and text, "
      "journal_ingest_bench blocks of half random bytes, half text: both compress about 2:1.")
EOF
