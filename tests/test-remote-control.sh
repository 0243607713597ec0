#!/usr/bin/env bash
# The target's control API over TLS (issue #4, item 4): points, bookmark and restore with
# --target, on the same port as the taps' stream (ALPN http/1.1 beside tidemark/1).
# - each tenant's `points --target` lists its volume, and only its own: another tenant's
#   volume is "not found", word for word as a volume that does not exist (points, bookmark,
#   restore), and a wrong token is "unauthenticated"; bad option sets are one-line errors;
# - `bookmark --target` while the tap runs, then `restore --target --bookmark` equals a copy
#   of the volume taken at that moment; `restore --target --latest` after the tap stops
#   equals the volume (raw, and qcow2 through qemu-img);
# - a block stream cut in the middle (a TCP proxy drops the connection) is an error and
#   leaves no output file;
# - GET /metrics answers without a token, with the ingest counters; /v1 without one is 401;
#   GET /v1/status shows the caller's volumes only.
source "$(dirname "$0")/functions.sh"
source "$(dirname "$0")/lib/protect.sh"
source "$(dirname "$0")/lib/remote.sh"
requires qemu-io qemu-img python3 cmp

tgt=$tmp/target
init_target "$tgt"
add_tenant "$target_conf" alice "$tmp/alice.token"
add_tenant "$target_conf" bob "$tmp/bob.token"
start_target "$target_conf"

truncate -s 32M "$tmp/a.img" "$tmp/b.img"
qemu_io "$tmp/a.img" "write -P 0x11 0 1M"
start_tap "$tmp/a.img" a alice "$tmp/alice.token" "$tmp/st-a" "$tmp/a.sock"
pid_a=$tap_pid
start_tap "$tmp/b.img" b bob "$tmp/bob.token" "$tmp/st-b" "$tmp/b.sock"
pid_b=$tap_pid
qemu_io "nbd+unix:///a?socket=$tmp/a.sock" "write -P 0x22 4M 8M" "write -P 0x33 31M 512k"
qemu_io "nbd+unix:///b?socket=$tmp/b.sock" "write -P 0x44 0 2M"

as() {  # TENANT [TOKENFILE]: the --target options of a tenant
    echo --target "$target_addr" --tenant "$1" --token-file "${2:-$tmp/$1.token}" --ca "$target_ca"
}
# Waits until the tap of STATE has every write it took acknowledged by the target.
queue_empty() { [ "$(tap_status "$1" | json_get 'j["volumes"][0]["queued_writes"]')" = 0 ]; }
drained() { wait_for 30 "the tap of $1 to drain its queue" queue_empty "$1"; }
drained "$tmp/st-a"
drained "$tmp/st-b"

# Each tenant lists its own volume.
v=$("$TIDEMARK" points $(as alice) a --json | json_get 'j["volume"]') || fail "points a"
[ "$v" = a ] || fail "alice's points name volume '$v'"
v=$("$TIDEMARK" points $(as bob) b --json | json_get 'j["volume"]') || fail "points b"
[ "$v" = b ] || fail "bob's points name volume '$v'"
"$TIDEMARK" points $(as alice) a --flushes --json | json_get 'j["format"], j["first"]["seq"], len(j["flushes"]) >= 0' >/dev/null ||
    fail "points --flushes --json"
"$TIDEMARK" points $(as alice) a | grep -q '^volume a: 32.0 MiB, 4096-byte blocks' ||
    fail "points text form"

# Another tenant's volume is not found, exactly as a volume that does not exist.
for cmd in "points" "bookmark" "restore"; do
    case $cmd in
        points) extra=() ;;
        bookmark) extra=(mark) ;;
        restore) extra=(--latest --output "$tmp/never.img") ;;
    esac
    msg=$(expect_fail_oneline "$TIDEMARK" $cmd $(as alice) b "${extra[@]}")
    case $msg in *"not found"*) ;; *) fail "$cmd of bob's volume as alice: $msg" ;; esac
    none=$(expect_fail_oneline "$TIDEMARK" $cmd $(as alice) nosuch "${extra[@]}")
    [ "${msg/\'b\'/X}" = "${none/\'nosuch\'/X}" ] ||
        fail "$cmd: bob's volume ($msg) and a missing one ($none) answer differently"
    [ ! -e "$tmp/never.img" ] || fail "$cmd left an output"
done
# A wrong token, or another tenant's.
echo tmk_wrong >"$tmp/wrong.token"
msg=$(expect_fail_oneline "$TIDEMARK" points $(as alice "$tmp/wrong.token") a)
case $msg in *unauthenticated*) ;; *) fail "wrong token: $msg" ;; esac
msg=$(expect_fail_oneline "$TIDEMARK" bookmark $(as alice "$tmp/bob.token") a x)
case $msg in *unauthenticated*) ;; *) fail "bob's token as alice: $msg" ;; esac
# Option sets: exactly one of --journal and --target; --target needs --ca.
expect_fail_oneline "$TIDEMARK" points a >/dev/null
expect_fail_oneline "$TIDEMARK" points --journal "$tgt/tenants/alice/journal" $(as alice) a >/dev/null
expect_fail_oneline "$TIDEMARK" points --target "$target_addr" --tenant alice \
    --token-file "$tmp/alice.token" a >/dev/null
# An untrusted CA is refused at the handshake.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/o.key" \
    -out "$tmp/other-ca.crt" -subj /CN=other -days 1 2>/dev/null || fail "openssl req"
msg=$(expect_fail_oneline "$TIDEMARK" points --target "$target_addr" --tenant alice \
    --token-file "$tmp/alice.token" --ca "$tmp/other-ca.crt" a)
case $msg in *TLS*) ;; *) fail "untrusted CA: $msg" ;; esac

# A bookmark while the tap runs, then more writes: the bookmark restores the copy.
"$TIDEMARK" bookmark $(as alice) a before-upgrade >/dev/null || fail "bookmark --target"
cp --sparse=always "$tmp/a.img" "$tmp/a-at-mark.img"
msg=$(expect_fail_oneline "$TIDEMARK" bookmark $(as alice) a before-upgrade)
case $msg in *before-upgrade*) ;; *) fail "a taken bookmark name: $msg" ;; esac
qemu_io "nbd+unix:///a?socket=$tmp/a.sock" "write -P 0x55 2M 4M" "write -z 20M 1M"
drained "$tmp/st-a"
n=$("$TIDEMARK" points $(as alice) a --json | json_get '[b["name"] for b in j["bookmarks"]]')
[ "$n" = '["before-upgrade"]' ] || fail "bookmarks listed: $n"
"$TIDEMARK" restore $(as alice) a --bookmark before-upgrade --output "$tmp/mark.img" >/dev/null ||
    fail "restore --target --bookmark"
cmp "$tmp/mark.img" "$tmp/a-at-mark.img" || fail "the bookmark's restore differs from the copy"
cmp -s "$tmp/mark.img" "$tmp/a.img" && fail "the later writes did not change the volume"
msg=$(expect_fail_oneline "$TIDEMARK" restore $(as alice) a --latest --output "$tmp/mark.img")
case $msg in *exists*) ;; *) fail "existing output: $msg" ;; esac

# A block stream cut halfway through: an error, and no output.
python3 - "$target_addr" 3000000 >"$tmp/proxy.port" <<'PY' &
# TCP proxy to the target that drops a connection after N bytes from the target.
import socket, sys, threading
host, port = sys.argv[1].rsplit(":", 1)
limit = int(sys.argv[2])
lst = socket.socket()
lst.bind(("127.0.0.1", 0))
lst.listen(4)
print(lst.getsockname()[1], flush=True)
def pump(src, dst, cap):
    n = 0
    try:
        while cap is None or n < cap:
            b = src.recv(65536 if cap is None else min(65536, cap - n))
            if not b:
                break
            dst.sendall(b)
            n += len(b)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
while True:
    c, _ = lst.accept()
    u = socket.create_connection((host, int(port)))
    threading.Thread(target=pump, args=(c, u, None), daemon=True).start()
    threading.Thread(target=pump, args=(u, c, limit), daemon=True).start()
PY
proxy_pid=$!
cleanup_fn kill_quiet "$proxy_pid"
port_printed() { complete_line "$tmp/proxy.port" '^[0-9]+$' >/dev/null; }
wait_for --pid "$proxy_pid" 10 "the cutting proxy's port" port_printed
cut="127.0.0.1:$(cat "$tmp/proxy.port")"
msg=$(expect_fail_oneline "$TIDEMARK" restore --target "$cut" --tenant alice \
    --token-file "$tmp/alice.token" --ca "$target_ca" a --latest --output "$tmp/cut.img")
case $msg in *truncated*|*closed*) ;; *) fail "cut stream: $msg" ;; esac
[ -z "$(ls "$tmp" | grep '^cut\.img')" ] || fail "a cut stream left $(ls "$tmp" | grep '^cut\.img')"
kill_quiet "$proxy_pid"

# After the taps stop, the latest point is the volume (raw and qcow2).
stop_pid "$pid_a"
stop_pid "$pid_b"
"$TIDEMARK" restore $(as alice) a --latest --output "$tmp/latest.img" >/dev/null ||
    fail "restore --target --latest"
cmp "$tmp/latest.img" "$tmp/a.img" || fail "alice's latest point differs from her volume"
"$TIDEMARK" restore $(as bob) b --latest --output "$tmp/b.qcow2" --format qcow2 --json \
    | json_get 'j["point"]["seq"]' >/dev/null || fail "restore --target --format qcow2"
qemu-img compare -q -f qcow2 -F raw "$tmp/b.qcow2" "$tmp/b.img" || fail "bob's qcow2 differs"
"$TIDEMARK" restore $(as alice) a --seq 0 --output "$tmp/latest.img" --force >/dev/null ||
    fail "restore --target --seq 0 --force"
cmp -n 1048576 "$tmp/latest.img" <(head -c 1048576 /dev/zero | tr '\0' '\021') ||
    fail "seq 0 is not the volume as it was before protection"

# /metrics without a token; the API without one is 401.
python3 - "$target_addr" "$target_ca" "$(cat "$tmp/alice.token")" >"$tmp/metrics.txt" <<'PY' ||
import http.client, json, ssl, sys
host, port = sys.argv[1].rsplit(":", 1)
ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.set_alpn_protocols(["http/1.1"])
c = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=20)
c.request("GET", "/v1/volumes")
r = c.getresponse()
body = r.read().decode()
assert r.status == 401 and '"unauthenticated"' in body, (r.status, body)
c.request("GET", "/v1/status", headers={"Authorization": "Bearer " + sys.argv[3],
                                        "X-Tidemark-Tenant": "alice"})
r = c.getresponse()
st = json.loads(r.read())
assert r.status == 200 and st["tenant"] == "alice", st
assert [v["name"] for v in st["volumes"]] == ["a"] and st["volumes"][0]["latest_seq"] > 0, st
c.request("GET", "/metrics")
r = c.getresponse()
assert r.status == 200, r.status
print(r.read().decode())
PY
    fail "GET /v1/status or /metrics"
for m in tidemark_target_sessions tidemark_target_writes_total tidemark_target_write_bytes_total \
    tidemark_target_rejected_total; do
    grep -q "^$m [0-9]" "$tmp/metrics.txt" || fail "/metrics lacks $m"
done
w=$(sed -n 's/^tidemark_target_writes_total //p' "$tmp/metrics.txt")
[ "$w" -gt 0 ] || fail "tidemark_target_writes_total is $w"
# `status --target` shows the tenant's own volumes only.
"$TIDEMARK" status $(as alice) --json >"$tmp/status.json" || fail "status --target"
names=$(json_get '[v["name"] for v in j["targets"][0]["volumes"]]' <"$tmp/status.json")
case $names in *'"a"'*) ;; *) fail "status --target as alice: $names" ;; esac
case $names in *'"b"'*) fail "alice's status shows bob's volume: $names" ;; esac
"$TIDEMARK" status $(as alice) | grep -q '^target .* tenant alice' || fail "status --target text"
msg=$(expect_fail_oneline "$TIDEMARK" status $(as alice "$tmp/wrong.token"))
case $msg in *unauthenticated*) ;; *) fail "status with a wrong token: $msg" ;; esac
echo "ok: status --target"
stop_pid "$target_pid"
echo "remote control: ok"
