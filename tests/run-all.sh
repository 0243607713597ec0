#!/usr/bin/env bash
# Runs every test: all suites of BUILD, then the unit suite of ASAN_BUILD (ASan+UBSan).
# Its last line is "N passed, N failed, N skipped", summed over both runs from meson's
# meson-logs/testlog.json; it exits non-zero when anything failed.
#   usage: tests/run-all.sh BUILD ASAN_BUILD
set -uo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 BUILD ASAN_BUILD" >&2
    exit 2
fi
build=$1
asan=$2

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

run() { # NAME BUILD [meson test args...]: runs meson test, keeps its log as $logs/NAME.json
    local name=$1 dir=$2 rc=0
    shift 2
    # A stale log from an earlier run must not be counted.
    rm -f "$dir/meson-logs/testlog.json"
    meson test -C "$dir" --print-errorlogs "$@" || rc=$?
    if [ -f "$dir/meson-logs/testlog.json" ]; then
        cp "$dir/meson-logs/testlog.json" "$logs/$name.json"
    fi
    echo "$rc" >"$logs/$name.rc"
}

echo "== meson test -C $build (all suites)"
run build "$build"
echo "== meson test -C $asan --suite unit"
run asan "$asan" --suite unit

python3 - "$logs" "$build" "$asan" <<'EOF'
import json, os, sys

passed = failed = skipped = 0
logs = sys.argv[1]
for name, build in (("build", sys.argv[2]), ("asan", sys.argv[3])):
    log = os.path.join(logs, name + ".json")
    with open(os.path.join(logs, name + ".rc")) as f:
        rc = f.read().strip()
    if not os.path.exists(log):
        if rc != "0":
            print(f"{build}: meson test failed (exit {rc}) before running any test",
                  file=sys.stderr)
            failed += 1
        continue
    failed_before = failed
    with open(log) as f:
        for line in f:
            if not line.strip():
                continue
            result = json.loads(line).get("result")
            if result in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif result == "SKIP":
                skipped += 1
            else:  # FAIL, TIMEOUT, ERROR, UNEXPECTEDPASS, anything unknown
                failed += 1
    if rc != "0" and failed == failed_before:
        print(f"{build}: meson test exited {rc} with no failed test logged", file=sys.stderr)
        failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
EOF
