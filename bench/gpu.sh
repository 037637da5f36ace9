#!/usr/bin/env bash
# The GPU run: on a machine with an NVIDIA GPU, install onnxruntime-gpu (unless it is there),
# run the tests marked `gpu`, then print the GPU tables of `onnxcam bench` for a ResNet-50
# shape and EfficientNet-Lite0 (Score-CAM, Grad-CAM, ReciproCAM at batch 64/128/256, fp32 and
# fp16, maps against the CPU provider). Stops at the first failing step. Meant to take under
# 8 minutes in all; each step has its own time limit.
#
#   bench/gpu.sh [--out DIR] [--python PYTHON] [--no-install] [--dry-run]
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=gpu-out
PY=python3
INSTALL=1
DRY=0
usage="usage: bench/gpu.sh [--out DIR] [--python PYTHON] [--no-install] [--dry-run]"
while [ $# -gt 0 ]; do
  case "$1" in
    --out) [ $# -ge 2 ] || { echo "gpu.sh: --out expects a folder" >&2; exit 2; }; OUT=$2; shift 2 ;;
    --python) [ $# -ge 2 ] || { echo "gpu.sh: --python expects an interpreter" >&2; exit 2; }; PY=$2; shift 2 ;;
    --no-install) INSTALL=0; shift ;;
    --dry-run) DRY=1; shift ;;
    -h|--help) echo "$usage"; exit 0 ;;
    *) echo "gpu.sh: unknown argument '$1'; $usage" >&2; exit 2 ;;
  esac
done

step() {  # step SECONDS COMMAND...: print it, run it under a time limit (or only print it)
  local limit=$1; shift
  echo "+ $*"
  [ "$DRY" = 1 ] && return 0
  timeout "$limit" "$@"
}

if [ "$DRY" = 0 ] && ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu.sh: expected an NVIDIA GPU (nvidia-smi -L), found none" >&2
  exit 2
fi
step 30 nvidia-smi -L
if [ "$INSTALL" = 1 ]; then
  step 300 "$PY" -m pip install -q "torch==2.13.0"
  step 300 "$PY" -m pip install -q -e ".[gpu,torch,demo]" "pytest>=8"
fi
step 60 "$PY" -c "import onnxruntime as o, sys; p = o.get_available_providers(); print(p); sys.exit('CUDAExecutionProvider' not in p)"
step 120 "$PY" -m pytest -q -x -m gpu -p no:cacheprovider $(grep -l "mark.gpu" tests/*.py)
step 180 "$PY" bench/gpu_models.py --out "$OUT/models"
for model in resnet50 efficientnet-lite0; do
  step 150 "$PY" -m onnxcam.cli bench "$OUT/models/$model.onnx" --providers cpu,cuda \
    --batch-sizes 64,128,256 --methods score-cam,grad-cam,recipro-cam --images 1 --rounds 5 \
    --fp16 --quiet --out "$OUT/$model"
done
echo "gpu.sh: tables in $OUT/*/bench.md"
