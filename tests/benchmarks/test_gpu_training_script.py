"""benchmarks/gpu_training.py is run on a CUDA machine that has no package index: its CPU smoke path keeps it from
rotting between GPU sessions (same model building, tokenizer training, trainer and planner calls)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_gpu_training_script_runs_its_whole_path_on_a_cpu(tmp_path):
    out = tmp_path / "gpu_training.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "gpu_training.py"),
            "--device",
            "cpu",
            "--tiny",
            "--steps",
            "3",
            "--max-tokens",
            "64",
            "--batch-tokens",
            "256",
            "--grid",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    run, *grid = json.loads(out.read_text())["runs"]
    assert run["precision"] == "fp32" and run["steps"] == 3 and run["tokens_per_s"] > 0
    assert run["planned_bytes"] > 0
    # --grid: the shapes the planner is held to (tests/plan reads these fields from the GPU run's JSON)
    shapes = {(r["batch_tokens"], r["max_tokens"], r["gradient_checkpointing"]) for r in grid}
    assert len(shapes) == len(grid) == 4 and all("error" not in r for r in grid)
    assert all(r["vocab_size"] > 0 and r["planned_parts"]["activations"] > 0 for r in grid)
