#!/usr/bin/env bash
# Replays the TPC-C trace into a fresh journal, as recorded (sub-block read-modify-write on
# almost every write) and with --align 4096, then restores 20 seqs spread over the whole
# range and compares each byte for byte with an independent reference image
# (tests/lib/trace_ref.py, written from the traces README).
set -euo pipefail
source "$(dirname "$0")/functions.sh"

requires python3 cmp "$TIDEMARK"

traces=${TM_TRACES_DIR:-$TM_SOURCE_ROOT/tests/data/traces}
trace=$traces/tpcc-small.trace
[ -r "$trace" ] || skip "trace not found: $trace"
ref=$TM_SOURCE_ROOT/tests/lib/trace_ref.py

size=$((256 * 1024 * 1024))

python3 "$ref" --self-test
writes=$(python3 "$ref" --trace "$trace" --count)
[ "$writes" -gt 100 ] || fail "trace has only $writes writes"

# 20 seqs: 0, 1, the last, and 17 spread evenly in between.
seqs=$(python3 -c '
import sys
last = int(sys.argv[1])
s = {0, 1, last} | {i * last // 18 for i in range(1, 18)}
print(",".join(str(x) for x in sorted(s)))
' "$writes")
[ "$(tr , '\n' <<<"$seqs" | wc -l)" -eq 20 ] || fail "expected 20 seqs, got $seqs"

same_image() { # restored reference what
    local got exp
    got=$(stat -c %s "$1")
    exp=$(stat -c %s "$2")
    [ "$got" -eq "$exp" ] || fail "$3: size $got, expected $exp"
    cmp "$1" "$2" || fail "$3: differs from the reference"
}

for mode in recorded aligned; do
    align_args=()
    [ "$mode" = aligned ] && align_args=(--align 4096)
    j=$tmp/journal-$mode
    refdir=$tmp/ref-$mode
    mkdir "$refdir"

    echo "== $mode: replay $writes writes"
    out=$("$TIDEMARK" journal replay --journal "$j" --name tpcc --trace "$trace" \
        --size "$size" "${align_args[@]}" --json)
    echo "$out"
    [ "$(json_get 'j["volume"]' <<<"$out")" = tpcc ] || fail "replay: volume: $out"
    [ "$(json_get 'j["first_seq"]' <<<"$out")" = 1 ] || fail "replay: first_seq: $out"
    [ "$(json_get 'j["last_seq"]' <<<"$out")" = "$writes" ] || fail "replay: last_seq: $out"
    [ "$(json_get 'j["writes"]' <<<"$out")" = "$writes" ] || fail "replay: writes: $out"

    points=$("$TIDEMARK" points --journal "$j" tpcc --json)
    [ "$(json_get 'j["first"]["seq"]' <<<"$points")" = 0 ] || fail "points: first: $points"
    [ "$(json_get 'j["latest"]["seq"]' <<<"$points")" = "$writes" ] ||
        fail "points: latest: $points"

    echo "== $mode: reference images for seqs $seqs"
    python3 "$ref" --trace "$trace" --size "$size" "${align_args[@]}" \
        --at "$seqs" --out-pattern "$refdir/ref-%d.img"

    for s in ${seqs//,/ }; do
        "$TIDEMARK" restore --journal "$j" tpcc --seq "$s" --output "$tmp/restored.img" >/dev/null
        same_image "$tmp/restored.img" "$refdir/ref-$s.img" "$mode: restore --seq $s"
        echo "$mode: seq $s OK"
        rm "$tmp/restored.img"
    done

    "$TIDEMARK" restore --journal "$j" tpcc --latest --output "$tmp/latest.img" >/dev/null
    same_image "$tmp/latest.img" "$refdir/ref-$writes.img" "$mode: restore --latest"
    # Sparse: the trace touches a few MiB of the 256 MiB volume.
    allocated=$(($(stat -c '%b * %B' "$tmp/latest.img")))
    [ "$allocated" -lt $((size / 4)) ] || fail "$mode: restore is not sparse: $allocated bytes"
    echo "$mode: latest OK"
    rm -f "$tmp/latest.img"

    if [ "$mode" = recorded ]; then
        # A second replay appends after the last seq (no --size: the volume exists). It
        # rewrites every block with the same payload, so the image stays the same.
        echo "== $mode: replay again into the same volume"
        out=$("$TIDEMARK" journal replay --journal "$j" --name tpcc --trace "$trace" --json)
        echo "$out"
        [ "$(json_get 'j["first_seq"]' <<<"$out")" = $((writes + 1)) ] ||
            fail "second replay: first_seq: $out"
        [ "$(json_get 'j["last_seq"]' <<<"$out")" = $((2 * writes)) ] ||
            fail "second replay: last_seq: $out"
        for sel in "--seq $writes" "--seq $((writes + 1))" --latest; do
            # shellcheck disable=SC2086
            "$TIDEMARK" restore --journal "$j" tpcc $sel --output "$tmp/again.img" >/dev/null
            same_image "$tmp/again.img" "$refdir/ref-$writes.img" "second replay: restore $sel"
            echo "$mode: second replay: $sel OK"
            rm "$tmp/again.img"
        done
    fi
    rm -rf "$refdir" "$j"
done

echo "test-journal-trace: OK"
