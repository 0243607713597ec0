#!/usr/bin/env bash
# tidemark mount --target (issue #5, item 1): a virtual snapshot served from a target's
# control API over TLS (GET /v1/volumes/NAME/read), while the tap keeps shipping.
# - a bookmark mounted from the target equals a copy of the volume taken then, and the
#   latest point equals the volume (qemu-img compare); nbdinfo --map shows the holes;
# - a raw READ with 512-byte granularity across block boundaries returns the right bytes;
# - --writable works remotely too and the target's points do not change;
# - tenant bob cannot mount alice's volume: "not found", word for word as a volume that
#   does not exist; a wrong token is "unauthenticated".
set -euo pipefail
source "$(dirname "$0")/functions.sh"
source "$(dirname "$0")/lib/protect.sh"
source "$(dirname "$0")/lib/remote.sh"
source "$(dirname "$0")/lib/mount.sh"
requires qemu-io qemu-img nbdinfo python3 cmp "$TIDEMARK"

init_target "$tmp/target"
add_tenant "$target_conf" alice "$tmp/alice.token"
add_tenant "$target_conf" bob "$tmp/bob.token"
start_target "$target_conf"

truncate -s 80M "$tmp/a.img"
truncate -s 32M "$tmp/b.img"
qemu_io "$tmp/a.img" "write -P 0x11 0 1M"
start_tap "$tmp/a.img" a alice "$tmp/alice.token" "$tmp/st-a" "$tmp/a.sock"
pid_a=$tap_pid
start_tap "$tmp/b.img" b bob "$tmp/bob.token" "$tmp/st-b" "$tmp/b.sock"
pid_b=$tap_pid
auri="nbd+unix:///a?socket=$tmp/a.sock"
qemu_io "$auri" "write -P 0x22 4M 8M" "write -P 0x33 31M 512k" "write -P 0x34 1536 1024"

as() {  # TENANT [TOKENFILE]: the --target options of a tenant
    echo --target "$target_addr" --tenant "$1" --token-file "${2:-$tmp/$1.token}" --ca "$target_ca"
}
queue_empty() { [ "$(tap_status "$1" | json_get 'j["volumes"][0]["queued_writes"]')" = 0 ]; }
drained() { wait_for 30 "the tap of $1 to drain its queue" queue_empty "$1"; }
drained "$tmp/st-a"
"$TIDEMARK" bookmark $(as alice) a mark1 >/dev/null || fail "bookmark --target"
cp --sparse=always "$tmp/a.img" "$tmp/a-mark1.img"
qemu_io "$auri" "write -P 0x44 6M 2M" "write -z 31M 64k"
drained "$tmp/st-a"

msock=$tmp/m.sock
muri="nbd+unix:///a?socket=$msock"
echo "== mount a bookmark from the target while the tap runs"
start_mount "$msock" $(as alice) a --bookmark mark1
grep -qE "^mounted a at seq [0-9]+ .* read-only$" "$mount_out" || fail "ready: $(cat "$mount_out")"
qemu-img compare -q -f raw -F raw "$muri" "$tmp/a-mark1.img" || fail "mark1 differs from its copy"
map=$(nbdinfo --map --json "$muri")
python3 - "$map" <<'PY' || fail "nbdinfo --map: $map"
import json, sys
M = 1 << 20
m = json.loads(sys.argv[1])
def types(lo, hi):
    return {e["type"] for e in m if e["offset"] < hi and e["offset"] + e["length"] > lo}
assert sum(e["length"] for e in m) == 80 * M
assert types(16 * M, 31 * M) == {3}, types(16 * M, 31 * M)
assert types(32 * M, 80 * M) == {3}, types(32 * M, 80 * M)
assert types(4 * M, 12 * M) == {0}, types(4 * M, 12 * M)
PY
# 512-byte-granular reads across a block boundary (the pattern written at 1536).
out=$(python3 "$TM_SOURCE_ROOT/tests/lib/nbd_raw.py" ops "$msock" a "read 1024 2048" "read 3584 1024")
want1=$(python3 -c 'import hashlib,sys; print(hashlib.sha256(b"\x11"*512 + b"\x34"*1024 + b"\x11"*512).hexdigest())')
want2=$(python3 -c 'import hashlib,sys; print(hashlib.sha256(b"\x11"*1024).hexdigest())')
[ "$out" = "ok $want1
ok $want2" ] || fail "raw unaligned reads: $out"
# A 32 MiB READ (the largest NBD request) spans several route requests.
out=$(python3 "$TM_SOURCE_ROOT/tests/lib/nbd_raw.py" ops "$msock" a "read 512 32M")
want=$(python3 -c 'import hashlib,sys; f=open(sys.argv[1],"rb"); f.seek(512); print(hashlib.sha256(f.read(32<<20)).hexdigest())' "$tmp/a-mark1.img")
[ "$out" = "ok $want" ] || fail "a 32 MiB read: $out"
stop_mount
echo "ok: mark1 from the target equals its copy; holes mapped; unaligned reads"

echo "== latest point, --writable"
points_before=$("$TIDEMARK" points $(as alice) a --json)
start_mount "$msock" $(as alice) a --latest --writable --json
qemu-img compare -q -f raw -F raw "$muri" "$tmp/a.img" || fail "latest differs from the volume"
qemu_io "$muri" "write -P 0x77 100k 3k" "discard 5M 1M"
qemu_io "$muri" "read -P 0x77 100k 3k" "read -P 0 5M 1M" "read -P 0x22 4M 1M"
stop_mount
grep -q '"writes":2' "$mount_out" || fail "final line: $(cat "$mount_out")"
[ "$("$TIDEMARK" points $(as alice) a --json)" = "$points_before" ] || fail "the target's points changed"
qemu_io "$tmp/a.img" "read -P 0x11 100k 3k"
echo "ok: writable remote mount; the volume and the target unchanged"

echo "== tenant isolation"
msg=$(expect_fail_oneline "$TIDEMARK" mount $(as bob) a --latest --listen "unix:$msock")
case $msg in *"not found"*) ;; *) fail "bob mounting alice's volume: $msg" ;; esac
echo "bob mounting alice's volume: $msg"
none=$(expect_fail_oneline "$TIDEMARK" mount $(as bob) nosuch --latest --listen "unix:$msock")
[ "${msg/\'a\'/X}" = "${none/\'nosuch\'/X}" ] ||
    fail "alice's volume ($msg) and a missing one ($none) answer bob differently"
msg=$(expect_fail_oneline "$TIDEMARK" mount $(as alice "$tmp/bob.token") a --latest --listen "unix:$msock")
case $msg in *unauthenticated*) ;; *) fail "bob's token as alice: $msg" ;; esac
[ ! -e "$msock" ] || fail "a refused mount left its socket"
# The read route itself: bob asking for alice's blocks is a 404, like any unknown volume.
python3 - "$target_addr" "$target_ca" "$(cat "$tmp/bob.token")" <<'PY' || fail "read route as bob"
import http.client, ssl, sys
host, port = sys.argv[1].rsplit(":", 1)
ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.set_alpn_protocols(["http/1.1"])
c = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=20)
h = {"Authorization": "Bearer " + sys.argv[3], "X-Tidemark-Tenant": "bob"}
c.request("GET", "/v1/volumes/a/read?seq=1&block=0&count=1", headers=h)
r = c.getresponse()
body = r.read().decode()
assert r.status == 404 and "not found" in body, (r.status, body)
c.request("GET", "/v1/volumes/b/read?seq=0&block=0&count=0", headers=h)
r = c.getresponse()
body = r.read().decode()
assert r.status == 400, (r.status, body)
PY
echo "ok: tenant isolation"

stop_pid "$pid_a"
stop_pid "$pid_b"
stop_pid "$target_pid"
echo "test-mount-remote: OK"
