#!/usr/bin/env bash
# Every CUDA check of konsilium in one run, for a GPU machine lent for a few minutes with PyTorch, transformers and
# PEFT but no package index: the engine check (gpu_check.py) and the training run in bf16 and QLoRA
# (gpu_training.py; TRAIN_ARGS=--grid adds the planner check at other batch shapes). Wheels that machine lacks
# (pydantic, PyStemmer, bitsandbytes: see benchmarks/README.md) are installed from .whl/ when that folder is there.
# Results and logs go to $OUT (default benchmarks/results).
set -uo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
OUT="${OUT:-benchmarks/results}"
PY="${PYTHON:-python3}"
if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/konsilium-site .whl/*.whl \
        && export PYTHONPATH="/tmp/konsilium-site${PYTHONPATH:+:$PYTHONPATH}"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$OUT/gpu_info.txt"
started=$SECONDS
PYTHON="$PY" timeout "${CHECK_S:-300}" benchmarks/gpu_check.sh --json "$OUT/gpu_check.json" 2>&1 \
    | grep -v "Writing model shards" | tee "$OUT/gpu_check.log"
echo "gpu_check: ${PIPESTATUS[0]} after $((SECONDS - started)) s"
started=$SECONDS
timeout "${TRAIN_S:-240}" "$PY" benchmarks/gpu_training.py ${TRAIN_ARGS:-} --json "$OUT/gpu_training.json" 2>&1 \
    | grep -v "Writing model shards" | tee "$OUT/gpu_training.log"
echo "gpu_training: ${PIPESTATUS[0]} after $((SECONDS - started)) s"
