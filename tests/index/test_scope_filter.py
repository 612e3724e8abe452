"""Scopes filter inside LanceDB before ranking, on real files: folders, nested tags, literal names, the vector
index, and an index built before tags were stored."""

from __future__ import annotations

import json

import numpy as np
import pytest

from konsilium.index import lance_store
from konsilium.index.scope import Scope
from konsilium.index.store import ChunkRecord, NoteRecord

DIM = 64
# note path -> tags; every other note is filler that matches the query better than these
SCOPED = {
    "Sport/run.md": ["sport/running"],
    "Sport/lift.md": ["Sport"],
    "Sports/chess.md": ["sportsmanship"],
    "a_b/x.md": ["my_tag"],
    "axb/y.md": ["myxtag"],
    "100%/z.md": ["100%"],
    "Bob's/w.md": ["it's"],
}
FILLER = 300


def _vector(rng) -> np.ndarray:
    v = rng.standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def _fill(store, vault: str = "/v") -> dict[str, np.ndarray]:
    """Filler notes all say `alpha` many times; scoped ones once, so they rank last globally."""
    rng = np.random.default_rng(3)
    notes, chunks, vectors = [], [], {}
    paths = [f"Journal/n{i}.md" for i in range(FILLER)] + list(SCOPED)
    for path in paths:
        key = f"{vault}::{path}"
        vectors[path] = _vector(rng)
        terms = "alpha beta" if path in SCOPED else "alpha alpha alpha"
        notes.append(NoteRecord(key, vault, path, "h", path))
        chunks.append(ChunkRecord(key, path, path, "", terms, terms, path, 0, vectors[path], SCOPED.get(path, [])))
    store.replace_notes(notes, chunks)
    store.finish()
    return vectors


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = lance_store.LanceStore(tmp_path_factory.mktemp("scope"), "s", "test-embedder", DIM)
    store.vectors = _fill(store)
    return store


def _bm25(store, k: int, **scope) -> set[str]:
    return {h.note for h in store.search_bm25("alpha", k, Scope.of(**scope))}


def _dense(store, k: int, **scope) -> set[str]:
    query = store.vectors["Journal/n0.md"]  # the nearest note is a filler, out of every scope below
    return {h.note for h in store.search_dense(query, k, Scope.of(**scope))}


@pytest.mark.parametrize("search", [_bm25, _dense])
def test_a_scope_of_one_note_in_hundreds_still_returns_it_at_k_1(store, search):
    assert search(store, 1, folders=["Bob's"]) == {"Bob's/w.md"}
    assert search(store, 1, tags=["#100%"]) == {"100%/z.md"}
    assert "Journal/n0.md" not in search(store, 5, tags=["sport"])


@pytest.mark.parametrize("search", [_bm25, _dense])
def test_tags_cover_their_nested_tags_only(store, search):
    assert search(store, 10, tags=["sport"]) == {"Sport/run.md", "Sport/lift.md"}  # not `sportsmanship`
    assert search(store, 10, tags=["Sport/Running"]) == {"Sport/run.md"}
    assert search(store, 10, tags=["running"]) == set()  # a nested part alone is not the tag
    assert search(store, 10, tags=["my_tag"]) == {"a_b/x.md"}  # `_` is a letter here, not a wildcard
    assert search(store, 10, tags=["it's"]) == {"Bob's/w.md"}


@pytest.mark.parametrize("search", [_bm25, _dense])
def test_folders_are_path_prefixes_and_combine_with_tags(store, search):
    assert search(store, 10, folders=["Sport"]) == {"Sport/run.md", "Sport/lift.md"}  # not `Sports/`
    assert search(store, 10, folders=["/Sports/"]) == {"Sports/chess.md"}
    assert search(store, 10, folders=["a_b"]) == {"a_b/x.md"}  # not `axb/`
    assert search(store, 10, folders=["100%"]) == {"100%/z.md"}
    assert search(store, 10, folders=["Sport", "a_b"], tags=["sport/running", "my_tag"]) == {"Sport/run.md", "a_b/x.md"}
    assert search(store, 10, folders=["Sports"], tags=["sport"]) == set()


def test_a_narrow_scope_is_found_past_the_vector_index(tmp_path, monkeypatch):
    """The IVF index probes only some partitions; a narrow scope must still come back full."""
    monkeypatch.setattr(lance_store, "VECTOR_INDEX_MIN_ROWS", 200)
    store = lance_store.LanceStore(tmp_path, "ivf", "test-embedder", DIM)
    vectors = _fill(store)
    assert "vector_idx" in {i.name for i in store.chunks.list_indices()}
    for path in SCOPED:
        far = -vectors[path]  # the scoped note is the farthest of all from the query
        folder = path.rsplit("/", 1)[0]
        hits = store.search_dense(far, 1, Scope.of(folders=[folder]), nprobes=1)  # as on a big index
        assert len(hits) == 1 and hits[0].note.startswith(folder + "/")


def test_an_index_built_before_tags_were_stored_gets_them_at_open(tmp_path):
    vault = tmp_path / "vault"
    (vault / "Sport").mkdir(parents=True)
    (vault / "Sport/run.md").write_text("---\ntags: [Sport/Running]\n---\n# Run\nalpha #extra\n", encoding="utf-8")
    (vault / "plain.md").write_text("# Plain\nalpha alpha\n", encoding="utf-8")
    index = tmp_path / "index"
    store = lance_store.LanceStore(index, "old", "test-embedder", DIM)
    rng = np.random.default_rng(0)
    root = vault.as_posix()
    store.replace_notes(
        [NoteRecord(f"{root}::{p}", root, p, "h", p) for p in ("Sport/run.md", "plain.md", "gone.md")],
        [
            ChunkRecord(f"{root}::{p}", p, p, "", t, t, p + str(i), i, _vector(rng))
            for p, t in (("Sport/run.md", "alpha"), ("plain.md", "alpha alpha"), ("gone.md", "alpha"))
            for i in range(2)
        ],
    )
    store.finish()
    # What an older konsilium left behind: no tags column, no `tags` in the meta file.
    store.chunks.drop_columns(["tags"])
    meta_path = index / "old.meta.json"
    meta_path.write_text(json.dumps({k: v for k, v in store._meta().items() if k != "tags"}))

    reopened = lance_store.LanceStore(index, "old", "test-embedder", DIM)
    assert {h.note for h in reopened.search_bm25("alpha", 5, Scope.of(tags=["sport"]))} == {"Sport/run.md"}
    assert {h.note for h in reopened.search_bm25("alpha", 5, Scope.of(tags=["extra"]))} == {"Sport/run.md"}
    assert {h.note for h in reopened.search_bm25("alpha", 5)} == {"Sport/run.md", "plain.md", "gone.md"}
    # A note that cannot be read now keeps unknown tags (in no tag scope) and is tried again at the next open...
    assert reopened.chunks.count_rows("tags IS NULL") == 2 and not reopened._meta().get("tags")
    # ...until `konsilium index` removes it; then the migration is recorded and later opens write nothing.
    reopened.delete_notes([f"{root}::gone.md"])
    settled = lance_store.LanceStore(index, "old", "test-embedder", DIM)
    assert settled.chunks.count_rows("tags IS NULL") == 0 and json.loads(meta_path.read_text())["tags"] is True
    version = settled.chunks.version
    assert lance_store.LanceStore(index, "old", "test-embedder", DIM).chunks.version == version
