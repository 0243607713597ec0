#!/usr/bin/env bash
# The suite's load acceptance (issue 12, docs/testing.md#acceptance-runs): N consecutive
# `.ci/run` in one clone while a second clone loops `make test` beside it, so that every
# test runs on a machine as loaded as a busy CI worker. Not part of `make test`.
#   usage: tests/ci-under-load.sh [--runs N] [--work DIR] [--rev REV]
#     --runs N    consecutive .ci/run in clone A (default 3)
#     --work DIR  where the clones live (default /var/tmp/tidemark-load); clones that exist
#                 there are updated to REV and reused (their builds are incremental)
#     --rev REV   what to test (default: this checkout's HEAD)
# Prints one line per run ("run K: N passed, N failed, N skipped in S s"), keeps every log
# in DIR/logs, and exits non-zero when any run failed. The clones need the shared folder
# beside them only as CI has it: nothing in the suite reads it.
set -euo pipefail
runs=3
work=/var/tmp/tidemark-load
src=$(cd "$(dirname "$0")/.." && pwd)
rev=$(git -C "$src" rev-parse HEAD)
while [ $# -gt 0 ]; do
    case $1 in
    --runs) runs=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --rev) rev=$2; shift 2 ;;
    -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "ci-under-load: unknown argument $1" >&2; exit 2 ;;
    esac
done
mkdir -p "$work/logs"
for c in A B; do
    if [ ! -d "$work/$c/.git" ]; then
        git clone -q "$src" "$work/$c"
    fi
    git -C "$work/$c" fetch -q "$src" "$rev"
    git -C "$work/$c" checkout -q --detach FETCH_HEAD
done

# Clone B: make test, again and again, until clone A is done (its own session, so that
# the whole loop, meson and qemu included, can be stopped at once).
rm -f "$work/logs/stop"
setsid bash -c '
    cd "$1/B"
    k=0
    while [ ! -e "$1/logs/stop" ]; do
        k=$((k + 1))
        make test >"$1/logs/B-$k.log" 2>&1 || true
        echo "load loop $k: $(tail -n 1 "$1/logs/B-$k.log")" >>"$1/logs/B.summary"
    done' load-loop "$work" &
loader=$!
trap 'touch "$work/logs/stop"; kill -TERM -- "-$loader" 2>/dev/null || true' EXIT

failed=0
for ((k = 1; k <= runs; k++)); do
    start=$(date +%s)
    rc=0
    (cd "$work/A" && CI=true bash .ci/run) >"$work/logs/A-$k.log" 2>&1 || rc=$?
    line=$(tail -n 1 "$work/logs/A-$k.log")
    echo "run $k: $line in $(($(date +%s) - start)) s (exit $rc; load average $(cut -d' ' -f1-3 /proc/loadavg))"
    [ "$rc" -eq 0 ] || failed=1
done
touch "$work/logs/stop"
echo "load loop (clone B):"
cat "$work/logs/B.summary" 2>/dev/null || echo "  (no make test finished during the runs)"
exit "$failed"
