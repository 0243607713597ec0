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
#
# Waiting (docs/testing.md: a test waits for a condition, never for a fixed time):
#   $TM_TIMEOUT_SCALE multiplies every deadline given to scaled and wait_for (env; default 4).
#                     Deadlines in the tests are what an idle machine needs, with some margin;
#                     the scale covers a loaded one (2 cores, two tests and a build at once).
#   scaled SECONDS    prints SECONDS x TM_TIMEOUT_SCALE, rounded up to a whole second
#   wait_for [--pid PID] [--show FILE]... SECONDS WHAT CMD [ARG...]
#                     runs CMD (in this shell: it may set variables) until it exits 0, every
#                     0.1 s for the first 2 s, then every 0.5 s; after `scaled SECONDS` it prints
#                     each FILE on stderr and fails "timed out after N s waiting for WHAT".
#                     With --pid it fails as soon as PID has exited (CMD still false).
#   complete_line FILE REGEX
#                     prints the first line of FILE that matches REGEX (Perl syntax) and is
#                     complete, i.e. ends with a newline; exits 1 when there is none. For logs
#                     still being written: a line without its newline may be cut anywhere.
#                     CRs are dropped first (serial consoles end lines with CR LF).

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

# New journals are format 2 whatever the caller's shell says (the unit suites choose theirs).
unset TIDEMARK_JOURNAL_FORMAT
: "${TM_TIMEOUT_SCALE:=4}"
export TM_TIMEOUT_SCALE

scaled() {
    awk -v s="$1" -v k="$TM_TIMEOUT_SCALE" 'BEGIN {
        if (k !~ /^[0-9]+([.][0-9]+)?$/ || k <= 0) { print "bad TM_TIMEOUT_SCALE " k > "/dev/stderr"; exit 1 }
        t = s * k; r = int(t); if (r < t) r++; print r }'
}

wait_for() {
    # Its locals have odd names: CMD runs in this function's scope and sees them.
    local _wf_pid= _wf_show=() _wf_limit _wf_what _wf_t0 _wf_now
    while :; do
        case ${1:-} in
        --pid) _wf_pid=$2; shift 2 ;;
        --show) _wf_show+=("$2"); shift 2 ;;
        *) break ;;
        esac
    done
    [ $# -ge 3 ] || fail "test bug: wait_for [--pid PID] [--show FILE]... SECONDS WHAT CMD..."
    _wf_limit=$(scaled "$1") || fail "test bug: bad TM_TIMEOUT_SCALE"
    _wf_what=$2
    shift 2
    _wf_t0=${EPOCHREALTIME//[.,]/}
    while :; do
        if "$@"; then return 0; fi
        _wf_now=${EPOCHREALTIME//[.,]/}
        if [ -n "$_wf_pid" ] && ! kill -0 "$_wf_pid" 2>/dev/null; then
            [ ${#_wf_show[@]} -eq 0 ] || tail -n 50 "${_wf_show[@]}" >&2
            fail "process $_wf_pid exited while waiting for $_wf_what"
        fi
        if [ $(((_wf_now - _wf_t0) / 1000000)) -ge "$_wf_limit" ]; then
            [ ${#_wf_show[@]} -eq 0 ] || tail -n 50 "${_wf_show[@]}" >&2
            fail "timed out after $_wf_limit s waiting for $_wf_what (TM_TIMEOUT_SCALE=$TM_TIMEOUT_SCALE)"
        fi
        if [ $((_wf_now - _wf_t0)) -lt 2000000 ]; then sleep 0.1; else sleep 0.5; fi
    done
}

complete_line() {
    perl -e '
        my $re = qr/$ARGV[0]/;
        open(my $f, "<", $ARGV[1]) or exit 1;
        while (my $l = <$f>) {
            next unless $l =~ /\n\z/;
            $l =~ tr/\r//d;
            if ($l =~ $re) { print $l; exit 0 }
        }
        exit 1' "$2" "$1"
}
