#!/usr/bin/env bash
# DR drills against a remote target (issue 5, item 2 with --target): the boot image is
# protected by `tidemark tap` shipping to `tidemark target serve`; bookmark `b` on the target.
# - `drill start --target ... --state DIR vm --bookmark b --boot-check --marker
#   TIDEMARK-BOOT-OK --stop-after-check` passes (the drill's export reads the target's read
#   route); its record lives in DIR/drills; `drill list --state DIR` and `points --target ...
#   --state DIR --json` (last_drill) show it;
# - a second drill (no boot check) serves the point writable: a write reads back through the
#   drill's export, and the target's points do not change; `drill stop --state DIR` ends it;
# - tenant bob cannot drill alice's volume ("not found", and no record is left);
# - --target without --state is refused.
set -euo pipefail
source "$(dirname "$0")/functions.sh"
source "$TM_SOURCE_ROOT/tests/lib/protect.sh"
source "$TM_SOURCE_ROOT/tests/lib/remote.sh"
source "$TM_SOURCE_ROOT/tests/lib/boot.sh"
export PATH=$PATH:/usr/sbin:/sbin

requires qemu-system-x86_64 qemu-io qemu-img sha256sum python3 "$TIDEMARK"
T() { "$TIDEMARK" "$@"; }
sum() { sha256sum "$1" | cut -d' ' -f1; }
as() { echo --target "$target_addr" --tenant "$1" --token-file "$tmp/$1.token" --ca "$target_ca"; }
st=$tmp/drill-state

echo "== target, tap on the boot image, bookmark b"
head -c 50000 /dev/urandom >"$tmp/payload"
payload=$(sum "$tmp/payload")
rc=0
"$TM_SOURCE_ROOT/tests/lib/boot-image.sh" --payload "$tmp/payload" "$tmp/vm.img" || rc=$?
[ "$rc" -ne 77 ] || exit 77
[ "$rc" -eq 0 ] || fail "boot-image.sh exited $rc"
init_target "$tmp/target"
add_tenant "$target_conf" alice "$tmp/alice.token"
add_tenant "$target_conf" bob "$tmp/bob.token"
start_target "$target_conf"
start_tap "$tmp/vm.img" vm alice "$tmp/alice.token" "$tmp/st-tap" "$tmp/tap.sock"
tap_protected() { [ "$(tap_status "$tmp/st-tap" | json_get 'j["volumes"][0]["state"]')" = protected ]; }
wait_for --pid "$tap_pid" --show "$tap_err" 30 "the tap's initial sync (state protected)" \
    tap_protected
T bookmark $(as alice) vm b >/dev/null

echo "== drill start --target --boot-check --stop-after-check"
stop_quiet() { "$TIDEMARK" drill stop --state "$st" "$1" >/dev/null 2>&1 || true; }
cleanup_fn stop_quiet r2
T drill start $(as alice) --state "$st" vm --bookmark b --name r1 --boot-check \
    --marker TIDEMARK-BOOT-OK --timeout "$boot_timeout_s" --stop-after-check >"$tmp/r1.out" ||
    { cat "$tmp/r1.out" >&2; fail "remote drill with boot check failed"; }
cat "$tmp/r1.out"
grep -q "^boot check of r1: pass: marker 'TIDEMARK-BOOT-OK' seen after " "$tmp/r1.out" ||
    fail "no pass line"
[ -f "$st/drills/r1.json" ] || fail "no record in $st/drills"
tr -d '\r' <"$st/drills/r1.console.log" | grep -qx "TIDEMARK-BOOT-OK payload=$payload written=none" ||
    fail "the console lacks the marker line"
d() { T drill list --state "$st" --json | json_get "[d for d in j['drills'] if d['name'] == '$1'][0]$2"; }
[ "$(d r1 '["result"]')" = pass ] || fail "list: result"
[ "$(d r1 '["state"]')" = stopped ] || fail "list: state"
[[ "$(d r1 '["source"]')" == "target $target_addr tenant alice" ]] || fail "list: source"
[ "$(T points $(as alice) vm --state "$st" --json | json_get 'j["last_drill"]["name"] + " " + j["last_drill"]["result"]')" = "r1 pass" ] ||
    fail "points --target --state: last_drill"
echo "ok: remote drill passed its boot check"

echo "== a writable remote drill; the target's points do not change"
points_before=$(T points $(as alice) vm --json)
T drill start $(as alice) --state "$st" vm --latest --name r2 --json >"$tmp/r2.json"
dsock=$(json_get 'j["listen"]' <"$tmp/r2.json")
duri="nbd+unix:///vm?socket=${dsock#unix:}"
qemu_io "$duri" 'write -P 0x6d 800k 8k'
qemu_io "$duri" 'read -P 0x6d 800k 8k'
qemu-img compare -q -f raw -F raw "$duri" "$tmp/vm.img" 2>/dev/null &&
    fail "the drill's write is not visible in its export"
T drill stop --state "$st" r2 --result pass --notes "manual check" >/dev/null
[ "$(d r2 '["writes"]')" = 1 ] || fail "r2: writes"
[ "$(d r2 '["reason"]')" = "set by drill stop" ] || fail "r2: reason $(d r2 '["reason"]')"
[ "$(T points $(as alice) vm --json)" = "$points_before" ] || fail "the target's points changed"
qemu_io "$tmp/vm.img" 'read -P 0 800k 8k'
echo "ok: writable remote drill; the volume and the target unchanged"

echo "== bob cannot drill alice's volume; --state is needed"
msg=$(expect_fail_oneline "$TIDEMARK" drill start $(as bob) --state "$st" vm --latest --name bob1)
case $msg in *"not found"*) ;; *) fail "bob drilling alice's volume: $msg" ;; esac
[ ! -e "$st/drills/bob1.json" ] || fail "a refused drill left a record"
msg=$(expect_fail_oneline "$TIDEMARK" drill start $(as alice) vm --latest)
case $msg in *"--state"*) ;; *) fail "--target without --state: $msg" ;; esac
echo "ok: $msg"

stop_pid "$tap_pid"
stop_pid "$target_pid"
echo "test-drill-remote: OK"
