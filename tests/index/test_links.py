"""The link graph: Obsidian-style resolution and the boost it gives to notes linked with strong hits."""

from __future__ import annotations

from konsilium.config import open_home
from konsilium.index.indexer import Indexer
from konsilium.index.retrieval import LinkGraph, Retriever
from konsilium.index.store import NoteRecord


def _rec(key: str, note: str, links=(), aliases=()) -> NoteRecord:
    return NoteRecord(key, "/v", note, "h", note, aliases=list(aliases), links=list(links))


def test_links_resolve_by_name_path_and_alias_in_both_directions():
    graph = LinkGraph(
        [
            _rec("a", "A.md", links=["folder/b", "see c", "missing"]),
            _rec("b", "folder/B.md"),
            _rec("c", "C.md", aliases=["See C"]),
            _rec("d", "D.md", links=["a"]),
        ]
    )
    assert graph.neighbors["a"] == {"b", "c", "d"}
    assert graph.neighbors["b"] == {"a"} and graph.neighbors["d"] == {"a"}
    assert graph.degree("missing") == 0


def test_a_note_linked_from_the_best_hit_outranks_its_unlinked_twin(tmp_path, embedder):
    vault = tmp_path / "vault"
    vault.mkdir()
    (vault / "zebra.md").write_text("# Zebra\nZebra stripes confuse flies. See [[twin linked]].\n")
    twin = "# Notes\nField notes about animal coats and patterns in the savanna.\n"
    (vault / "twin linked.md").write_text(twin)
    (vault / "twin other.md").write_text(twin)
    home = open_home(tmp_path / "home")
    indexer = Indexer(home, embedder=embedder)
    indexer.run([vault])

    def order(boost: float) -> list[str]:
        hits = Retriever(indexer.store, embedder, link_boost=boost).search("zebra stripes", k=3)
        return [h.note for h in hits]

    assert order(0.15)[:2] == ["zebra.md", "twin linked.md"]
    boosted = Retriever(indexer.store, embedder, link_boost=0.15).search("zebra stripes", k=3)
    plain = Retriever(indexer.store, embedder, link_boost=0.0).search("zebra stripes", k=3)
    before = {h.note: h.score for h in plain}
    after = {h.note: h.score for h in boosted}
    # Only the linked twin gains; the unlinked one keeps its score.
    assert after["twin linked.md"] > before["twin linked.md"]
    assert after["twin other.md"] == before["twin other.md"]
