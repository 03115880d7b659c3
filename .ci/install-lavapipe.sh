#!/usr/bin/env bash
# Mesa 25's lavapipe (software Vulkan) from bookworm-backports, for WebGPU parity tests.
set -euo pipefail
if dpkg -s mesa-vulkan-drivers 2>/dev/null | grep -q '^Version: 25'; then exit 0; fi
. /etc/os-release
if [ "${VERSION_CODENAME:-}" = bookworm ] && ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
  echo "deb http://deb.debian.org/debian bookworm-backports main" > /etc/apt/sources.list.d/backports.list
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends -t "${VERSION_CODENAME}-backports" mesa-vulkan-drivers libvulkan1 || \
  apt-get install -y -qq --no-install-recommends mesa-vulkan-drivers libvulkan1
