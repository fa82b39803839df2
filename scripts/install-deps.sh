#!/usr/bin/env bash
# Installs every build, test and sample dependency from Debian 12's archive (idempotent).
set -euo pipefail
packages=(
  build-essential cmake pkg-config
  libcapstone-dev liblief-dev libzstd-dev libcli11-dev libfmt-dev doctest-dev
  libsimdjson-dev liblzma-dev xz-utils zstd
  zlib1g-dev liblzo2-dev libsnappy-dev makedumpfile libdw-dev
  qemu-system-x86 busybox-static cpio python3 binutils libc6-dev clang-format gdb
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep "install ok installed" >/dev/null || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
