#!/usr/bin/env bash
# GPU check for the runtime; run from the repository root on a GPU machine (about 3 minutes).
#   bash bench/gpu_check.sh [DIR_WITH_WHEELS]   e.g. a carried onnxruntime_gpu-*.whl
set -u
nvidia-smi || echo "nvidia-smi: not available"
if [ -n "${1:-}" ] && ls "$1"/onnxruntime_gpu-*.whl >/dev/null 2>&1; then
  pip uninstall -y -q onnxruntime >/dev/null 2>&1
  pip install -q --no-deps --no-index "$1"/onnxruntime_gpu-*.whl || echo "onnxruntime-gpu install failed"
fi
pip install -q --no-deps --no-build-isolation -e . >/dev/null 2>&1 || true
timeout 170 python3 bench/gpu_check.py "${@:2}"
