"""benchmarks/gpu_check.sh runs on a CUDA machine with no package index: its CPU smoke path (through the wrapper,
tiny, float32) keeps the whole check from rotting between GPU sessions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_gpu_check_runs_its_whole_path_on_a_cpu(tmp_path):
    out = tmp_path / "gpu_check.json"
    done = subprocess.run(
        [str(ROOT / "benchmarks" / "gpu_check.sh"), "--device", "cpu", "--tiny", "--concurrent", "16"]
        + ["--json", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHON": sys.executable},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    facts = json.loads(out.read_text())
    assert facts["provenance"]["git_commit"] and facts["device"] == "cpu"
    assert facts["model"]["architecture"] == "qwen3_moe"
    assert facts["speed"]["engine_tokens_per_s"] > 0 and facts["speed"]["generate_tokens_per_s"] > 0
    assert facts["speed"]["same_text"]
    assert all(facts["mixed_batch"]["same_as_alone"].values())
    stacking = facts["stacking"]
    assert stacking["same_top_token"] and stacking["max_abs_diff_vs_peft"] < 1e-3 < stacking["max_abs_diff_vs_base"]
    assert facts["concurrent"]["completed"] == facts["concurrent"]["requests"] == 16
    assert facts["thinking"]["split_matches_whole"] and facts["thinking"]["reasoning_is_the_first_half"]
    assert facts["adapter_load"]["bytes"] > 0 and facts["adapter_load"]["slot_load_ms"] > 0
    assert facts["training"]["steps"] == 2 and facts["training"]["tokens_per_s"] > 0
