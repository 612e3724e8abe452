from __future__ import annotations

import time

import pytest

from konsilium.memory import Exchange


@pytest.fixture
def make():
    """A factory of exchanges: `make(i, **overrides)`, times one second apart so the order is known."""
    start = time.time() - 10_000

    def build(i: int = 0, **overrides) -> Exchange:
        values = dict(
            id=f"chatcmpl-{i:06d}",
            time=start + i,
            endpoint="chat.completions",
            model="konsilium",
            role=None,
            messages=[{"role": "user", "content": f"question {i}"}],
            response=f"answer {i}",
            finish_reason="stop",
            sources=[],
        )
        values.update(overrides)
        return Exchange(**values)

    return build
