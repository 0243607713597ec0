#!/usr/bin/env bash
# Installs the Debian 12 packages tidemark builds and tests with, when missing.
set -euo pipefail
pkgs=(g++ meson ninja-build pkg-config python3
      liburing-dev libisal-dev libssl-dev librocksdb-dev libboost-dev libzstd-dev
      libcli11-dev libspdlog-dev libfmt-dev libtomlplusplus-dev nlohmann-json3-dev
      libgtest-dev libgmock-dev libbenchmark-dev
      qemu-utils libnbd-bin python3-libnbd nbdkit e2fsprogs fio openssl
      qemu-system-x86 grub-pc-bin busybox-static cpio fdisk linux-perf)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo=sudo
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -q \
  --no-install-recommends "${missing[@]}"
