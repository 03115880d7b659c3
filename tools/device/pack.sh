#!/usr/bin/env bash
# Packs what the GPU machine lacks into .device-pack/ (ignored by git), within the device tool's 64 MiB carry
# limit: a Node binary, onnxruntime-node's Linux x64 files, the studio's CLI and the device bench bundled with
# esbuild (native modules left external, their files copied), dawn.node for the adapter report, and the
# Vulkan loader .deb. Everything but the .deb travels as two xz tarballs that run.sh unpacks.
#
#   bash tools/device/pack.sh            # then: du -sh .device-pack (printed at the end)
#
# Needs: this checkout's node_modules (npm ci), xz, apt-get (for the .deb; skipped with NO_DEBS=1), and the
# npm registry once for the `webgpu` package (cached in ~/.cache/fstudio-device, outside what travels; skipped
# with NO_WEBGPU=1).
# Runs on x86-64 Linux only: the binaries it packs are this machine's, and the GPU machine is x86-64.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
PACK="$root/.device-pack"
LIMIT=$((64 * 1024 * 1024))
WEBGPU_VERSION=0.6.2
NODE_BIN="${NODE_BIN:-$(command -v node)}"
NODE_BIN="$(readlink -f "$NODE_BIN")"

die() { echo "pack: $*" >&2; exit 1; }
[ "$(uname -m)" = x86_64 ] || die "run this on x86-64 Linux (the GPU machine is x86-64; this is $(uname -m))"
[ -d node_modules/onnxruntime-node ] || die "node_modules is missing: run npm ci first"
ORT_BIN=node_modules/onnxruntime-node/bin/napi-v6/linux/x64
[ -f "$ORT_BIN/onnxruntime_binding.node" ] || die "$ORT_BIN/onnxruntime_binding.node is missing"
grep -qx '/.device-pack/' .gitignore 2>/dev/null || grep -qx '.device-pack/' .gitignore 2>/dev/null ||
  die ".device-pack/ must be ignored by git (add it to .gitignore)"

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/fstudio-device"
mkdir -p "$PACK" "$CACHE"

# Two tarballs: runtime.tar.xz (Node and the native modules: large, slow to compress, rebuilt only when what
# goes in changes) and app.tar.xz (the bundled JavaScript: small, rebuilt every time).

# ---- runtime: Node, native modules and what they require at run time (not install scripts, other platforms)
rt="$stage/runtime"
mkdir -p "$rt/bin" "$rt/app/node_modules"
cp "$NODE_BIN" "$rt/bin/node"
echo "node: $("$NODE_BIN" --version) from $NODE_BIN"
copy() { # copy <path under node_modules>...
  for p in "$@"; do
    [ -e "node_modules/$p" ] || die "node_modules/$p is missing"
    mkdir -p "$rt/app/node_modules/$(dirname "$p")"
    cp -R "node_modules/$p" "$rt/app/node_modules/$p"
  done
}
copy onnxruntime-node/package.json onnxruntime-node/dist onnxruntime-common \
  onnxruntime-node/bin/napi-v6/linux/x64/onnxruntime_binding.node \
  onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1
for extra in "$ORT_BIN"/libonnxruntime_providers_*.so; do
  # The CUDA provider (scripts/postinstall.js fetches it where CUDA is set up) is not packed: the studio's
  # GPU path here is WebGPU.
  [ -e "$extra" ] && echo "pack: leaving out $(basename "$extra") (CUDA provider; not needed for WebGPU)"
done
copy better-sqlite3/package.json better-sqlite3/lib better-sqlite3/build/Release/better_sqlite3.node \
  bindings file-uri-to-path
copy sharp/package.json sharp/lib sharp/dist sharp/node_modules @img/colour @img/sharp-linux-x64 \
  @img/sharp-libvips-linux-x64 detect-libc
find "$rt/app/node_modules" -name '*.map' -delete
# dawn.node (npm `webgpu`), only to report the WebGPU adapter: its Linux x64 build alone
if [ "${NO_WEBGPU:-}" != 1 ]; then
  tgz="$CACHE/webgpu-$WEBGPU_VERSION.tgz"
  if [ ! -f "$tgz" ]; then
    (cd "$CACHE" && npm pack --silent "webgpu@$WEBGPU_VERSION" >/dev/null) ||
      die "npm pack webgpu@$WEBGPU_VERSION failed (NO_WEBGPU=1 packs without it)"
  fi
  mkdir -p "$rt/app/node_modules/webgpu"
  tar -xzf "$tgz" -C "$rt/app/node_modules/webgpu" --strip-components=1 package/package.json package/dist/linux-x64
fi
key=$( (cd "$rt" && find . -type f -printf '%p %s\n' | sort) | sha256sum | cut -c1-16)
if [ -f "$PACK/runtime.tar.xz" ] && [ "$(cat "$PACK/runtime.key" 2>/dev/null)" = "$key" ]; then
  echo "runtime.tar.xz: unchanged ($key)"
else
  echo "runtime: $(du -sh "$rt" | cut -f1) uncompressed; compressing (xz, a few minutes)..."
  tar -C "$rt" -cf - bin app | xz -T0 -6 >"$PACK/runtime.tar.xz.tmp"
  mv "$PACK/runtime.tar.xz.tmp" "$PACK/runtime.tar.xz"
  echo "$key" >"$PACK/runtime.key"
fi

# ---- app: the studio's CLI, its workers and the device bench, bundled (ESM, code split so the workers sit
# beside the entries as base/worker-entry.ts expects of a built app), and what they read at run time
app="$stage/app"
mkdir -p "$app/dist"
node_modules/.bin/esbuild \
  tools/device/cli-entry.ts tools/device/bench.ts \
  src/main/engine/compute-worker.ts src/main/studio/import-worker.ts src/main/studio/history-worker.ts \
  --bundle --platform=node --format=esm --target=node20 --splitting --outdir="$app/dist" \
  --entry-names='[name]' --chunk-names='chunk-[hash]' \
  --external:onnxruntime-node --external:better-sqlite3 --external:sharp --external:electron \
  --banner:js="import { createRequire as __fsCreateRequire } from 'node:module'; const require = __fsCreateRequire(import.meta.url);" \
  --log-level=warning
mv "$app/dist/cli-entry.js" "$app/dist/fstudio.js"
cp tests/fixtures/clip/tiny/tokenizer.json "$app/dist/tokenizer.json"
# appVersion() reads the nearest package.json named foundation-studio above the bundle.
node -e '
  const p = require("./package.json");
  const out = { name: p.name, version: p.version, type: "module", private: true };
  require("fs").writeFileSync(process.argv[1], JSON.stringify(out, null, 1) + "\n");
' "$app/package.json"
tar -C "$stage" -cf - app | xz -T0 -6 >"$PACK/app.tar.xz"
cat "$PACK/runtime.key" "$PACK/app.tar.xz" | sha256sum | cut -c1-16 >"$PACK/payload.sha"
rm -f "$PACK/payload.tar.xz"

# ---- the Vulkan loader for the GPU machine (the recipe of the device tool's README, libvulkan1 alone:
# ORT's Dawn needs the loader; NVIDIA's driver brings the ICD)
if [ "${NO_DEBS:-}" != 1 ]; then
  if ! ls "$PACK"/debs/libvulkan1_*.deb >/dev/null 2>&1; then
    mkdir -p "$PACK/debs" /tmp/amd64/partial
    o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
    apt-get "${o[@]}" update -qq || die "apt-get update failed (NO_DEBS=1 packs without the loader)"
    (cd "$PACK/debs" && apt-get "${o[@]}" download libvulkan1) || die "apt-get download libvulkan1 failed"
  fi
fi

# ---- size: the carried folder plus the working tree that travels with it (tracked and untracked-not-ignored
# files) must stay under the device tool's 64 MiB
sizes=$(find "$PACK" -type f -printf '%s %p\n')
total=$(awk '{s += $1} END {print s + 0}' <<<"$sizes")
tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}')
echo "$sizes" | sed "s|$PACK/||" | sort -n | awk '{printf "  %8.2f MiB  %s\n", $1 / 1048576, $2}'
awk -v p="$total" -v t="$tree" 'BEGIN {printf "pack: .device-pack %.2f MiB + working tree %.2f MiB = %.2f MiB of 64 MiB\n", p / 1048576, t / 1048576, (p + t) / 1048576}'
if [ $((total + tree)) -gt "$LIMIT" ]; then
  die "over the 64 MiB limit of what travels"
fi
