"""`GET /v1/ui/notes/resolve`: the note a wikilink names, looked up by name as Obsidian resolves it (the web UI links
an answer's `[[…]]` to a note that is not among its sources with it), on a LanceDB and a Qdrant (embedded) index
of the same small vault: the exact path, a path's end or the bare file name (the shortest path of several, with the
others as candidates), case and Unicode form aside, then the title and the front matter's aliases."""

from __future__ import annotations

import unicodedata

import httpx2 as httpx
import pytest
from fake_engine import FakeEngine
from live_server import running_server

from konsilium.config import Home, open_home
from konsilium.grounding import Knowledge
from konsilium.index.indexer import Indexer
from konsilium.server import create_app

pytest.importorskip("qdrant_client")

CAFE = unicodedata.normalize("NFD", "Café")  # as macOS writes a file name
NOTES = {
    "Plan.md": "# Plan\n\nThe plan for the year: fewer meetings.\n",
    "Projects/2025/Plan.md": "# Plan 2025\n\nShip the garden beds by May.\n",
    "Projects/Garden.md": "---\naliases: [Allotment, Beds]\n---\n# Garden\n\n## Beds\n\nTomatoes along the fence.\n",
    f"Food/{CAFE} menu.md": "# Menu\n\nSoup of the day and bread.\n",
    "Archive/Old/Budget.md": "# Budget\n\nLast year's numbers.\n",
    "Money/Budget.md": "# Budget\n\nThis year's numbers.\n",
}
LINKS = {
    "Plan": "Plan.md",  # the path itself before another folder's note of that name
    "budget": "Money/Budget.md",  # a bare name two notes have: the shorter path
    "2025/Plan": "Projects/2025/Plan.md",  # a path's last folders
    "projects/garden.md": "Projects/Garden.md",  # a path, whatever its case, with `.md`
    "[[Garden#Beds|my garden]]": "Projects/Garden.md",  # a whole wikilink: its heading and display text dropped
    "allotment": "Projects/Garden.md",  # an alias from the front matter
    "café MENU": f"Food/{CAFE} menu.md",  # composed and lower-case: the decomposed file name
}


@pytest.fixture(scope="module")
def answers(tmp_path_factory, embedder):
    """What each store's server answers for every link: {store: {link: (status, body)}}."""
    root = tmp_path_factory.mktemp("note-links")
    vault = root / "vault"
    for path, text in NOTES.items():
        (vault / path).parent.mkdir(parents=True, exist_ok=True)
        (vault / path).write_text(text, encoding="utf-8")
    lance = open_home(root / "home")
    for store in ("lance", "qdrant"):
        Indexer(lance, embedder=embedder, roots=[vault], store=store).run([vault])
    index = lance.config.index.model_copy(update={"store": "qdrant"})
    qdrant = Home(lance.root, lance.config.model_copy(update={"index": index}))
    found = {}
    for kind, home in (("lance", lance), ("qdrant", qdrant)):
        with (
            running_server(create_app(FakeEngine(), knowledge=Knowledge(home))) as url,
            httpx.Client(base_url=url, timeout=60) as client,
        ):
            found[kind] = {}
            for link in [*LINKS, "Nowhere", "[[#Only a heading]]"]:
                response = client.get("/v1/ui/notes/resolve", params={"link": link})
                found[kind][link] = (response.status_code, response.json())
            unknown = client.get("/v1/ui/notes/resolve", params={"link": "Plan", "collection": "nope"})
            found[kind]["collection nope"] = (unknown.status_code, unknown.json())
    return found, vault


def test_a_link_names_the_note_obsidian_would_open_on_both_stores(answers):
    found, vault = answers
    for kind, seen in found.items():
        for link, note in LINKS.items():
            status, body = seen[link]
            assert status == 200, (kind, link, body)
            assert body["note"] == note, (kind, link)
            assert (vault / body["note"]).is_file() and body["note_key"].endswith("::" + note)
    assert found["qdrant"] == found["lance"]


def test_an_ambiguous_name_prefers_the_shortest_path_and_lists_the_others(answers):
    found, _ = answers
    for seen in found.values():
        body = seen["budget"][1]
        assert [c["note"] for c in body["candidates"]] == ["Money/Budget.md", "Archive/Old/Budget.md"]
        assert body["title"] == "Budget"
        body = seen["Plan"][1]
        assert [c["note"] for c in body["candidates"]] == ["Plan.md", "Projects/2025/Plan.md"]
        assert [c["note"] for c in seen["2025/Plan"][1]["candidates"]] == ["Projects/2025/Plan.md"]  # unambiguous


def test_a_name_no_note_has_is_a_404(answers):
    found, _ = answers
    for seen in found.values():
        for link in ("Nowhere", "[[#Only a heading]]"):
            status, body = seen[link]
            assert status == 404 and body["error"]["code"] == "note_not_found"
        status, body = seen["collection nope"]
        assert status == 404 and body["error"]["code"] == "unknown_collection"
