"""Shared fixtures: real vaults from ../shared (read-only) and homes in tmp dirs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from shared_data import HELP_VAULT, SAMPLE_VAULT, SEED_QUESTIONS, SHARED, needs  # noqa: F401 - re-exported

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def embedder():
    from konsilium.index.embedder import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


@pytest.fixture
def vault_copy(tmp_path):
    """A writable copy of the sample vault (tests must never write into ../shared)."""

    def make(source: Path = SAMPLE_VAULT, name: str = "vault", limit: int | None = None) -> Path:
        """Copy `source`; with `limit`, only the first `limit` notes of each folder (embedding costs time)."""
        target = tmp_path / name
        if limit is None:
            shutil.copytree(source, target)
            return target
        for folder in sorted({p.parent for p in source.rglob("*.md")}):
            for note in sorted(folder.glob("*.md"))[:limit]:
                dest = target / note.relative_to(source)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(note, dest)
        return target

    return make


@pytest.fixture(scope="session")
def embedded_upstream():
    """A konsilium server on the embedded default model, to stand as an OpenAI-compatible upstream: (url, model)."""
    from live_server import running_server

    from konsilium.engines import load_embedded_default
    from konsilium.server import create_app

    model = "konsilium-upstream"
    with running_server(create_app(load_embedded_default(), model_id=model)) as url:
        yield SimpleNamespace(url=url, base_url=f"{url}/v1", model=model)
