#!/usr/bin/env bash
# `make bench`: every Google Benchmark program under BUILD_DIR/bench, then the
# end-to-end comparisons (bench/*.sh, one at a time, each cleaning up its work
# files), then one report: a summary table (machine, commit, per comparison
# min / median / max of the per-round ratios, goal met or missed), the
# micro-benchmarks, and each script's own section.
#
#   bench/run.sh BUILD_DIR [--quick] [--only NAME[,NAME...]] [--out FILE] [--no-doc]
#
#   --quick   smoke run for CI: tiny sizes, one round (the numbers mean nothing);
#             micro-benchmarks with --benchmark_min_time=0.01 and TM_BENCH_QUICK=1
#   --only    run only these comparisons (names as listed by --list) and no
#             micro-benchmarks unless "micro" is named
#   --list    print the comparison names and exit
#   --out     where the report goes (default BUILD_DIR/bench-report.md)
#   --no-doc  do not rewrite docs/benchmarks.md
# A full run (no --quick, no --only) also replaces the generated part of
# docs/benchmarks.md (between its "make bench" marker lines). It needs about
# 55 minutes and 30 GiB free under $BENCH_WORK (default BUILD_DIR/bench-work).
# Progress goes to stderr; each script's log to WORK/report/logs/NAME.log.
# Exits non-zero when a benchmark program or script fails (the report is
# still written, naming the failures).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
usage() { echo "usage: $0 BUILD_DIR [--quick] [--only NAME,...] [--list] [--out FILE] [--no-doc]" >&2; exit 2; }

# name | full-run arguments | quick-run arguments
comparisons=(
  "limits|--rounds 3|--seconds 2 --rounds 1 --size-mib 256"
  "journal_ingest|--rounds 5|--rounds 1 --quick"
  "restore_vs_cp|--size-mib 4096 --rounds 3|--size-mib 64 --rounds 1"
  "tap_vs_nbdkit|--seconds 30 --rounds 3|--seconds 2 --rounds 1 --size-mib 256"
  "remote_vs_protect|--seconds 20 --rounds 3|--seconds 2 --rounds 1 --size-mib 256"
  "mount_vs_nbdkit|--seconds 15 --rounds 3|--seconds 2 --rounds 1 --size-mib 64"
  "drills_ingest|--seconds 30 --rounds 3|--seconds 2 --rounds 1 --size-mib 128 --settle 1"
  "journal_bytes|--rounds 2|--rounds 1 --size-mib 64"
  "history_ingest|--history-gib 20 --rounds 3|--history-gib 0.25 --seconds 2 --rounds 1 --size-mib 128"
  "trace_replay|--rounds 3|--rounds 1 --quick"
  "profile_tap|--seconds 10 --rounds 2|--seconds 2 --rounds 1 --size-mib 128"
)

[[ $# -ge 1 ]] || usage
# The names --list prints and --only takes, one a line.
names() { echo micro; for c in "${comparisons[@]}"; do echo "${c%%|*}"; done; }
if [[ $1 == --list ]]; then names; exit 0; fi
build_dir=$1; shift
options="$*"  # for the report's "command"
quick=0 only="" out="" doc=1
while [[ $# -gt 0 ]]; do
  case $1 in
    --quick) quick=1; shift ;;
    --only) [[ $# -ge 2 ]] || usage; only=$2; shift 2 ;;
    --out) [[ $# -ge 2 ]] || usage; out=$2; shift 2 ;;
    --no-doc) doc=0; shift ;;
    --list) names; exit 0 ;;
    *) echo "$0: unknown option $1" >&2; usage ;;
  esac
done
[[ -d $build_dir/bench ]] || { echo "$0: no $build_dir/bench (build first)" >&2; exit 1; }
build_dir=$(cd "$build_dir" && pwd)
out=${out:-$build_dir/bench-report.md}
if [[ -n $only ]]; then
  known=" $(names | tr '\n' ' ')"
  for n in ${only//,/ }; do
    [[ $known == *" $n "* ]] || { echo "$0: unknown comparison '$n' (see --list)" >&2; exit 2; }
  done
fi
selected() { [[ -z $only || ",$only," == *",$1,"* ]]; }

export BENCH_WORK=${BENCH_WORK:-$build_dir/bench-work}
report=$BENCH_WORK/report
rm -rf "$report"; mkdir -p "$report/micro" "$report/sections" "$report/logs"
export BENCH_RESULTS=$report/results.jsonl
export PYTHONPATH=$here${PYTHONPATH:+:$PYTHONPATH}
: >"$BENCH_RESULTS"

machine() {
  local cpu mem fs
  cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
  mem=$(awk '/^MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
  fs=$(df -T "$BENCH_WORK" | awk 'NR==2 {print $2 " on " $1}')
  echo "$(nproc) CPUs ($cpu), $mem RAM, kernel $(uname -r), work files on $fs"
}
load() { cut -d' ' -f1 /proc/loadavg; }
commit=$(git -C "$here/.." describe --always --dirty 2>/dev/null || echo unknown)
started=$(date -u '+%Y-%m-%d %H:%M UTC')
load_start=$(load)
failed=()
scripts=()

if selected micro; then
  args=(--benchmark_out_format=json)
  if (( quick )); then
    args+=(--benchmark_min_time=0.01)
    export TM_BENCH_QUICK=1
  fi
  shopt -s nullglob
  found=0
  for exe in "$build_dir"/bench/*_bench; do
    [[ -f $exe && -x $exe ]] || continue
    found=1
    name=$(basename "$exe")
    echo "== $name" >&2
    if ! "$exe" "${args[@]}" --benchmark_out="$report/micro/$name.json" >&2; then
      echo "$0: $name failed" >&2
      failed+=("$name")
    fi
  done
  (( found )) || echo "$0: no benchmark programs in $build_dir/bench (is libbenchmark-dev installed?)" >&2
  unset TM_BENCH_QUICK
fi

for c in "${comparisons[@]}"; do
  IFS='|' read -r name full_args quick_args <<<"$c"
  selected "$name" || continue
  scripts+=("$name")
  (( quick )) && a=$quick_args || a=$full_args
  echo "== $name $a ($(date -u +%H:%M:%S))" >&2
  rows_before=$(wc -l <"$BENCH_RESULTS")
  # shellcheck disable=SC2086  # the argument lists above are word lists
  if BENCH_SCRIPT=$name "$here/$name.sh" "$build_dir" $a >"$report/sections/$name.md" \
      2> >(tee "$report/logs/$name.log" >&2); then
    cat "$report/sections/$name.md"
    if (( $(wc -l <"$BENCH_RESULTS") == rows_before )); then
      echo "$0: $name gave no row for the summary table" >&2
      failed+=("$name")
    fi
  else
    echo "$0: $name failed (log: $report/logs/$name.log)" >&2
    failed+=("$name")
  fi
done

python3 - "$report/meta.json" "$commit" "$started" "$load_start" "$(load)" "$(machine)" "$quick" \
  "$options" "${scripts[*]}" "${failed[*]}" <<'PY'
import json, sys, time
path, commit, started, l0, l1, machine, quick, argv, scripts, failed = sys.argv[1:11]
json.dump({"commit": commit, "started": started, "ended": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "load_start": l0, "load_end": l1, "machine": machine, "quick": quick == "1",
           "command": ("make bench" if not argv else "bench/run.sh BUILD " + argv),
           "scripts": scripts.split(), "failed": failed.split()}, open(path, "w"))
PY
doc_args=()
if (( doc && !quick )) && [[ -z $only ]]; then doc_args=(--replace-in "$here/../docs/benchmarks.md"); fi
python3 "$here/report.py" "$report" --out "$out" "${doc_args[@]}"
echo "report: $out${doc_args:+ and docs/benchmarks.md}" >&2
(( ${#failed[@]} == 0 ))
