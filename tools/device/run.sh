#!/usr/bin/env bash
# The one prepared command of the GPU check (tools/device/README.md), the same on the GPU machine and here on
# lavapipe. From the repository root, after tools/device/pack.sh:
#
#   bash tools/device/run.sh --sizes 256,512 --cuts 32          # the GPU machine
#   bash tools/device/run.sh --sizes 64 --cuts 4 --steps 2      # here, on Mesa lavapipe
#
# Options: --sizes A,B (square image sizes), --cuts N, --steps N (measured steps per run, after a warm-up),
# --rounds N (measure runs per size; the first starts with a cold graph cache), --peak-sizes A,B (MatMul sizes
# for ORT's matmul rate; 0 skips it), --child-timeout S (per bench child), --torch-reserve S (seconds kept for
# the PyTorch phase after the bench, default 150), --torch-steps N, --no-torch, --no-compile, --no-gradcheck,
# --provider P (default webgpu), --deadline S (seconds for the whole run, default 540: phases that would
# start later are skipped and say so), --pack DIR (default .device-pack).
#
# In order: the Vulkan loader (.debs unpacked only when no libvulkan.so.1 is found), the GPU (nvidia-smi), the
# WebGPU adapter (Dawn), the execution providers the studio finds (`fstudio doctor --json`), `fstudio doctor
# --gradcheck --provider webgpu`, the generation benchmark (tools/device/bench.ts: ms/step, TFLOP/s, ORT's
# per-node placement, copies per step), the PyTorch step (tools/device/torch_step.py: eager and torch.compile).
# Writes $OUT/device-report.json (everything, one file) and $OUT/device-run.log; OUT defaults to ./device-out.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
START=$(date +%s)

SIZES=64 CUTS=4 STEPS=3 ROUNDS=1 TORCH_STEPS=5 PROVIDER=webgpu DEADLINE=540 PACK="$root/.device-pack"
PEAK_SIZES=1024,2048 CHILD_TIMEOUT=300 TORCH_RESERVE=150
TORCH=1 COMPILE=1 GRADCHECK=1
while [ $# -gt 0 ]; do
  case "$1" in
    --sizes) SIZES="$2"; shift ;;
    --cuts) CUTS="$2"; shift ;;
    --steps) STEPS="$2"; shift ;;
    --rounds) ROUNDS="$2"; shift ;;
    --peak-sizes) PEAK_SIZES="$2"; shift ;;
    --child-timeout) CHILD_TIMEOUT="$2"; shift ;;
    --torch-reserve) TORCH_RESERVE="$2"; shift ;;
    --torch-steps) TORCH_STEPS="$2"; shift ;;
    --provider) PROVIDER="$2"; shift ;;
    --deadline) DEADLINE="$2"; shift ;;
    --pack) PACK="$(cd "$2" && pwd)"; shift ;;
    --no-torch) TORCH=0 ;;
    --no-compile) COMPILE=0 ;;
    --no-gradcheck) GRADCHECK=0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

OUT="${OUT:-$root/device-out}"
mkdir -p "$OUT"
LOG="$OUT/device-run.log"
: >"$LOG"
exec > >(tee -a "$LOG") 2>&1
PARTS="$(mktemp -d)"
WORK="$(mktemp -d)"
echo "device run: sizes $SIZES, $CUTS cuts, $STEPS steps x $ROUNDS rounds, provider $PROVIDER, deadline ${DEADLINE}s; $(uname -srm), $(nproc) CPUs"

phases=()
# phase NAME MAX_S CMD...: runs CMD with a timeout of MAX_S or what is left before the deadline (less 25 s
# for the report), records its exit code and time; skipped when under 15 s would be left.
phase() {
  local name="$1" max="$2"
  shift 2
  local left=$((DEADLINE - ($(date +%s) - START) - 25))
  local lim=$((max < left ? max : left))
  if [ "$lim" -lt 15 ]; then
    echo "== $name: skipped (${left}s left before the ${DEADLINE}s deadline)"
    phases+=("{\"name\":\"$name\",\"rc\":null,\"seconds\":0,\"skipped\":\"deadline\"}")
    return
  fi
  echo "== $name (limit ${lim}s)"
  local t0
  t0=$(date +%s)
  timeout -k 10 "$lim" "$@"
  local rc=$?
  local dt=$(($(date +%s) - t0))
  echo "== $name: exit $rc in ${dt}s$([ $rc = 124 ] && echo " (timed out)")"
  phases+=("{\"name\":\"$name\",\"rc\":$rc,\"seconds\":$dt,\"timedOut\":$([ $rc = 124 ] && echo true || echo false)}")
}

# ---- Vulkan: the loader (unpacked from the pack's .deb on the GPU machine, where none is installed) and
# NVIDIA's ICD where the driver puts it outside the loader's search path
# Present: a loader in the usual places or in ldconfig's cache (ldconfig lives in /sbin, often off PATH).
export PATH="$PATH:/usr/sbin:/sbin"
have_loader() {
  local f
  for f in /usr/lib/x86_64-linux-gnu/libvulkan.so.1 /lib/x86_64-linux-gnu/libvulkan.so.1 /usr/lib64/libvulkan.so.1 \
    /usr/lib/libvulkan.so.1; do
    [ -e "$f" ] && return 0
  done
  ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1 '
}
vulkan_note="libvulkan.so.1 already present: the pack's .deb left alone"
if ! have_loader; then
  if ls "$PACK"/debs/*.deb >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v dpkg >/dev/null; then
    for f in "$PACK"/debs/*.deb; do dpkg -x "$f" /; done
    ldconfig
    vulkan_note="no libvulkan.so.1 was installed: unpacked $(cd "$PACK/debs" && echo *.deb)"
  else
    vulkan_note="no libvulkan.so.1, and no .deb to unpack (or not root, or no dpkg)"
  fi
fi
if ! ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json >/dev/null 2>&1 &&
  [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ] && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  vulkan_note="$vulkan_note; VK_DRIVER_FILES=$VK_DRIVER_FILES"
fi
[ -n "${XDG_RUNTIME_DIR:-}" ] || export XDG_RUNTIME_DIR="$WORK/xdg"
mkdir -p "$XDG_RUNTIME_DIR"
echo "vulkan: $vulkan_note"

# ---- the pack: Node, the bundled studio and its native modules (unpacked once per payload)
for t in runtime app; do
  [ -f "$PACK/$t.tar.xz" ] || { echo "run.sh: $PACK/$t.tar.xz is missing: run tools/device/pack.sh" >&2; exit 3; }
done
sha=$(cat "$PACK/payload.sha" 2>/dev/null || echo nosha)
HOME_DIR="${FSDEV_HOME:-/tmp/fstudio-device}/$sha"
if [ ! -f "$HOME_DIR/.done" ]; then
  rm -rf "$HOME_DIR" && mkdir -p "$HOME_DIR"
  for t in runtime app; do
    if command -v xz >/dev/null; then
      xz -dc "$PACK/$t.tar.xz" | tar -x -C "$HOME_DIR"
    else
      python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$PACK/$t.tar.xz" "$HOME_DIR"
    fi || { echo "run.sh: could not unpack $t.tar.xz" >&2; exit 3; }
  done
  touch "$HOME_DIR/.done"
fi
NODE="$HOME_DIR/bin/node"
APP="$HOME_DIR/app/dist"
"$NODE" --version >/dev/null || { echo "run.sh: the packed node does not run here" >&2; exit 3; }
echo "pack: $HOME_DIR (node $("$NODE" --version))"

# ---- Python with torch: python3 on PATH, else Debian's (this repo's CI machines put pyenv's first)
PY=""
for p in ${PYTHON:-} python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import torch' 2>/dev/null; then PY="$p"; break; fi
done

# ---- the runs
DATA="$WORK/data"
if command -v nvidia-smi >/dev/null; then
  phase gpu 30 bash -c "nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv >'$PARTS/gpu.txt'"
else
  echo "no nvidia-smi here" >"$PARTS/gpu.txt"
fi
phase adapter 60 "$NODE" "$APP/bench.js" adapter --json "$PARTS/adapter.json"
phase doctor 90 bash -c "'$NODE' '$APP/fstudio.js' --data-dir '$DATA' doctor --json >'$PARTS/doctor.json'"
if [ "$GRADCHECK" = 1 ]; then
  phase gradcheck 150 bash -c "'$NODE' '$APP/fstudio.js' --data-dir '$DATA' doctor --gradcheck --provider '$PROVIDER' --json >'$PARTS/gradcheck.json'"
fi
# The bench gets what is left but the torch phase's reserve.
reserve=$([ "$TORCH" = 1 ] && [ -n "$PY" ] && echo "$TORCH_RESERVE" || echo 0)
phase bench $((DEADLINE - ($(date +%s) - START) - 25 - reserve)) "$NODE" "$APP/bench.js" bench --provider "$PROVIDER" --sizes "$SIZES" --cuts "$CUTS" \
  --steps "$STEPS" --rounds "$ROUNDS" --peak-sizes "$PEAK_SIZES" --child-timeout "$CHILD_TIMEOUT" \
  --work "$WORK" --json "$PARTS/bench.json"
if [ "$TORCH" = 1 ] && [ -n "$PY" ]; then
  phase torch "$DEADLINE" env PYTHONUNBUFFERED=1 "$PY" tools/device/torch_step.py --sizes "$SIZES" --cuts "$CUTS" \
    --steps "$TORCH_STEPS" $([ "$COMPILE" = 1 ] || echo --no-compile) --fixtures tests/fixtures --json "$PARTS/torch.json"
elif [ "$TORCH" = 1 ]; then
  echo "{\"rows\":[],\"error\":\"not measured: no python3 with torch found\"}" >"$PARTS/torch.json"
else
  echo "{\"rows\":[],\"error\":\"not measured: --no-torch\"}" >"$PARTS/torch.json"
fi

# ---- the report
{
  printf '{"args":{"sizes":"%s","cuts":%s,"steps":%s,"rounds":%s,"provider":"%s","deadline":%s},' \
    "$SIZES" "$CUTS" "$STEPS" "$ROUNDS" "$PROVIDER" "$DEADLINE"
  printf '"vulkan":"%s","python":"%s","env":{"VK_DRIVER_FILES":"%s","FSTUDIO_WEBGPU_SOFTWARE":"%s"},' \
    "$vulkan_note" "${PY:-none}" "${VK_DRIVER_FILES:-}" "${FSTUDIO_WEBGPU_SOFTWARE:-}"
  printf '"phases":[%s],"seconds":%s}\n' "$(IFS=,; echo "${phases[*]:-}")" "$(($(date +%s) - START))"
} >"$PARTS/run.json"
"$NODE" "$APP/bench.js" combine --out "$OUT/device-report.json" run="$PARTS/run.json" gpu="$PARTS/gpu.txt" \
  adapter="$PARTS/adapter.json" doctor="$PARTS/doctor.json" gradcheck="$PARTS/gradcheck.json" \
  bench="$PARTS/bench.json" torch="$PARTS/torch.json"
echo "written $OUT/device-report.json and $LOG in $(($(date +%s) - START))s"
rm -rf "$PARTS" "$WORK"
