# tests/lib/protect.sh: helpers for tests that run `tidemark protect` (source after functions.sh).
#
#   start_protect VOLUME JOURNAL SOCK [ARG...]
#                     starts `tidemark protect` in the background on unix:SOCK, waits for its
#                     "protecting ..." line; sets $protect_pid, $protect_out, $protect_err.
#                     The daemon is killed on exit (cleanup_fn).
#   stop_protect      SIGTERM, wait; fails unless it exits 0 and prints "stopped ... at seq N"
#   kill9_protect     kill -9 and reap
#   qemu_io URI CMD...  qemu-io -f raw with -c for each CMD; fails the test on any error
#   kill_quiet [-SIG] PID...  signals those of PID... that are still this shell's children

kill_quiet() {  # [-SIG] PID...: only this test's own children (a pid reaped long ago may
    local sig=() p  # belong to another program by now: never signal that one)
    if [[ ${1:-} == -* ]]; then sig=("$1"); shift; fi
    for p in "$@"; do
        [ "$(ps -o ppid= -p "$p" 2>/dev/null | tr -d ' ')" = "$$" ] || continue
        kill "${sig[@]}" "$p" 2>/dev/null || true
    done
}

_protect_n=0
start_protect() {
    local vol=$1 j=$2 sock=$3 i
    shift 3
    _protect_n=$((_protect_n + 1))
    protect_out=$tmp/protect.$_protect_n.out
    protect_err=$tmp/protect.$_protect_n.err
    : >"$protect_out"
    : >"$protect_err"
    "$TIDEMARK" protect --volume "$vol" --journal "$j" --listen "unix:$sock" "$@" \
        >"$protect_out" 2>"$protect_err" &
    protect_pid=$!
    cleanup_fn kill_quiet -9 "$protect_pid"
    for ((i = 0; i < 600; i++)); do
        if grep -q '^protecting ' "$protect_out"; then
            [ -S "$sock" ] || fail "protect printed its ready line but $sock is not a socket"
            return 0
        fi
        if ! kill -0 "$protect_pid" 2>/dev/null; then
            cat "$protect_out" "$protect_err" >&2
            fail "protect exited before it was ready"
        fi
        sleep 0.1
    done
    cat "$protect_out" "$protect_err" >&2
    fail "protect did not print its ready line within 60 s"
}

stop_protect() {
    local rc=0
    kill -TERM "$protect_pid"
    wait "$protect_pid" || rc=$?
    if [ "$rc" -ne 0 ]; then
        cat "$protect_out" "$protect_err" >&2
        fail "protect exited with $rc on SIGTERM"
    fi
    grep -qE '^stopped .* at seq [0-9]+$' "$protect_out" ||
        { cat "$protect_out" >&2; fail "protect did not print 'stopped NAME at seq N'"; }
}

kill9_protect() {
    kill -9 "$protect_pid" 2>/dev/null || true
    wait "$protect_pid" 2>/dev/null || true
}

qemu_io() {
    local uri=$1 out c args=()
    shift
    for c in "$@"; do args+=(-c "$c"); done
    out=$(qemu-io -f raw "$uri" "${args[@]}" 2>&1) || { echo "$out" >&2; fail "qemu-io $*"; }
    if grep -qiE 'failed|error' <<<"$out"; then
        echo "$out" >&2
        fail "qemu-io $*"
    fi
}
