# tests/lib/mount.sh: helpers for tests of `tidemark mount` (source after functions.sh and
# lib/protect.sh).
#
#   start_mount SOCK ARG...   `tidemark mount ARG... --listen unix:SOCK` in the background;
#                             waits (wait_for, 15 s scaled) for its whole "mounted ..." line
#                             (or --json's object); sets $mount_pid, $mount_out, $mount_err.
#                             Killed on exit (cleanup_fn).
#   stop_mount                SIGTERM, wait; fails unless it exits 0 and prints "unmounted ..."

_mount_n=0
start_mount() {
    local sock=$1
    shift
    _mount_n=$((_mount_n + 1))
    mount_out=$tmp/mount.$_mount_n.out
    mount_err=$tmp/mount.$_mount_n.err
    : >"$mount_out"
    : >"$mount_err"
    "$TIDEMARK" mount "$@" --listen "unix:$sock" >"$mount_out" 2>"$mount_err" &
    mount_pid=$!
    cleanup_fn kill_quiet -9 "$mount_pid"
    # TODO(#12): SOCK now appears only when mount serves (docs/design.md#readiness): the
    # owner of that change may wait for the socket here instead of the ready line.
    wait_for --pid "$mount_pid" --show "$mount_out" --show "$mount_err" 15 \
        "mount's ready line ($*)" complete_line "$mount_out" '^(mounted |\{.*"listen")' >/dev/null
    [ -S "$sock" ] || fail "mount printed its ready line but $sock is not a socket"
}

stop_mount() {
    local rc=0
    kill -TERM "$mount_pid"
    wait "$mount_pid" || rc=$?
    if [ "$rc" -ne 0 ]; then
        cat "$mount_out" "$mount_err" >&2
        fail "mount exited with $rc on SIGTERM"
    fi
    grep -qE '^(unmounted |\{.*"stopped")' "$mount_out" ||
        { cat "$mount_out" >&2; fail "mount did not print its final line"; }
}
