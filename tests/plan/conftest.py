from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def qwen3_config() -> Path:
    return FIXTURES / "qwen3-30b-a3b-config.json"
