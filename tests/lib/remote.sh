# tests/lib/remote.sh: helpers for tests of the remote path (source after functions.sh and
# lib/protect.sh).
#
#   init_target DIR                 target init on 127.0.0.1, a free port; sets $target_conf,
#                                   $target_ca, $target_port
#   add_tenant CONF NAME FILE       tenant add, token into FILE
#   start_target CONF               target serve in the background; waits (wait_for, 15 s
#                                   scaled) for its whole ready line; sets $target_pid,
#                                   $target_addr (on a first start, another free port when
#                                   the configured one was taken meanwhile: see free_port)
#   start_tap VOL NAME TENANT TOKENFILE STATE SOCK [ARG...]
#                                   tidemark tap in the background; waits (wait_for, 30 s
#                                   scaled) for its whole "tapping ..." line; sets $tap_pid,
#                                   $tap_out, $tap_err
#   stop_pid PID                    SIGTERM and wait; fails unless it exits 0
#   tap_status STATE                the tap's GET /v1/status body (python, over its socket)

# The target's config cannot say port 0 (target.listen must be 1..65535), so init_target
# takes a port that was free a moment ago; another program may bind it before the target
# does. The first start of a config therefore moves to another free port when its port is
# taken (nothing has its address yet); a restart keeps its port, which the taps use.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

declare -gA _target_movable=()
init_target() {
    local dir=$1
    target_port=$(free_port)
    "$TIDEMARK" target init --data "$dir" --listen "127.0.0.1:$target_port" --host 127.0.0.1 \
        --host localhost >/dev/null || fail "target init failed"
    target_conf=$dir/target.toml
    target_ca=$dir/ca.crt
    _target_movable[$target_conf]=1
}

add_tenant() {
    "$TIDEMARK" tenant add "$2" --config "$1" --json | json_get 'j["token"]' >"$3" ||
        fail "tenant add $2 failed"
    [ -s "$3" ] || fail "no token for $2"
}

_target_ready_or_gone() { # true once the target printed its whole ready line or exited
    complete_line "$target_out" '^target serving .* on [^ ]+ ' >/dev/null ||
        ! kill -0 "$target_pid" 2>/dev/null
}

_target_n=0
start_target() {
    local conf=$1 attempt
    for attempt in 1 2 3 4 5; do
        _target_n=$((_target_n + 1))
        target_out=$tmp/target.$_target_n.out
        : >"$target_out"
        "$TIDEMARK" target serve --config "$conf" >"$target_out" 2>"$target_out.err" &
        target_pid=$!
        cleanup_fn kill_quiet -9 "$target_pid"
        # TODO(#12): the target now listens only once DATA/daemon.json says "ready"
        # (docs/design.md#readiness): the owner of that change may wait on that here.
        wait_for --show "$target_out" --show "$target_out.err" 15 "the target's ready line" \
            _target_ready_or_gone
        target_addr=$(complete_line "$target_out" '^target serving ' |
            sed -n 's/^target serving .* on \([^ ]*\) .*/\1/p')
        if [ -n "$target_addr" ]; then
            unset "_target_movable[$conf]"
            return 0
        fi
        wait "$target_pid" 2>/dev/null || true
        if [ -n "${_target_movable[$conf]:-}" ] && grep -q 'in use' "$target_out.err"; then
            target_port=$(free_port)
            echo "start_target: $(cat "$target_out.err"); moving to port $target_port" >&2
            sed -i "s/^listen = .*/listen = \"127.0.0.1:$target_port\"/" "$conf"
            continue
        fi
        cat "$target_out" "$target_out.err" >&2
        fail "target serve exited before it was ready"
    done
    fail "target serve found no free port in 5 attempts"
}

_tap_n=0
start_tap() {
    local vol=$1 name=$2 tenant=$3 token=$4 state=$5 sock=$6
    shift 6
    _tap_n=$((_tap_n + 1))
    tap_out=$tmp/tap.$_tap_n.out
    tap_err=$tmp/tap.$_tap_n.err
    : >"$tap_out"
    : >"$tap_err"
    "$TIDEMARK" tap --volume "$vol" --target "$target_addr" --tenant "$tenant" \
        --token-file "$token" --name "$name" --listen "unix:$sock" --ca "$target_ca" \
        --state "$state" "$@" >"$tap_out" 2>"$tap_err" &
    tap_pid=$!
    cleanup_fn kill_quiet -9 "$tap_pid"
    # TODO(#12): SOCK now appears only when the tap serves, after STATE/daemon.json says
    # "ready" (docs/design.md#readiness): the owner of that change may wait for it here.
    wait_for --pid "$tap_pid" --show "$tap_out" --show "$tap_err" 30 "the tap's ready line" \
        complete_line "$tap_out" '^tapping ' >/dev/null
}

stop_pid() {
    kill -TERM "$1"
    local rc=0
    wait "$1" || rc=$?
    [ "$rc" -eq 0 ] || fail "process $1 exited $rc after SIGTERM"
}

tap_status() {
    python3 - "$1/control.sock" <<'PY'
import socket, sys, json
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
data = b""
while True:
    b = s.recv(65536)
    if not b: break
    data += b
print(data.split(b"\r\n\r\n", 1)[1].decode())
PY
}
