#!/usr/bin/env bash
# DR drills (issue 5, item 2; item 4, bullets 2 and 4): the boot image
# (tests/lib/boot-image.sh) with a /write-request flag in it, protected by `tidemark protect`;
# bookmarks b1, b2 (qemu-io writes through the tap in between, in the unused gap before the
# partition, so the filesystem is untouched; the live guest never boots, so it never writes).
# - while qemu-io keeps writing through the tap: `drill start --bookmark b1 --boot-check
#   --marker TIDEMARK-BOOT-OK` passes; the drill keeps running and its writable export boots
#   again: the guest writes /data/guest-written into the drill's overlay (read back through
#   the export); `drill stop` reports the writes thrown away;
# - afterwards b1 and b2 restore byte-identical to their restores from before the drill, the
#   latest point equals the backing (the drill's writes never reached the volume or the
#   journal) and has no /data/guest-written; `drill list --json` shows the record (pass,
#   stopped), `points --json` its last_drill, `status --journal` too;
# - a drill of a point whose boot sector was zeroed through the tap (qemu-io write -z 0 512)
#   fails its boot check (--timeout 30 --stop-after-check): exit 1, one line naming the
#   reason, recorded as fail;
# - bad input: one-line errors, and a failed start leaves no record.
set -euo pipefail
source "$(dirname "$0")/functions.sh"
source "$TM_SOURCE_ROOT/tests/lib/protect.sh"
source "$TM_SOURCE_ROOT/tests/lib/boot.sh"
export PATH=$PATH:/usr/sbin:/sbin

requires qemu-system-x86_64 qemu-img qemu-io nbdcopy timeout debugfs sha256sum cmp python3 \
    "$TIDEMARK"
T() { "$TIDEMARK" "$@"; }
img=$tmp/vm.img
j=$tmp/journal
sock=$tmp/nbd.sock
puri="nbd+unix:///vm?socket=$sock"
sum() { sha256sum "$1" | cut -d' ' -f1; }
dbg() { debugfs -R "$2" "$1?offset=1048576" 2>/dev/null; } # IMG REQUEST
has() { dbg "$1" "stat $2" | grep -q '^Inode:'; }            # IMG PATH
show() { echo "--- $1" >&2; tr -d '\r' <"$1" | tail -30 >&2; cat "$1.qemu" >&2 2>/dev/null || true; }
stop_quiet() { "$TIDEMARK" drill stop --journal "$j" "$1" >/dev/null 2>&1 || true; }
drill_json() { T drill list --journal "$j" --json | json_get "[d for d in j['drills'] if d['name'] == '$1'][0]$2"; }

echo "== build the boot image with a write request; protect; bookmarks b1, b2"
head -c 100000 /dev/urandom >"$tmp/payload"
payload=$(sum "$tmp/payload")
rc=0
"$TM_SOURCE_ROOT/tests/lib/boot-image.sh" --payload "$tmp/payload" "$img" || rc=$?
[ "$rc" -ne 77 ] || exit 77 # boot-image.sh said why (and under CI=true it exits 1)
[ "$rc" -eq 0 ] || fail "boot-image.sh exited $rc"
{ echo "tidemark drill write request $$"; head -c 90000 /dev/urandom; } >"$tmp/flag"
flag=$(sum "$tmp/flag")
debugfs -w -R "write $tmp/flag write-request" "$img?offset=1048576" >/dev/null 2>&1
has "$img" /write-request || fail "debugfs did not write /write-request"
start_protect "$img" "$j" "$sock" --name vm
T bookmark --journal "$j" vm b1 >/dev/null
# 768 KiB .. 1 MiB: after GRUB's core image, before the partition: no filesystem there.
qemu_io "$puri" 'write -P 0x5a 768k 64k' 'write -P 0x5b 900k 4k'
T bookmark --journal "$j" vm b2 >/dev/null
for b in b1 b2; do T restore --journal "$j" vm --bookmark "$b" --output "$tmp/pre-$b.img" >/dev/null; done
[ "$(T points --journal "$j" vm --json | json_get 'j["last_drill"]')" = null ] ||
    fail "last_drill before any drill"

echo "== protection keeps writing (qemu-io through the tap) from here until the drill's guest wrote"
# Into 512 KiB .. 768 KiB of the gap before the partition, a new pattern each time.
( for i in $(seq 1 1000); do
      [ -e "$tmp/writer.stop" ] && exit 0
      qemu-io -f raw "$puri" -c "write -P $((i % 200 + 1)) $((512 + i % 256))k 1k" >/dev/null || exit 1
      sleep 0.1
  done ) &
writer=$!
cleanup_fn kill_quiet "$writer"

echo "== drill start --bookmark b1 --boot-check"
t0=$EPOCHREALTIME
T drill start --journal "$j" vm --bookmark b1 --name good --boot-check --marker TIDEMARK-BOOT-OK \
    --timeout "$boot_timeout_s" --notes "monthly drill" --json >"$tmp/good.json" ||
    { cat "$tmp/good.json" >&2; fail "drill start --boot-check failed on b1"; }
echo "drill start with boot check: $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
cleanup_fn stop_quiet good  # should the test fail midway
g() { json_get "$1" <"$tmp/good.json"; }
[ "$(g 'j["result"]')" = pass ] || fail "result: $(cat "$tmp/good.json")"
[ "$(g 'j["state"]')" = running ] || fail "state: $(cat "$tmp/good.json")"
[[ "$(g 'j["reason"]')" =~ ^"boot check: marker 'TIDEMARK-BOOT-OK' seen after "[0-9.]+" s"$ ]] ||
    fail "reason: $(g 'j["reason"]')"
[ "$(g 'j["point"]["seq"]')" = "$(T points --journal "$j" vm --json | json_get '[b["seq"] for b in j["bookmarks"] if b["name"] == "b1"][0]')" ] ||
    fail "the drill's point is not b1's"
[ "$(g 'j["notes"]')" = "monthly drill" ] || fail "notes"
console=$(g 'j["boot_check"]["console_log"]')
tr -d '\r' <"$console" | grep -qxF "TIDEMARK-BOOT-OK payload=$payload written=none" ||
    { show "$console"; fail "the drill's console lacks the marker line of b1"; }
dsock=$(g 'j["listen"]')
dsock=${dsock#unix:}
[ -S "$dsock" ] || fail "no drill socket $dsock"
echo "ok: $(g 'j["reason"]')"

echo "== the drill's guest writes into its overlay"
rc=0
boot_image "nbd:unix:$dsock:exportname=vm" "$tmp/drill.log" "$boot_timeout_s" || rc=$?
[ "$rc" -eq 0 ] || { show "$tmp/drill.log"; fail "second boot of the drill: qemu exited $rc"; }
# The boot check killed the first guest at its marker: it may or may not have written then.
tr -d '\r' <"$tmp/drill.log" | grep -qxE "TIDEMARK-BOOT-OK payload=$payload written=(none|$flag)" ||
    { show "$tmp/drill.log"; fail "second boot: no marker"; }
touch "$tmp/writer.stop"
wait "$writer" || fail "qemu-io through the tap failed during the drill"
nbdcopy "nbd+unix:///vm?socket=$dsock" "$tmp/drilled.img"
dbg "$tmp/drilled.img" "cat /data/guest-written" >"$tmp/written"
cmp "$tmp/flag" "$tmp/written" || fail "the drill's export lacks the guest's write"
if has "$tmp/drilled.img" /write-request; then fail "the drill's export still has /write-request"; fi
echo "ok: the guest wrote /data/guest-written in the drill (boot $boot_seconds s)"

T drill stop --journal "$j" good --notes "app checked" >"$tmp/stop.out"
grep -qE '^drill good \(vm at seq [0-9]+, .*\) stopped: [1-9][0-9]* writes, .* overlay thrown away; result pass$' \
    "$tmp/stop.out" || fail "drill stop: $(cat "$tmp/stop.out")"
[ ! -e "$dsock" ] || fail "the drill's socket is still there"
cat "$tmp/stop.out"

echo "== the drill changed no point; the volume never saw its writes"
for b in b1 b2; do
    T restore --journal "$j" vm --bookmark "$b" --output "$tmp/post-$b.img" >/dev/null
    cmp "$tmp/pre-$b.img" "$tmp/post-$b.img" || fail "bookmark $b restores differently after the drill"
done
T restore --journal "$j" vm --latest --output "$tmp/latest.img" >/dev/null
qemu-img compare -q -f raw -F raw "$tmp/latest.img" "$img" || fail "the latest point differs from the backing"
if has "$tmp/latest.img" /data/guest-written; then fail "the drill's write reached the journal"; fi
has "$tmp/latest.img" /write-request || fail "the latest point lost /write-request"
cmp -s "$tmp/latest.img" "$tmp/pre-b2.img" && fail "test bug: protection wrote nothing during the drill"
echo "ok: b1, b2 restore as before; latest = the backing, without the drill's write"

echo "== drill list, points and status show it"
[ "$(drill_json good '["state"]')" = stopped ] || fail "list: state"
[ "$(drill_json good '["result"]')" = pass ] || fail "list: result"
[ "$(drill_json good '["notes"]')" = "monthly drill; app checked" ] || fail "list: notes"
[ "$(drill_json good '["writes"] > 0')" = true ] || fail "list: writes"
T drill list --journal "$j" | grep -qE '^good +vm +seq [0-9]+ .* stopped +pass +boot check: marker' ||
    fail "drill list text: $(T drill list --journal "$j")"
T points --journal "$j" vm --json >"$tmp/points.json"
[ "$(json_get 'j["last_drill"]["name"] + " " + j["last_drill"]["result"] + " " + j["last_drill"]["state"]' \
    <"$tmp/points.json")" = "good pass stopped" ] || fail "points --json: $(cat "$tmp/points.json")"
T points --journal "$j" vm | grep -qE '^last drill: good at seq [0-9]+ started .* \(stopped\): pass \(boot check' ||
    fail "points text: $(T points --journal "$j" vm)"
[ "$(T status --journal "$j" --json | json_get 'j["volumes"][0]["last_drill"]["name"]')" = good ] ||
    fail "status --json: $(T status --journal "$j" --json)"
T status --journal "$j" | grep -q 'last drill: good ' || fail "status: $(T status --journal "$j")"
echo "ok"

echo "== a drill of a point with a zeroed boot sector fails its boot check"
qemu_io "$puri" 'write -z 0 512'
T bookmark --journal "$j" vm zeroed >/dev/null
cleanup_fn stop_quiet bad
rc=0
T drill start --journal "$j" vm --bookmark zeroed --name bad --boot-check --marker TIDEMARK-BOOT-OK \
    --timeout 30 --stop-after-check >"$tmp/bad.out" 2>"$tmp/bad.err" || rc=$?
[ "$rc" -eq 1 ] || { cat "$tmp/bad.out" "$tmp/bad.err" >&2; fail "bad drill: exit $rc, want 1"; }
[ "$(wc -l <"$tmp/bad.err")" -eq 1 ] || { cat "$tmp/bad.err" >&2; fail "bad drill: not one line"; }
grep -qE "^tidemark: drill bad failed its boot check: no marker 'TIDEMARK-BOOT-OK' within 30 s; " \
    "$tmp/bad.err" || fail "bad drill: $(cat "$tmp/bad.err")"
[ "$(drill_json bad '["result"]')" = fail ] || fail "list: bad result"
[ "$(drill_json bad '["state"]')" = stopped ] || fail "list: --stop-after-check"
[[ "$(drill_json bad '["reason"]')" == "boot check: no marker 'TIDEMARK-BOOT-OK' within 30 s; "* ]] ||
    fail "list: bad reason"
[ "$(T points --journal "$j" vm --json | json_get 'j["last_drill"]["result"]')" = fail ] ||
    fail "points: last drill is not bad's fail"
echo "ok: $(cat "$tmp/bad.err")"

echo "== bad input"
chk() { # WANT CMD...: a one-line error containing WANT
    local want=$1 msg
    shift
    msg=$(expect_fail_oneline "$@")
    case $msg in *"$want"*) ;; *) fail "$*: '$msg' lacks '$want'" ;; esac
}
chk "no drill nosuch" T drill stop --journal "$j" nosuch
chk "already stopped" T drill stop --journal "$j" good
chk "drill good exists" T drill start --journal "$j" vm --latest --name good
chk "no bookmark" T drill start --journal "$j" vm --bookmark nosuch --name x1
chk "has no seq 99999" T drill start --journal "$j" vm --seq 99999 --name x2
chk "no volume" T drill start --journal "$j" nosuch --latest --name x3
chk "exactly one of --at" T drill start --journal "$j" vm --name x4
chk "bad drill name" T drill start --journal "$j" vm --latest --name ../x
chk "requires --boot-check" T drill start --journal "$j" vm --latest --marker x
chk "unknown drill result" T drill stop --journal "$j" bad --result maybe
chk "needs --state" T drill start --target 127.0.0.1:1 --tenant a --token-file /dev/null --ca /dev/null vm --latest
chk "no directory" T drill start --journal "$tmp/nojournal" vm --latest
[ "$(T drill list --journal "$j" --json | json_get 'len(j["drills"])')" = 2 ] ||
    fail "a failed start left a record: $(T drill list --journal "$j")"
rc=0
T drill start --journal "$j" vm --bookmark nosuch --json >"$tmp/err.json" 2>/dev/null || rc=$?
[ "$rc" -ne 0 ] && [ "$(json_get 'j["error"]["code"]' <"$tmp/err.json")" = not_found ] ||
    fail "--json error: $(cat "$tmp/err.json")"
T drill --help | grep -q start || fail "--help"
echo "ok: bad input"

stop_protect
echo "test-drill: OK"
