#!/usr/bin/env bash
# Journal API ingest, format 2 against format 1 (issue #13's first row), in
# interleaved rounds. Each round runs, back to back, with zstd (the default):
#   - journal_format_bench's `versioned` rows (format 1's layout: a RocksDB
#     value per 4 KiB block), 4 KiB random and 1 MiB sequential writes;
#   - journal_ingest_bench on a format-1 journal (TIDEMARK_JOURNAL_FORMAT=1);
#   - journal_ingest_bench on a format-2 journal (the default).
# The ratios are format 2 / format 1 of the same round, for each format-1
# figure; the summary reports min / median / max over the rounds. Every case
# writes a fresh journal under $BENCH_WORK and deletes it.
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
  "$fmt" --benchmark_filter='^(rand4k|seq1m)/versioned/zstd/' \
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

cases = [  # label, format-2 row and its figure, format-1 layout row and its figure, unit
    ("4 KiB random write", "BM_Ingest4KiBRandom/1", "items_per_second", "rand4k/versioned/zstd", "writes_per_s", 1e3, "k writes/s"),
    ("1 MiB sequential write", "BM_Ingest1MiBSequential/1", "bytes_per_second", "seq1m/versioned/zstd", "MB_per_s", None, "MB/s"),
]
print("| case | format 1 layout (versioned) | format 1 journal | format 2 journal | format 2 / layout, min / median / max | format 2 / format-1 journal |")
print("|---|---:|---:|---:|---|---|")
for label, f2row, f2key, f1row, f1key, div, unit in cases:
    f2, lay, api1 = [], [], []
    for r in range(1, rounds + 1):
        a, b, c = load(f"f2-api-{r}"), load(f"f1-layout-{r}"), load(f"f1-api-{r}")
        scale = (lambda v: v / 1e3) if div else (lambda v: v / 1e6)
        f2.append(scale(a[f2row][f2key]))
        api1.append(scale(c[f2row][f2key]))
        lay.append(b[f1row][f1key] / 1e3 if div else b[f1row][f1key])
    r_lay = [x / y for x, y in zip(f2, lay)]
    r_api = [x / y for x, y in zip(f2, api1)]
    med = lambda v: spread(v)[1]
    s = lambda v: " / ".join(f"{x:.2f}" for x in spread(v))
    print(f"| {label}, zstd | {med(lay):,.1f} {unit} | {med(api1):,.1f} {unit} | {med(f2):,.1f} {unit} | {s(r_lay)} | {s(r_api)} |")
    result(f"journal API ingest, {label}, zstd: format 2 / format 1 (journal_format_bench versioned)",
           f"{med(f2):,.1f} {unit}", f"versioned {med(lay):,.1f} {unit}", r_lay, goal=">= 2", caches="-")
    result(f"journal API ingest, {label}, zstd: format 2 / format 1 (journal_ingest_bench on a format-1 journal)",
           f"{med(f2):,.1f} {unit}", f"format 1 {med(api1):,.1f} {unit}", r_api, goal=">= 2", caches="-")
print()
print(f"{rounds} interleaved rounds; each figure is the median over the rounds, each ratio is per round.")
EOF
