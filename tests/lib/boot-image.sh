#!/usr/bin/env bash
# tests/lib/boot-image.sh: builds a tiny bootable raw disk image from Debian packages,
# without root (issue 5, item 3).
#
#   usage: tests/lib/boot-image.sh [--payload FILE] OUT.img
#
# OUT.img (64 MiB, sparse):
#   sector 0          GRUB's i386-pc boot.img (first 440 bytes) + an MBR partition table
#   sectors 1..       a grub-mkimage i386-pc core image with boot-image/grub.cfg embedded
#                     (boot.img loads sector 1 by default, the core's diskboot the rest)
#   1 MiB .. 64 MiB   partition 1, type 83, ext4 (mkfs.ext4 -d, label tidemark-boot):
#                       /boot/vmlinuz      linux-image-6.1.*-cloud-amd64 (apt-get download)
#                       /boot/initrd.gz    busybox-static initramfs (boot-image/initramfs-init)
#                       /sbin/init         boot-image/root-init: its header documents the
#                                          console markers and the /write-request flag
#                       /bin/*             busybox-static: one symlink per applet
#                       /data/payload      FILE, or 64 KiB of random bytes
# The guest boots with `console=ttyS0`, prints its markers and powers off: see
# tests/lib/boot.sh to run it in qemu.
#
# The kernel package is fetched once into $TIDEMARK_BOOT_CACHE (default
# ~/.cache/tidemark/boot): the .deb and the few files used from it. Once cached, a build
# takes a few seconds and needs no network. No network and nothing cached: exit 77 (skip),
# or 1 under CI=true. Needs busybox-static, grub-pc-bin, grub-common, cpio, fdisk and
# e2fsprogs (tests/install-deps.sh).
set -euo pipefail
source "$(dirname "$0")/../functions.sh"
export PATH=$PATH:/usr/sbin:/sbin
here=$TM_SOURCE_ROOT/tests/lib/boot-image
grub_dir=/usr/lib/grub/i386-pc
size_mib=64
part_start_sectors=2048

payload=
while [ $# -gt 1 ]; do
    case $1 in
    --payload) payload=$2; shift 2 ;;
    *) break ;;
    esac
done
if [ $# -ne 1 ] || [ "${1#-}" != "$1" ]; then
    echo "usage: $0 [--payload FILE] OUT.img" >&2
    exit 2
fi
out=$1

requires apt-get apt-cache dpkg-deb dpkg-query cpio gzip sfdisk mkfs.ext4 grub-mkimage \
    flock sha256sum
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "install ok installed" ||
    skip "package busybox-static is not installed (tests/install-deps.sh)"
busybox=/bin/busybox
[ -f "$grub_dir/boot.img" ] || skip "no $grub_dir/boot.img (package grub-pc-bin)"

# --- the kernel: vmlinuz and the modules the initramfs loads, cached ---
cache=${TIDEMARK_BOOT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tidemark/boot}
mkdir -p "$cache/debs"
# Modules the guest needs to mount its root; those built into the kernel are skipped, the
# others come with their dependencies (the .ko's own "depends=" field: the package ships
# no modules.dep, depmod runs at install time).
wanted_modules="virtio_pci virtio_blk ext4 crc32c_generic"

# newest_cached: the newest kernel-* in the cache, for when apt cannot tell.
newest_cached() {
    find "$cache" -maxdepth 1 -name 'kernel-*' ! -name '*.tmp.*' -type d | sort -V | tail -1
}

# kernel_resolve: the package linux-image-cloud-amd64 depends on (from apt's lists).
kernel_resolve() {
    apt-cache depends linux-image-cloud-amd64 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-cloud-amd64$/ { print $2; exit }'
}

# module_closure NAME...: prints "NAME PATH" for each module of $_moddir not built in,
# dependencies first (the order insmod needs).
module_closure() {
    local m f deps
    for m in "$@"; do
        m=${m//-/_}
        case " $_seen " in *" $m "*) continue ;; esac
        _seen="$_seen $m"
        if grep -qE "/${m//_/[-_]}\.ko$" "$_moddir/modules.builtin"; then
            continue
        fi
        f=$(find "$_moddir/kernel" -regextype posix-extended \
            -regex ".*/${m//_/[-_]}\.ko" -print -quit)
        [ -n "$f" ] || fail "kernel module $m: neither built in nor in the package"
        deps=$(tr '\0' '\n' <"$f" | sed -n 's/^depends=//p' | tr ',' ' ')
        # shellcheck disable=SC2086
        [ -z "$deps" ] || module_closure $deps
        echo "$m ${f#"$_moddir"/}"
    done
}

# kernel_unpack PKG DEB: keeps vmlinuz and the wanted modules as $cache/kernel-PKG, and
# drops older kernels and their .debs from the cache.
kernel_unpack() {
    local pkg=$1 deb=$2 x=$tmp/deb k=$cache/kernel-$1.tmp.$$ m path
    rm -rf "$x" "$k"
    dpkg-deb -x "$deb" "$x" || fail "dpkg-deb -x $deb"
    _moddir=$(echo "$x"/lib/modules/*)
    [ -d "$_moddir/kernel" ] || fail "$deb has no lib/modules/*/kernel"
    mkdir -p "$k/modules"
    cp "$x"/boot/vmlinuz-* "$k/vmlinuz"
    _seen=
    # shellcheck disable=SC2086
    module_closure $wanted_modules >"$tmp/closure"
    : >"$k/modules/load"
    while read -r m path; do
        cp "$_moddir/$path" "$k/modules/$m.ko"
        echo "$m" >>"$k/modules/load"
    done <"$tmp/closure"
    echo "$pkg ($(basename "$deb"))" >"$k/source"
    rm -rf "$x"
    mv -T "$k" "$cache/kernel-$pkg"
    find "$cache" -maxdepth 1 -name 'kernel-*' ! -name "kernel-$pkg" -exec rm -rf {} +
    find "$cache/debs" -name '*.deb' ! -name "${pkg}_*" -delete
}

# The lock covers the cache until this build has its copy of the kernel.
exec 9>"$cache/.lock"
flock 9
pkg=$(kernel_resolve || true)
if [ -n "$pkg" ] && [ ! -d "$cache/kernel-$pkg" ]; then
    deb=$(find "$cache/debs" -name "${pkg}_*.deb" | sort -V | tail -1)
    if [ -z "$deb" ]; then
        mkdir -p "$cache/debs/tmp.$$"
        if (cd "$cache/debs/tmp.$$" && apt-get download -q "$pkg") >"$tmp/apt.log" 2>&1; then
            mv "$cache/debs/tmp.$$"/*.deb "$cache/debs/"
            deb=$(find "$cache/debs" -name "${pkg}_*.deb" | sort -V | tail -1)
        fi
        rm -rf "$cache/debs/tmp.$$"
    fi
    if [ -n "$deb" ]; then
        kernel_unpack "$pkg" "$deb"
    elif [ -z "$(newest_cached)" ]; then
        skip "apt-get download $pkg failed (offline?): $(grep -m1 '^E:' "$tmp/apt.log" ||
            tail -1 "$tmp/apt.log")"
    else
        echo "boot-image: apt-get download $pkg failed; using the cached $(basename "$(newest_cached)")" >&2
    fi
fi
kdir=$cache/kernel-$pkg
if [ -z "$pkg" ] || [ ! -d "$kdir" ]; then
    kdir=$(newest_cached)
    [ -n "$kdir" ] ||
        skip "apt-cache knows no linux-image-cloud-amd64 (run apt-get update) and nothing is cached in $cache"
fi
kernel=$tmp/kernel
cp -r "$kdir" "$kernel"
exec 9>&-

# --- the initramfs and the root filesystem ---
# install_busybox DIR: busybox --install's symlinks in DIR/bin (one process, not 270 ln),
# and busybox itself where they point (its path on this host, /usr/bin/busybox when /bin is
# merged into /usr).
install_busybox() {
    local to
    mkdir -p "$1/bin"
    "$busybox" --install -s "$1/bin"
    to=$(readlink "$1/bin/sh")
    case $to in /*) ;; *) fail "busybox --install made a relative link: $to" ;; esac
    mkdir -p "$1$(dirname "$to")"
    rm -f "$1$to"
    cp "$busybox" "$1$to"
}

ini=$tmp/initramfs
install_busybox "$ini"
mkdir -p "$ini/dev" "$ini/proc" "$ini/sys" "$ini/newroot" "$ini/lib/modules"
cp "$kernel"/modules/* "$ini/lib/modules/"
cp "$here/initramfs-init" "$ini/init"
chmod 755 "$ini/init"

root=$tmp/root
install_busybox "$root"
mkdir -p "$root/boot" "$root/sbin" "$root/data" "$root/dev" "$root/proc" "$root/sys" "$root/tmp"
cp "$kernel/vmlinuz" "$root/boot/vmlinuz"
(cd "$ini" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) |
    gzip -6 -n >"$root/boot/initrd.gz"
cp "$here/root-init" "$root/sbin/init"
chmod 755 "$root/sbin/init"
if [ -n "$payload" ]; then
    cp "$payload" "$root/data/payload"
else
    head -c 65536 /dev/urandom >"$root/data/payload"
fi

# --- the disk ---
rm -f "$out"
truncate -s "${size_mib}M" "$out"
part_kib=$(((size_mib << 10) - part_start_sectors / 2))
mkfs.ext4 -q -F -b 4096 -L tidemark-boot -E "offset=$((part_start_sectors * 512)),nodiscard" \
    -d "$root" "$out" "${part_kib}k" >"$tmp/mkfs.log" 2>&1 ||
    { cat "$tmp/mkfs.log" >&2; fail "mkfs.ext4"; }
[ "$(stat -c %s "$out")" -eq $((size_mib << 20)) ] || fail "mkfs.ext4 changed the image's size"
echo "label: dos
start=$part_start_sectors, type=83, bootable" | sfdisk -q "$out" >"$tmp/sfdisk.log" 2>&1 ||
    { cat "$tmp/sfdisk.log" >&2; fail "sfdisk"; }

grep -v '^#' "$here/grub.cfg" >"$tmp/grub.cfg"
grub-mkimage -O i386-pc -d "$grub_dir" -p '(hd0,msdos1)/boot/grub' -c "$tmp/grub.cfg" \
    -o "$tmp/core.img" biosdisk part_msdos ext2 linux boot serial terminal echo halt ||
    fail "grub-mkimage"
core_sectors=$((($(stat -c %s "$tmp/core.img") + 511) / 512))
[ "$core_sectors" -lt "$part_start_sectors" ] ||
    fail "the core image ($core_sectors sectors) does not fit before the partition"
# boot.img's code only: bytes 440.. hold the disk signature and the partition table.
dd if="$grub_dir/boot.img" of="$out" bs=440 count=1 conv=notrunc status=none
dd if="$tmp/core.img" of="$out" bs=512 seek=1 conv=notrunc status=none
echo "boot-image: $out: $(cat "$kernel/source"), core image $core_sectors sectors," \
    "payload sha256 $(sha256sum "$root/data/payload" | cut -d' ' -f1)"
