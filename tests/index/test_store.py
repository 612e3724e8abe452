"""LanceStore on real files: the vector index appears past its threshold and is rebuilt as the table grows."""

from __future__ import annotations

import numpy as np

from konsilium.index import lance_store
from konsilium.index.store import ChunkRecord, NoteRecord

# Real embedders give 384-512 dims; RaBitQ keeps one bit per dimension, so 16-dim test vectors would make the
# quantized candidate list too coarse to promise an exact match (and flaky across k-means seeds).
DIM = 128


def _add(store, start: int, count: int, rng) -> np.ndarray:
    notes, chunks, vectors = [], [], []
    for i in range(start, start + count):
        vector = rng.standard_normal(DIM).astype(np.float32)
        vector /= np.linalg.norm(vector)
        vectors.append(vector)
        notes.append(NoteRecord(f"k{i}", "/v", f"n{i}.md", "h", f"n{i}"))
        chunks.append(ChunkRecord(f"k{i}", f"n{i}.md", f"n{i}", "", f"text {i}", f"term{i}", f"h{i}", 0, vector))
    store.replace_notes(notes, chunks)
    store.finish()
    return np.stack(vectors)


def test_vector_index_is_built_past_the_threshold_and_rebuilt_after_4x_growth(tmp_path, monkeypatch):
    monkeypatch.setattr(lance_store, "VECTOR_INDEX_MIN_ROWS", 300)
    rng = np.random.default_rng(0)
    store = lance_store.LanceStore(tmp_path, "t", "test-embedder", DIM)
    _add(store, 0, 200, rng)
    assert "vector_idx" not in {i.name for i in store.chunks.list_indices()}
    _add(store, 200, 200, rng)
    assert "vector_idx" in {i.name for i in store.chunks.list_indices()}
    assert store._meta()["vector_index_rows"] == 400
    _add(store, 400, 400, rng)
    assert store._meta()["vector_index_rows"] == 400  # 2x growth: new rows join the existing partitions
    vectors = _add(store, 800, 1000, rng)
    assert store._meta()["vector_index_rows"] == 1800
    # The indexed search still finds an exact copy of a stored vector first.
    for row in (7, 250, 999):
        hits = store.search_dense(vectors[row], 3)
        assert hits[0].note == f"n{800 + row}.md" and abs(hits[0].score - 1.0) < 1e-3


def test_notes_with_quotes_in_their_paths_are_replaced_and_deleted(tmp_path):
    rng = np.random.default_rng(1)
    store = lance_store.LanceStore(tmp_path, "q", "test-embedder", 16)
    vector = rng.standard_normal(16).astype(np.float32)
    key = '/v::it\'s a "note".md'
    for _ in range(2):  # writing twice must replace, not duplicate
        store.replace_notes(
            [NoteRecord(key, "/v", "it's.md", "h", "it's")],
            [ChunkRecord(key, "it's.md", "it's", "", "text", "text", "h", 0, vector)],
        )
    assert store.chunks.count_rows() == 1
    store.delete_notes([key])
    assert store.chunks.count_rows() == 0 and store.notes() == {}
