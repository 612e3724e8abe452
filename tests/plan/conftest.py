from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def qwen3_config() -> Path:
    return FIXTURES / "qwen3-30b-a3b-config.json"


@pytest.fixture
def qwen3_235b_config() -> Path:
    """Qwen3-235B-A22B's public config.json values (94 layers, 128 experts of 1536, 64 heads): ~470 GB in bf16."""
    return FIXTURES / "qwen3-235b-a22b-config.json"
