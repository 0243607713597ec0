# tests/lib/remote.sh: helpers for tests of the remote path (source after functions.sh and
# lib/protect.sh).
#
#   init_target DIR                 target init on 127.0.0.1, a free port; sets $target_conf
#   add_tenant CONF NAME FILE       tenant add, token into FILE
#   start_target CONF               target serve in the background; waits for its ready line;
#                                   sets $target_pid, $target_addr
#   start_tap VOL NAME TENANT TOKENFILE STATE SOCK [ARG...]
#                                   tidemark tap in the background; waits for "tapping ...";
#                                   sets $tap_pid, $tap_out, $tap_err
#   stop_pid PID                    SIGTERM and wait; fails unless it exits 0
#   tap_status STATE                the tap's GET /v1/status body (python, over its socket)

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

init_target() {
    local dir=$1
    target_port=$(free_port)
    "$TIDEMARK" target init --data "$dir" --listen "127.0.0.1:$target_port" --host 127.0.0.1 \
        --host localhost >/dev/null || fail "target init failed"
    target_conf=$dir/target.toml
    target_ca=$dir/ca.crt
}

add_tenant() {
    "$TIDEMARK" tenant add "$2" --config "$1" --json | json_get 'j["token"]' >"$3" ||
        fail "tenant add $2 failed"
    [ -s "$3" ] || fail "no token for $2"
}

_target_n=0
start_target() {
    local conf=$1 i
    _target_n=$((_target_n + 1))
    target_out=$tmp/target.$_target_n.out
    : >"$target_out"
    "$TIDEMARK" target serve --config "$conf" >"$target_out" 2>"$target_out.err" &
    target_pid=$!
    cleanup_fn kill_quiet -9 "$target_pid"
    for ((i = 0; i < 300; i++)); do
        if grep -q '^target serving ' "$target_out"; then
            target_addr=$(sed -n 's/^target serving .* on \([^ ]*\) .*/\1/p' "$target_out")
            return 0
        fi
        kill -0 "$target_pid" 2>/dev/null || { cat "$target_out" "$target_out.err" >&2; fail "target exited"; }
        sleep 0.1
    done
    fail "target did not start"
}

_tap_n=0
start_tap() {
    local vol=$1 name=$2 tenant=$3 token=$4 state=$5 sock=$6 i
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
    for ((i = 0; i < 600; i++)); do
        if grep -q '^tapping ' "$tap_out"; then return 0; fi
        kill -0 "$tap_pid" 2>/dev/null || { cat "$tap_out" "$tap_err" >&2; fail "tap exited before it was ready"; }
        sleep 0.1
    done
    cat "$tap_out" "$tap_err" >&2
    fail "tap did not print its ready line within 60 s"
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
