"""`konsilium search` while a konsilium server runs: the question is embedded by the server, which has the
embedder loaded, instead of loading it again here; the hits are the same. Anything the server will not embed
falls back to the local embedder."""

from __future__ import annotations

import json
import shutil

import pytest
from fake_engine import FakeEngine
from live_server import free_port, running_server
from typer.testing import CliRunner

from konsilium.cli.main import app
from konsilium.config import open_home
from konsilium.grounding import Knowledge
from konsilium.server import create_app

QUESTION = "сколько видеопамяти нужно под контекст"


def search(home, *args: str) -> list[str]:
    result = CliRunner().invoke(app, ["--home", str(home), "search", QUESTION, "--json", *args])
    assert result.exit_code == 0, result.output
    return [hit["note"] for hit in json.loads(result.stdout)]


@pytest.fixture
def home_beside_a_server(indexed_steps, tmp_path):
    """A home with the indexed notes, configured to reach a running konsilium that serves the same index."""
    home = tmp_path / "home"
    shutil.copytree(indexed_steps.home / "index", home / "index")
    server_app = create_app(FakeEngine(), knowledge=Knowledge(open_home(indexed_steps.home)))
    with running_server(server_app) as url:
        import httpx2

        warm = httpx2.post(f"{url}/v1/embeddings", json={"model": "konsilium", "input": ["warm"]}, timeout=120)
        assert warm.status_code == 200  # the server's embedder is loaded before any test patches embedders
        port = url.rsplit(":", 1)[1]
        (home / "konsilium.yaml").write_text(f"server:\n  port: {port}\n", encoding="utf-8")
        yield home


class NeverHere:
    """The CLI's own embedder, which must not be asked: the server embeds."""

    def __init__(self, real):
        self.name, self.multilingual, self.real = real.name, real.multilingual, real

    @property
    def dim(self):
        return self.real.dim

    def embed(self, texts):
        pytest.fail("the question was embedded in the CLI process")


def test_search_asks_the_running_server_to_embed_and_finds_the_same_notes(home_beside_a_server, monkeypatch):
    from konsilium.index import embedder as embedders

    make = embedders.make_embedder
    alone = home_beside_a_server.parent / "alone"  # the same index, configured to a port where nothing listens
    shutil.copytree(home_beside_a_server / "index", alone / "index")
    (alone / "konsilium.yaml").write_text(f"server:\n  port: {free_port()}\n", encoding="utf-8")
    for mode in ("dense", "hybrid"):
        local = search(alone, "--mode", mode)
        assert local
        with monkeypatch.context() as patched:
            patched.setattr(embedders, "make_embedder", lambda *a, **kw: NeverHere(make(*a, **kw)))
            assert search(home_beside_a_server, "--mode", mode) == local


def test_a_server_that_will_not_embed_leaves_the_search_to_the_local_embedder(home_beside_a_server, monkeypatch):
    expected = search(home_beside_a_server, "--mode", "dense")
    asked = []

    def refuse(self, texts):
        asked.append(texts)
        return None  # as for a 4xx: another embedder there, or an error

    from konsilium.cli import ask_remote

    monkeypatch.setattr(ask_remote.ServedEmbedder, "_ask", refuse)
    assert search(home_beside_a_server, "--mode", "dense") == expected and asked == [[QUESTION]]
