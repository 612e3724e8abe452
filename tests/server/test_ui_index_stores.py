"""The web UI's Vault page and note preview (`/v1/ui/*`) on a collection indexed into Qdrant (`index.store:
qdrant`, embedded) give what they give on LanceDB: the index status, a re-index run, the search playground and a
source's preview with its passages in order, read through the store protocol only.

Both stores hold the same three sample notes in one home; each is served by the real app on uvicorn."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx2 as httpx
import pytest
from fake_engine import FakeEngine
from live_server import running_server, wait_for

from konsilium.config import Home, open_home
from konsilium.grounding import Knowledge
from konsilium.index.indexer import Indexer
from konsilium.server import create_app

pytest.importorskip("qdrant_client")


@pytest.fixture(scope="module")
def answers(indexed_steps, tmp_path_factory):
    """What each store's server answers to the Vault page and to a preview of every note: {store: {...}}."""
    home_dir = Path(shutil.copytree(indexed_steps.home, tmp_path_factory.mktemp("ui-stores") / "home"))
    lance = open_home(home_dir)
    Indexer(lance, roots=[indexed_steps.vault], store="qdrant").run([indexed_steps.vault])
    index = lance.config.index.model_copy(update={"store": "qdrant"})
    qdrant = Home(lance.root, lance.config.model_copy(update={"index": index}))
    notes = sorted(p.relative_to(indexed_steps.vault).as_posix() for p in indexed_steps.vault.rglob("*.md"))
    found = {}
    for kind, home in (("lance", lance), ("qdrant", qdrant)):
        with (
            running_server(create_app(FakeEngine(), knowledge=Knowledge(home))) as url,
            httpx.Client(base_url=url, timeout=120) as client,
        ):
            found[kind] = _visit(client, notes)
    return found, notes, indexed_steps.vault


def _visit(client, notes: list[str]) -> dict:
    status = client.get("/v1/ui/index").json()
    started = client.post("/v1/ui/index", json={}).json()
    assert started["state"] in ("running", "done")  # a small vault may be done already
    assert wait_for(lambda: client.get("/v1/ui/index/job").json()["state"] != "running", 120)
    search = client.post("/v1/ui/search", json={"query": "видеокарта память", "k": 3}).json()
    return {
        "status": status,
        "job": client.get("/v1/ui/index/job").json(),
        "search": {mode: [(h["note"], h["heading"]) for h in hits] for mode, hits in search["modes"].items()},
        "previews": {note: client.get("/v1/ui/note", params={"note": note}).json() for note in notes},
        "missing": client.get("/v1/ui/note", params={"note": "steps/missing.md"}),
    }


def test_the_vault_page_shows_a_qdrant_collection_as_it_shows_a_lancedb_one(answers):
    found, notes, vault = answers
    statuses = {}
    for kind, seen in found.items():
        (collection,) = seen["status"]["collections"]
        assert collection["last_run"] is not None  # when the index was last written: shown as a date
        statuses[kind] = {k: v for k, v in collection.items() if k != "last_run"}
        assert statuses[kind]["vaults"] == [str(vault.resolve())]  # the folder a re-index reads
        assert (statuses[kind]["notes"], statuses[kind]["chunks"]) != (0, 0)
        job = seen["job"]
        assert job["state"] == "done", job.get("error")
        assert (job["report"]["notes"], job["report"]["unchanged"], job["report"]["added"]) == (len(notes), 3, 0)
    assert statuses["qdrant"] == statuses["lance"]
    assert found["qdrant"]["search"] == found["lance"]["search"]
    assert all(found["qdrant"]["search"].values())


def test_a_note_preview_from_qdrant_matches_lancedb(answers):
    found, notes, vault = answers
    for note in notes:
        lance, qdrant = found["lance"]["previews"][note], found["qdrant"]["previews"][note]
        assert qdrant == lance
        assert lance["vault_name"] == vault.name and lance["text"] == (vault / note).read_text(encoding="utf-8")
        assert len(lance["passages"]) > 1 and all(p["text"] for p in lance["passages"])  # same order too
    for seen in found.values():
        assert seen["missing"].status_code == 404 and seen["missing"].json()["error"]["code"] == "note_not_found"
