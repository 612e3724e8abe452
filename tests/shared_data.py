"""Where the shared, read-only test data lives (../shared beside the repo). A module of its own, because
`from shared_data import ...` picks whichever conftest.py pytest imported first."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SAMPLE_VAULT = SHARED / "sample-vault"
HELP_VAULT = SHARED / "obsidian-help-en"
SEED_QUESTIONS = SHARED / "eval" / "seed-vault-questions.jsonl"


def needs(path: Path):
    return pytest.mark.skipif(not path.exists(), reason=f"{path} is not here (../shared beside the repo)")
