"""Shared fixtures: real vaults from ../shared (read-only) and homes in tmp dirs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SAMPLE_VAULT = SHARED / "sample-vault"
HELP_VAULT = SHARED / "obsidian-help-en"
SEED_QUESTIONS = SHARED / "eval" / "seed-vault-questions.jsonl"

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def needs(path: Path):
    return pytest.mark.skipif(not path.exists(), reason=f"{path} is not here (../shared beside the repo)")


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
