"""The fast search paths rank exactly as the plain ones: LanceStore's async-API queries as LanceDB's sync query
builder, the Retriever's concurrent candidate searches as the same searches one after the other, and hits whose
display fields are read after ranking as hits read whole."""

from __future__ import annotations

import numpy as np
import pytest
from lancedb.query import MatchQuery

from konsilium.index import lance_store
from konsilium.index.retrieval import Retriever
from konsilium.index.scope import Scope
from konsilium.index.store import ChunkRecord, NoteRecord
from konsilium.index.text import query_terms, terms_string

DIM = 64
WORDS = "alpha beta gamma delta river stone cloud garden piano engine лес река камень облако сад".split()
QUERIES = ["alpha river", "garden piano engine", "лес река", "stone cloud alpha", "delta сад"]


class WordEmbedder:
    """Deterministic vectors from the words of a text: related texts are close, as with a real embedder."""

    name = "test-words"
    dim = DIM

    def __init__(self):
        rng = np.random.default_rng(5)
        self.table = {w: rng.standard_normal(DIM).astype(np.float32) for w in WORDS}

    def embed(self, texts: list[str]) -> np.ndarray:
        out = []
        for text in texts:
            v = sum((self.table[w] for w in text.lower().split() if w in self.table), np.zeros(DIM, np.float32))
            v = v + 0.01 * self.table["alpha"]  # never the zero vector
            out.append(v / np.linalg.norm(v))
        return np.stack(out).astype(np.float32)


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    """A few hundred chunks with both indices (the vector index threshold lowered to reach it)."""
    embedder = WordEmbedder()
    rng = np.random.default_rng(11)
    store = lance_store.LanceStore(tmp_path_factory.mktemp("paths"), "p", embedder.name, DIM)
    notes, chunks = [], []
    for i in range(120):
        path = f"{'Work' if i % 3 else 'Home'}/n{i}.md"
        key = f"/v::{path}"
        notes.append(NoteRecord(key, "/v", path, "h", f"n{i}"))
        for ordinal in range(3):
            text = " ".join(rng.choice(WORDS, int(rng.integers(3, 9))))
            vector = embedder.embed([text])[0]
            tags = ["even"] if i % 2 == 0 else []
            chunks.append(
                ChunkRecord(key, path, f"n{i}", "", text, terms_string(text), f"{i}-{ordinal}", ordinal, vector, tags)
            )
    store.replace_notes(notes, chunks)
    old, lance_store.VECTOR_INDEX_MIN_ROWS = lance_store.VECTOR_INDEX_MIN_ROWS, 300
    try:
        store.finish()
    finally:
        lance_store.VECTOR_INDEX_MIN_ROWS = old
    assert {"terms_idx", "vector_idx"} <= {i.name for i in store.chunks.list_indices()}
    return store, embedder


def _rows(hits) -> list[tuple]:
    return [(h.note_key, h.ordinal, h.text, round(h.score, 6)) for h in hits]


def _sync_rows(table, score) -> list[tuple]:
    rows = table.to_pylist()
    return [(r["note_key"], r["ordinal"], r["text"], round(score(r), 6)) for r in rows]


SCOPES = [None, Scope.of(folders=["Home"]), Scope.of(tags=["even"])]


@pytest.mark.parametrize("scope", SCOPES)
def test_store_searches_return_what_the_sync_query_builder_returns(indexed, scope):
    store, embedder = indexed
    where = lance_store.scope_filter(scope)
    for query in QUERIES:
        terms = query_terms(query)
        sync = store.chunks.search(MatchQuery(terms, "terms"), query_type="fts")
        sync = sync.where(where, prefilter=True) if where else sync
        expected = _sync_rows(sync.select([*lance_store._SHOWN, "_score"]).limit(20).to_arrow(), lambda r: r["_score"])
        assert expected and _rows(store.search_bm25(terms, 20, scope)) == expected

        vector = embedder.embed([query])[0]
        sync = store.chunks.search(vector, vector_column_name="vector").distance_type("dot")
        sync = sync.where(where, prefilter=True) if where else sync
        sync = sync.nprobes(48).refine_factor(4).select([*lance_store._SHOWN, "_distance"]).limit(20)
        expected = _sync_rows(sync.to_arrow(), lambda r: 1.0 - r["_distance"])
        assert expected and _rows(store.search_dense(vector, 20, scope)) == expected


def test_an_empty_store_answers_with_no_hits(tmp_path):
    store = lance_store.LanceStore(tmp_path, "e", "test-words", DIM)
    assert store.search_bm25("alpha", 5) == [] and store.search_dense(np.ones(DIM, np.float32) / 8, 5) == []


@pytest.mark.parametrize("mode", ["hybrid", "bm25", "dense"])
def test_concurrent_candidate_searches_rank_as_sequential_ones(indexed, mode):
    store, embedder = indexed
    retriever = Retriever(store, embedder, candidates=30)
    for query in QUERIES:
        bm25 = store.search_bm25(query_terms(query), 30) if mode != "dense" else []
        dense = store.search_dense(embedder.embed([query])[0], 30) if mode != "bm25" else []
        sequential = retriever._rank(query, bm25, dense, 10, mode)
        hits = retriever.search(query, 10, mode)
        assert hits and [(h.note_key, h.heading, h.score, h.relevance) for h in hits] == [
            (h.note_key, h.heading, h.score, h.relevance) for h in sequential
        ]


class WholeChunks:
    """The store as a caller that knows only the protocol's two searches sees it: every candidate read whole."""

    def __init__(self, store):
        self.store = store

    def search_bm25(self, terms, limit, scope=None):
        return self.store.search_bm25(terms, limit, scope)

    def search_dense(self, vector, limit, scope=None):
        return self.store.search_dense(vector, limit, scope)


def _hit_rows(hits) -> list[tuple]:
    return [(h.note_key, h.note, h.title, h.heading, h.text, h.score, h.relevance) for h in hits]


@pytest.mark.parametrize("mode", ["hybrid", "bm25", "dense"])
@pytest.mark.parametrize("scope", SCOPES)
def test_display_fields_read_after_ranking_give_the_same_hits_as_whole_candidates(indexed, mode, scope):
    store, embedder = indexed
    lazy, whole = Retriever(store, embedder, candidates=30), Retriever(WholeChunks(store), embedder, candidates=30)
    assert lazy._completes and not whole._completes
    for query in QUERIES:
        hits = lazy.search(query, 10, mode, scope)
        assert hits and all(h.note and h.title for h in hits)
        assert _hit_rows(hits) == _hit_rows(whole.search(query, 10, mode, scope))


def test_chunks_moved_by_a_compaction_are_completed_from_their_keys(tmp_path):
    embedder = WordEmbedder()
    store = lance_store.LanceStore(tmp_path, "m", embedder.name, DIM)
    for batch in range(3):  # three writes, three fragments: deleting from the first makes compaction move rows
        notes, chunks = [], []
        for i in range(batch * 10, batch * 10 + 10):
            key, text = f"/v::n{i}.md", f"river stone {WORDS[i % len(WORDS)]}"
            notes.append(NoteRecord(key, "/v", f"n{i}.md", "h", f"Title {i}"))
            chunks.append(
                ChunkRecord(
                    key,
                    f"n{i}.md",
                    f"Title {i}",
                    f"Heading {i}",
                    text,
                    terms_string(text),
                    key,
                    0,
                    embedder.embed([text])[0],
                )
            )
        store.replace_notes(notes, chunks)
    store.finish()
    found = store.search_bm25("river", 30, complete=False)
    assert len(found) == 30 and all(c.note is None and c.row_id is not None for c in found)
    store.delete_notes([f"/v::n{i}.md" for i in range(0, 10, 2)])
    store.chunks.optimize()  # compaction rewrites the fragments: row ids now point elsewhere or nowhere
    after = store.chunks._table.take_row_ids([c.row_id for c in found]).select(["note_key"]).with_row_id()
    still = {r["_rowid"]: r["note_key"] for r in store._run(after).to_pylist()}
    assert sum(still.get(c.row_id) == c.note_key for c in found) < 25  # most rows moved
    store.complete_chunks(found)
    for c in found:
        i = int(c.note_key.removeprefix("/v::n").removesuffix(".md"))
        gone = i < 10 and i % 2 == 0
        assert (c.note, c.title, c.heading) == (("", "", "") if gone else (f"n{i}.md", f"Title {i}", f"Heading {i}"))
