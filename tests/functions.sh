# tests/functions.sh: sourced by every tests/test-*.sh (cf. nbdkit's tests/functions.sh).
#
# Provides:
#   $TM_SOURCE_ROOT   the project's source root (env, else this file's parent directory)
#   $TIDEMARK         the tidemark binary (env, set by tests/meson.build; else build/tools/tidemark)
#   $tmp              a private temp dir under ${TMPDIR:-/tmp}, removed on exit (kept if KEEP_TMP=1)
#   requires CMD...   skip (exit 77) unless every CMD is runnable; under CI=true that is a failure
#   skip MSG          the same for any other missing precondition
#   cleanup_fn CMD [ARG...]   run CMD ARG... on exit (last registered runs first)
#   fail MSG          print "FAIL: MSG" on stderr and exit 1
#   expect_fail_oneline CMD [ARG...]
#                     run CMD; assert it exits non-zero (not by a signal) with exactly one
#                     non-empty line on stderr; print that line on stdout
#   json_get EXPR     read one JSON document on stdin, print the Python expression EXPR over
#                     it (named j): strings raw, everything else as JSON (null, true, 3, [...])

: "${TM_SOURCE_ROOT:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${TIDEMARK:=$TM_SOURCE_ROOT/build/tools/tidemark}"
export TM_SOURCE_ROOT TIDEMARK

_tm_test_name=$(basename "$0" .sh)

skip() {
    if [ "${CI:-}" = true ]; then
        echo "$_tm_test_name: FAIL (CI=true, so no skipping): $*" >&2
        exit 1
    fi
    echo "$_tm_test_name: SKIP: $*" >&2
    exit 77
}

requires() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || skip "required program '$c' not found"
    done
}

fail() {
    echo "$_tm_test_name: FAIL: $*" >&2
    exit 1
}

_tm_cleanup=()
cleanup_fn() {
    local q
    q=$(printf '%q ' "$@")
    _tm_cleanup+=("$q")
}
_tm_run_cleanup() {
    local rc=$? i
    set +e
    for ((i = ${#_tm_cleanup[@]} - 1; i >= 0; i--)); do
        eval "${_tm_cleanup[i]}"
    done
    exit "$rc"
}
trap _tm_run_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tidemark-$_tm_test_name.XXXXXX")
if [ "${KEEP_TMP:-}" = 1 ]; then
    echo "$_tm_test_name: keeping $tmp" >&2
else
    cleanup_fn rm -rf "$tmp"
fi

expect_fail_oneline() {
    local out err rc=0 n
    out=$(mktemp "$tmp/expect-out.XXXXXX")
    err=$(mktemp "$tmp/expect-err.XXXXXX")
    "$@" >"$out" 2>"$err" || rc=$?
    if [ "$rc" -eq 0 ]; then
        cat "$out" "$err" >&2
        fail "expected failure, but it succeeded: $*"
    fi
    if [ "$rc" -ge 126 ]; then
        cat "$err" >&2
        fail "exit $rc (crash or not executable), expected an error exit: $*"
    fi
    n=$(awk 'END { print NR }' "$err")
    if [ "$n" -ne 1 ] || ! grep -q '[^[:space:]]' "$err"; then
        echo "--- stderr ($n lines) ---" >&2
        cat "$err" >&2
        fail "expected exactly one non-empty line on stderr, got $n: $*"
    fi
    cat "$err"
    # The last command's stdout, for callers that check --json error objects.
    cp "$out" "$tmp/last-stdout"
    rm -f "$out" "$err"
}

json_get() {
    python3 -c '
import json, sys
j = json.load(sys.stdin)
v = eval(sys.argv[1], {"j": j})
print(v if isinstance(v, str) else json.dumps(v))
' "$1"
}
