#!/usr/bin/env bash
# konsilium's transformers engine on CUDA with a random-weight Qwen3-MoE built locally (see benchmarks/gpu_check.py).
# No downloads; the timeout keeps the whole check well under 8 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
exec timeout 420 "${PYTHON:-python}" benchmarks/gpu_check.py "$@"
