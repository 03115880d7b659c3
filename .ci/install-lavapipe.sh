#!/usr/bin/env bash
# Mesa 25's lavapipe (software Vulkan) from bookworm-backports, for the WebGPU parity tests
# (tests/unit/webgpu). Debian 12's own Mesa 22 is too old for Dawn. Idempotent.
set -euo pipefail
installed() {
  local v
  v=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
  [ -n "$v" ] && dpkg --compare-versions "$v" ge 25 && dpkg-query -W libvulkan1 >/dev/null 2>&1
}
if installed; then
  echo "lavapipe: mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers) already installed"
  exit 0
fi
SUDO=''
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "lavapipe: needs root (or sudo) to install packages" >&2; exit 1; }
  SUDO='sudo'
fi
export DEBIAN_FRONTEND=noninteractive
. /etc/os-release
if [ "${VERSION_CODENAME:-}" = bookworm ] && ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
  echo "deb http://deb.debian.org/debian bookworm-backports main" | $SUDO tee /etc/apt/sources.list.d/backports.list >/dev/null
fi
$SUDO apt-get update -qq
# Newer releases (trixie and later) carry Mesa 25 in the main archive.
$SUDO apt-get install -y -qq --no-install-recommends -t "${VERSION_CODENAME}-backports" mesa-vulkan-drivers libvulkan1 ||
  $SUDO apt-get install -y -qq --no-install-recommends mesa-vulkan-drivers libvulkan1
if installed; then
  echo "lavapipe: mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers) installed"
else
  echo "lavapipe: installed Mesa is older than 25; ORT's WebGPU (Dawn) may not find a device" >&2
  exit 1
fi
