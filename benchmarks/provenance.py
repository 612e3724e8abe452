"""Where a benchmark's numbers come from, recorded in every results JSON under "provenance": the git commit,
whether the working tree differed from it (a dirty tree means the numbers belong to no commit), the command
line, the CPU count and the time. Call it when the run starts: that is the code being measured."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Results land in the tree; a previous run's JSON must not make every later run look dirty.
_NOT_SOURCE = ":(exclude)benchmarks/results"
_LISTED_PATHS = 20


def provenance(root: Path = ROOT) -> dict:
    facts = {
        "git_commit": None,
        "git_dirty": None,  # None: not a git checkout, or git is missing
        "dirty_paths": [],
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "cpu_count": os.cpu_count(),
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    try:
        facts["git_commit"] = _git(root, "rev-parse", "HEAD").strip()
        changed = [
            line[3:] for line in _git(root, "status", "--porcelain", "--", ".", _NOT_SOURCE).splitlines() if line
        ]
    except (OSError, subprocess.SubprocessError):
        return facts
    facts["git_dirty"] = bool(changed)
    facts["dirty_paths"] = changed[:_LISTED_PATHS] + (
        [f"... {len(changed) - _LISTED_PATHS} more"] if len(changed) > _LISTED_PATHS else []
    )
    return facts


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True).stdout


def versions(device: str = "cpu") -> dict:
    """The libraries and the accelerator a GPU benchmark ran on (they differ from this machine's lock)."""
    from importlib.metadata import PackageNotFoundError, version

    facts = {"python": sys.version.split()[0]}
    for name in ("torch", "transformers", "peft", "bitsandbytes"):
        try:
            facts[name] = version(name)
        except PackageNotFoundError:
            facts[name] = None
    if device == "cuda":
        import torch

        facts["gpu"] = torch.cuda.get_device_name()
        facts["cuda"] = torch.version.cuda
    return facts
