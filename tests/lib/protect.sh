# tests/lib/protect.sh: helpers for tests that run `tidemark protect` (source after functions.sh).
#
#   start_protect VOLUME JOURNAL SOCK [ARG...]
#                     starts `tidemark protect` in the background on unix:SOCK, waits (wait_for,
#                     15 s scaled) for its whole "protecting ..." line; sets $protect_pid,
#                     $protect_out, $protect_err.
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
    local vol=$1 j=$2 sock=$3
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
    # TODO(#12): SOCK now appears only when protect serves, after JOURNAL/daemon.json says
    # "ready" (docs/design.md#readiness): the owner of that change may wait for it here.
    wait_for --pid "$protect_pid" --show "$protect_out" --show "$protect_err" 15 \
        "protect's ready line" complete_line "$protect_out" '^protecting ' >/dev/null
    [ -S "$sock" ] || fail "protect printed its ready line but $sock is not a socket"
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
