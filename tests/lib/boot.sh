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
#   boot_marker LOG PREFIX
#       prints the first console line of LOG starting with PREFIX (without its CR), or
#       fails with nothing printed
#
# -cpu max: with TCG's default qemu64 CPU the kernel's decompressor alone takes ~3 s (0.2 s
# with max) and GRUB reads the kernel slower. Kernel messages may interleave with the guest's lines, so match markers by prefix.

boot_image() {
    local drive=$1 log=$2 timeout_s=$3 rc=0 t0 t1 cache=none format=${BOOT_FORMAT:-raw}
    shift 3
    # O_DIRECT (cache=none) is not available on every filesystem (tmpfs before Linux 6.6).
    if [ -f "$drive" ] && ! dd if="$drive" of=/dev/null bs=4096 count=1 iflag=direct \
        status=none 2>/dev/null; then
        cache=writeback
    fi
    : >"$log"
    t0=$EPOCHREALTIME
    timeout -k 5 "$timeout_s" qemu-system-x86_64 -accel tcg -cpu max -m 256 -nographic -no-reboot \
        -display none -monitor none -serial "file:$log" -nic none \
        -drive "file=${drive//,/,,},format=$format,if=virtio,cache=$cache" "$@" \
        </dev/null >"$log.qemu" 2>&1 || rc=$?
    t1=$EPOCHREALTIME
    boot_seconds=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    # timeout(1): 124 after SIGTERM, 128+9 when qemu needed the SIGKILL of -k too.
    [ "$rc" -eq 137 ] && rc=124
    return "$rc"
}

boot_marker() {
    tr -d '\r' <"$1" | grep -m1 "^$2"
}
