from __future__ import annotations

import time

import pytest

from konsilium.config import MemorySettings
from konsilium.memory import ConversationLog, Exchange
from konsilium.memory.service import MemoryService


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


@pytest.fixture(scope="module")
def embedder():
    """The real memory embedder, loaded once per module (modules that define their own use theirs)."""
    from konsilium.index.embedder import UniversalSentenceEncoderEmbedder

    return UniversalSentenceEncoderEmbedder()


@pytest.fixture
def service(tmp_path, embedder):
    """A memory service over a fresh conversation log, with the real embedder."""
    log = ConversationLog(tmp_path / "conversations.sqlite3")
    yield MemoryService(log, MemorySettings(), embedder=embedder)
    log.close()


@pytest.fixture
def converse(service, make):
    """One conversation with `service`, a user message at a time, each answered, as a chat client sends it."""

    def talk(said: list[str]) -> None:
        history: list[dict] = []
        for i, text in enumerate(said):
            history = [*history, {"role": "user", "content": text}]
            service.store.log.record(make(i, messages=history))
            service.catch_up()
            history = [*history, {"role": "assistant", "content": "ok"}]

    return talk
