#!/usr/bin/env bash
# Issue 12, part 1: a daemon is usable the moment it says it is (docs/design.md#readiness).
#   1. protect on a 256 MiB image that already holds data: the instant its unix socket
#      appears, daemon.json says ready and bookmark, points and restore all work (restore
#      equals the image), with no retry.
#   2. Commands issued while it imports wait for it (they never call the journal broken).
#   3. A starting daemon that never gets ready: bookmark/points/restore --wait 1 print one
#      line "DIR: daemon starting" and exit 4; with --json the code is try_again.
#   4. TCP: the port refuses clients until daemon.json says ready; a busy --listen fails
#      at once, before any import.
#   5. sd_notify: READY=1 reaches $NOTIFY_SOCKET after the socket exists, STOPPING=1 at stop.
#   6. target serve and tap: daemon.json is ready when their port / socket appears.
source "$(dirname "$0")/functions.sh"
source "$TM_SOURCE_ROOT/tests/lib/protect.sh"
source "$TM_SOURCE_ROOT/tests/lib/remote.sh"
requires python3 cmp
set -e

# expect_exit RC CMD...: CMD exits RC with exactly one line on stderr; prints that line.
expect_exit() {
    local want=$1 rc=0
    shift
    "$@" >"$tmp/ee.out" 2>"$tmp/ee.err" || rc=$?
    [ "$rc" -eq "$want" ] || { cat "$tmp/ee.err" >&2; fail "exit $rc, expected $want: $*"; }
    [ "$(awk 'END { print NR }' "$tmp/ee.err")" -eq 1 ] ||
        { cat "$tmp/ee.err" >&2; fail "expected one line on stderr: $*"; }
    cat "$tmp/ee.err"
}
# poll_fast SECONDS CMD...: CMD every 2 ms (the instant a socket appears matters here),
# under a deadline of SECONDS scaled for a loaded machine; false when it never held.
poll_fast() {
    local end=$((SECONDS + $(scaled "$1")))
    shift
    while [ "$SECONDS" -lt "$end" ]; do
        "$@" && return 0
        sleep 0.002
    done
    return 1
}
# port_ready_at_accept PORT RECORD SECONDS: polls 127.0.0.1:PORT every 2 ms (scaled
# deadline); the first accepted connection must find RECORD saying "ready".
port_ready_at_accept() {
    python3 - "$1" "$2" "$(scaled "$3")" <<'PY'
import json, socket, sys, time
port, rec = int(sys.argv[1]), sys.argv[2]
deadline = time.time() + int(sys.argv[3])
while time.time() < deadline:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=1)
    except OSError:
        time.sleep(0.002)
        continue
    state = json.load(open(rec)).get("state")
    s.close()
    if state != "ready":
        sys.exit(f"port {port} accepted while {rec} says {state}")
    sys.exit(0)
sys.exit(f"port {port} never accepted")
PY
}
alive_or_fail() { kill -0 "$1" 2>/dev/null || { cat "$2" >&2; fail "$3 exited"; }; }
state_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("state",""))' "$1"; }

# A 256 MiB volume full of data (incompressible: the import takes a moment).
img=$tmp/disk.img
python3 - "$img" <<'PY'
import os, sys, random
r = random.Random(12)
with open(sys.argv[1], "wb") as f:
    for i in range(256):
        f.write(r.randbytes(1 << 20))
PY
j=$tmp/j
sock=$tmp/nbd.sock

# --- 1 and 2: commands during the import wait; at the socket's appearance all work ---
"$TIDEMARK" protect --volume "$img" --journal "$j" --listen "unix:$sock" --name disk \
    >"$tmp/p.out" 2>"$tmp/p.err" &
ppid_=$!
cleanup_fn kill_quiet -9 "$ppid_"
# Wait for the "starting" record, then issue commands while the import runs.
poll_fast 15 eval '[ -f "$j/daemon.json" ] || { alive_or_fail "$ppid_" "$tmp/p.err" protect; false; }' ||
    fail "no daemon.json"
early=$(state_of "$j/daemon.json")
[ -S "$sock" ] && [ "$early" = starting ] && fail "the NBD socket exists while daemon.json says starting"
"$TIDEMARK" points --journal "$j" disk --json >"$tmp/early-points.json" 2>"$tmp/early-points.err" &
early_points=$!
"$TIDEMARK" bookmark --journal "$j" disk early >"$tmp/early-bm.out" 2>"$tmp/early-bm.err" &
early_bm=$!
# The instant the socket appears: daemon.json is ready, and everything works.
poll_fast 30 eval '[ -S "$sock" ] || { alive_or_fail "$ppid_" "$tmp/p.err" protect; false; }' ||
    fail "no NBD socket"
[ "$(state_of "$j/daemon.json")" = ready ] || fail "the NBD socket appeared before daemon.json said ready"
[ -S "$j/control.sock" ] || fail "the NBD socket appeared before the control socket"
[ ! -e "$sock.tmp" ] || fail "$sock.tmp is left beside the socket"
"$TIDEMARK" bookmark --journal "$j" disk pre || fail "bookmark at the socket's appearance"
"$TIDEMARK" points --journal "$j" disk --json >"$tmp/points.json" || fail "points"
[ "$(json_get 'j["bookmarks"][-1]["name"]' <"$tmp/points.json")" = pre ] || fail "points lacks bookmark pre"
"$TIDEMARK" restore --journal "$j" disk --bookmark pre --output "$tmp/r.img" || fail "restore"
cmp "$img" "$tmp/r.img" || fail "the restore of 'pre' differs from the image"
wait "$early_points" || { cat "$tmp/early-points.err" >&2; fail "points issued during the import failed"; }
wait "$early_bm" || { cat "$tmp/early-bm.err" >&2; fail "bookmark issued during the import failed"; }
[ "$(json_get 'j["first"]["seq"]' <"$tmp/early-points.json")" = 0 ] || fail "early points: no seq 0"
echo "ok: socket appeared ready (the commands issued while it was '$early' waited and worked)"
kill -TERM "$ppid_"
wait "$ppid_" || fail "protect exited non-zero on SIGTERM"
[ ! -e "$sock" ] || fail "the socket outlived the daemon"

# --- 3: a daemon that stays "starting": exit 4, one line ---
j2=$tmp/j2
"$TIDEMARK" journal import --journal "$j2" --name disk "$img" >/dev/null
# A process that holds the daemon lock and never writes daemon.json: a daemon starting.
python3 -c 'import fcntl, sys, time
f = open(sys.argv[1], "a"); fcntl.flock(f, fcntl.LOCK_EX); print("held", flush=True); time.sleep(600)' \
    "$j2/tidemark.lock" >"$tmp/holder.out" &
holder=$!
cleanup_fn kill_quiet "$holder"
wait_for --pid "$holder" 15 "the lock holder" grep -qx held "$tmp/holder.out"
for cmd in "bookmark --journal $j2 disk x" "points --journal $j2 disk" \
    "restore --journal $j2 disk --latest --output $tmp/no.img"; do
    # shellcheck disable=SC2086
    line=$(expect_exit 4 "$TIDEMARK" $cmd --wait 1)
    [[ $line == *"$j2: daemon starting"* ]] || fail "$cmd: expected 'daemon starting', got: $line"
done
"$TIDEMARK" points --journal "$j2" disk --wait 0 --json >"$tmp/busy.json" 2>/dev/null && fail "points succeeded"
[ "$(json_get 'j["error"]["code"]' <"$tmp/busy.json")" = try_again ] || fail "--json code is not try_again"
[ ! -e "$tmp/no.img" ] || fail "a refused restore left its output"
echo "ok: a starting daemon gives exit 4 and 'DIR: daemon starting'"
kill_quiet "$holder"
wait "$holder" 2>/dev/null || true
"$TIDEMARK" points --journal "$j2" disk >/dev/null || fail "points after the lock was released"

# --- 4: TCP: refused until ready; a busy address fails before the import ---
port=$(free_port)
j3=$tmp/j3
"$TIDEMARK" protect --volume "$img" --journal "$j3" --listen "127.0.0.1:$port" --name disk \
    >"$tmp/t.out" 2>"$tmp/t.err" &
tpid=$!
cleanup_fn kill_quiet -9 "$tpid"
port_ready_at_accept "$port" "$j3/daemon.json" 30 || fail "TCP readiness"
"$TIDEMARK" bookmark --journal "$j3" disk tcp-pre >/dev/null || fail "bookmark over TCP daemon"
line=$(expect_fail_oneline "$TIDEMARK" protect --volume "$img" --journal "$tmp/j4" \
    --listen "127.0.0.1:$port" --name disk)
[[ $line == *"127.0.0.1:$port"* ]] || fail "busy --listen: $line"
[ ! -e "$tmp/j4/CURRENT" ] || fail "a refused protect opened (created) a journal"
kill -TERM "$tpid"
wait "$tpid" || fail "TCP protect exited non-zero"
echo "ok: TCP port refused until ready; a busy address fails before any import"

# --- 5: sd_notify ---
python3 - "$TIDEMARK" "$img" "$tmp" "$(scaled 120)" <<'PY' || fail "sd_notify"
import json, os, signal, socket, subprocess, sys
tm, img, tmp = sys.argv[1:4]
ns = os.path.join(tmp, "notify.sock")
sock = os.path.join(tmp, "n.sock")
srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
srv.bind(ns)
srv.settimeout(int(sys.argv[4]))
env = dict(os.environ, NOTIFY_SOCKET=ns)
p = subprocess.Popen([tm, "protect", "--volume", img, "--journal", os.path.join(tmp, "j5"),
                      "--listen", "unix:" + sock, "--name", "disk"], env=env,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    msg = srv.recv(4096).decode()
    lines = msg.split("\n")
    if "READY=1" not in lines:
        sys.exit("first notification is not READY=1: " + msg)
    if f"MAINPID={p.pid}" not in lines:
        sys.exit("READY=1 without MAINPID: " + msg)
    if not os.path.exists(sock):
        sys.exit("READY=1 before the NBD socket exists")
    p.send_signal(signal.SIGTERM)
    msg = srv.recv(4096).decode()
    if "STOPPING=1" not in msg.split("\n"):
        sys.exit("no STOPPING=1 at SIGTERM: " + msg)
    if p.wait(60) != 0:
        sys.exit("protect exited non-zero")
finally:
    if p.poll() is None:
        p.kill()
PY
echo "ok: READY=1 after the socket exists, STOPPING=1 at stop"

# --- 6: target serve and tap ---
init_target "$tmp/target"
add_tenant "$target_conf" acme "$tmp/acme.token"
"$TIDEMARK" target serve --config "$target_conf" >"$tmp/ts.out" 2>&1 &
tspid=$!
cleanup_fn kill_quiet -9 "$tspid"
port_ready_at_accept "$target_port" "$tmp/target/daemon.json" 15 || fail "target readiness"
tsock=$tmp/tap.sock
"$TIDEMARK" tap --volume "$img" --name disk --target "127.0.0.1:$target_port" --tenant acme \
    --token-file "$tmp/acme.token" --ca "$target_ca" --state "$tmp/tapstate" \
    --listen "unix:$tsock" >"$tmp/tap.out" 2>"$tmp/tap.err" &
tappid=$!
cleanup_fn kill_quiet -9 "$tappid"
poll_fast 30 eval '[ -S "$tsock" ] || { alive_or_fail "$tappid" "$tmp/tap.err" tap; false; }' ||
    fail "no tap socket"
[ "$(state_of "$tmp/tapstate/daemon.json")" = ready ] || fail "the tap's socket appeared before ready"
"$TIDEMARK" status --state "$tmp/tapstate" --json >"$tmp/st.json" || fail "status of the tap"
st=$(json_get 'j["volumes"][0]["state"]' <"$tmp/st.json")
[ "$st" = protected ] || fail "tap state at its socket's appearance: $st"
"$TIDEMARK" bookmark --target "127.0.0.1:$target_port" --tenant acme --token-file "$tmp/acme.token" \
    --ca "$target_ca" disk tap-pre >/dev/null || fail "bookmark on the target at the tap's socket"
kill -TERM "$tappid"
wait "$tappid" || fail "tap exited non-zero"
kill -TERM "$tspid"
wait "$tspid" || fail "target exited non-zero"
echo "ok: target serve and tap are ready when their port and socket appear"
