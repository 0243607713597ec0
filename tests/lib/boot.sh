# tests/lib/boot.sh: boots a disk in qemu under TCG (no KVM here) with its serial console
# in a file (source after functions.sh). Images: tests/lib/boot-image.sh.
#
#   boot_image DRIVE LOG TIMEOUT_S [QEMU_ARG...]
#       runs qemu-system-x86_64 -accel tcg -cpu max -m 256 on DRIVE as a raw virtio disk
#       (cache=none) until the guest powers off or TIMEOUT_S seconds pass, then kills it.
#       DRIVE is the -drive file= value, taken verbatim (commas doubled for qemu): an image
#       path, or an NBD export such as nbd:unix:SOCK[:exportname=NAME] or
#       nbd+unix:///NAME?socket=SOCK. The guest's serial console goes to LOG, qemu's own
#       output to LOG.qemu. Returns qemu's exit status when it exited by itself (0 on a
#       guest power-off), 124 on a timeout. Sets $boot_seconds (wall clock, 2 decimals).
#       BOOT_FORMAT=qcow2|vmdk|vhdx boot_image ... boots an image of that format.
#   boot_until DRIVE LOG REGEX TIMEOUT_S [QEMU_ARG...]
#       the same, but stops qemu (SIGTERM) as soon as LOG has a whole console line (up to
#       its newline) matching REGEX (Perl syntax, CRs dropped): for a guest that never
#       powers off. Returns 0 when the line showed, 124 when TIMEOUT_S passed first, 125
#       when qemu exited by itself first (its status in $boot_status). Sets $boot_seconds.
#   boot_timeout_s
#       the default TIMEOUT_S of the tests that boot the image: $BOOT_TIMEOUT_S, else 60 s
#       scaled by TM_TIMEOUT_SCALE (tests/functions.sh)
#   boot_marker LOG PREFIX
#       prints the first console line of LOG starting with PREFIX (without its CR), or
#       fails with nothing printed. Only for a LOG whose qemu has exited: lines still being
#       written may be cut.
#
# -cpu max: with TCG's default qemu64 CPU the kernel's decompressor alone takes ~3 s (0.2 s
# with max) and GRUB reads the kernel slower. Kernel messages may interleave with the guest's lines, so match markers by prefix.

boot_timeout_s=${BOOT_TIMEOUT_S:-$(scaled 60)}

# _boot_argv DRIVE LOG [QEMU_ARG...]: sets _boot_cmd, the qemu command line.
_boot_argv() {
    local drive=$1 log=$2 cache=none format=${BOOT_FORMAT:-raw}
    shift 2
    # O_DIRECT (cache=none) is not available on every filesystem (tmpfs before Linux 6.6).
    if [ -f "$drive" ] && ! dd if="$drive" of=/dev/null bs=4096 count=1 iflag=direct \
        status=none 2>/dev/null; then
        cache=writeback
    fi
    _boot_cmd=(qemu-system-x86_64 -accel tcg -cpu max -m 256 -nographic -no-reboot
        -display none -monitor none -serial "file:$log" -nic none
        -drive "file=${drive//,/,,},format=$format,if=virtio,cache=$cache" "$@")
}

_boot_seconds_since() {
    boot_seconds=$(awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
}

boot_image() {
    local drive=$1 log=$2 timeout_s=$3 rc=0 t0
    shift 3
    _boot_argv "$drive" "$log" "$@"
    : >"$log"
    t0=$EPOCHREALTIME
    timeout -k 5 "$timeout_s" "${_boot_cmd[@]}" </dev/null >"$log.qemu" 2>&1 || rc=$?
    _boot_seconds_since "$t0"
    # timeout(1): 124 after SIGTERM, 128+9 when qemu needed the SIGKILL of -k too.
    [ "$rc" -eq 137 ] && rc=124
    return "$rc"
}

boot_until() {
    local drive=$1 log=$2 re=$3 timeout_s=$4 rc=0 t0 pid seen=0
    shift 4
    _boot_argv "$drive" "$log" "$@"
    : >"$log"
    t0=$EPOCHREALTIME
    timeout -k 5 "$timeout_s" "${_boot_cmd[@]}" </dev/null >"$log.qemu" 2>&1 &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        if complete_line "$log" "$re" >/dev/null; then
            seen=1
            kill -TERM "$pid" 2>/dev/null || true # timeout(1) passes it on to qemu
            break
        fi
        sleep 0.2
    done
    wait "$pid" || rc=$?
    _boot_seconds_since "$t0"
    boot_status=$rc
    # The line may have come just before qemu exited.
    if [ "$seen" = 1 ] || complete_line "$log" "$re" >/dev/null; then return 0; fi
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then return 124; fi
    return 125
}

boot_marker() {
    tr -d '\r' <"$1" | grep -m1 "^$2"
}
