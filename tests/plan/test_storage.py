"""Storage planning on a real (small) LanceDB index: the vector index's bytes come from its files, old versions
are accounted for (the figure right after indexing and the one after cleanup, which is what a cleanup leaves,
byte for byte), and the projection adds a vector index once the pages reach the row count that builds one."""

from __future__ import annotations

import shutil
from datetime import timedelta

import numpy as np
import pytest

from konsilium.index import lance_store
from konsilium.index.store import ChunkRecord, NoteRecord
from konsilium.plan.lance_files import TableBytes, index_kind, measured_index, store_bytes, table_bytes
from konsilium.plan.storage import VECTOR_INDEX_MIN_ROWS, storage_plan, vector_index_bytes_per_chunk

DIM = 128


def _add(store, start: int, count: int, rng) -> None:
    notes, chunks = [], []
    for i in range(start, start + count):
        vector = rng.standard_normal(DIM).astype(np.float32)
        vector /= np.linalg.norm(vector)
        text = f"заметка {i} о контексте и квантовании " * 8
        notes.append(NoteRecord(f"k{i}", "/v", f"n{i}.md", "h", f"n{i}"))
        chunks.append(ChunkRecord(f"k{i}", f"n{i}.md", f"n{i}", "", text, f"term{i} контекст", f"h{i}", 0, vector))
    store.replace_notes(notes, chunks)
    store.finish()


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    """An index with a vector index forced at 300 rows, re-indexed twice (so old versions pile up)."""
    folder = tmp_path_factory.mktemp("index")
    saved, lance_store.VECTOR_INDEX_MIN_ROWS = lance_store.VECTOR_INDEX_MIN_ROWS, 300
    try:
        store = lance_store.LanceStore(folder, "t", "test-embedder", DIM)
        rng = np.random.default_rng(0)
        _add(store, 0, 400, rng)
        _add(store, 100, 150, rng)  # notes edited: their chunks are deleted and written again
        store.delete_notes(["k5", "k6"])
    finally:
        lance_store.VECTOR_INDEX_MIN_ROWS = saved
    return store


def _folder_bytes(path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def test_the_vector_index_is_measured_from_its_files(indexed):
    assert "vector_idx" in {i.name for i in indexed.chunks.list_indices()}
    measured = store_bytes(indexed)
    chunks_dir = indexed.dir / "chunks__t.lance"
    current = [i.index_uuid for i in indexed.chunks.list_indices() if i.name == "vector_idx"]
    # At least the listed index's folder (a delta segment of the same index may add to it), never zero.
    assert measured["vector_index"] >= _folder_bytes(chunks_dir / "_indices" / current[0]) > 0
    assert measured["fulltext_index"] > 0
    assert measured["on_disk"] == _folder_bytes(chunks_dir) + _folder_bytes(indexed.dir / "notes__t.lance")


def test_latest_version_bytes_are_what_a_cleanup_leaves(indexed, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(indexed.dir, copy)  # clean up a copy: the module's index keeps its old versions
    store = lance_store.LanceStore(copy, "t", "test-embedder", DIM)
    before = store_bytes(store)
    assert before["old_versions"] > 0 and before["on_disk"] == before["on_disk_latest_version"] + before["old_versions"]
    versions = (store.chunks.version, store.notes_table.version)
    for table in (store.chunks, store.notes_table):
        table.optimize(cleanup_older_than=timedelta(0))
    assert (store.chunks.version, store.notes_table.version) == versions  # nothing left to compact
    after = _folder_bytes(copy / "chunks__t.lance") + _folder_bytes(copy / "notes__t.lance")
    assert after == before["on_disk_latest_version"]
    assert store_bytes(store)["old_versions"] == 0


def test_the_projection_says_which_figure_it_projects(indexed):
    measured = measured_index(indexed)
    chunks = measured["chunks"]
    result = storage_plan(1_000_000, measured)
    b = result["bytes"]
    assert result["projected"] == "on_disk" and result["source"].startswith("measured")
    assert b["vector_index"] == pytest.approx(result["chunks"] * measured["bytes"]["vector_index"] / chunks, rel=1e-6)
    overhead = measured["disk"]["all_versions"] / measured["disk"]["current_version"]
    assert result["assumptions"]["version_overhead"] == round(overhead, 2)
    assert b["on_disk_right_after_indexing"] == pytest.approx(b["on_disk"] * overhead, rel=1e-6)
    without_vindex = (measured["disk"]["current_version"] - measured["bytes"]["vector_index"]) / chunks
    assert b["on_disk"] == pytest.approx(result["chunks"] * without_vindex + b["vector_index"], rel=1e-6)
    assert "Right after a full index run" in result["disk_note"]


def test_a_small_index_without_a_vector_index_still_projects_one_for_many_pages():
    measured = {  # a vault below VECTOR_INDEX_MIN_ROWS: LanceDB searches it exactly, no index to measure
        "collection": "notes",
        "dim": 384,
        "chunks": 1000,
        "text_chars": 1_000_000,
        "bytes": {"text": 1_300_000, "terms": 700_000, "fulltext_index": 600_000, "vector_index": 0},
        "disk": {"all_versions": 9_000_000, "current_version": 4_500_000},
    }
    big = storage_plan(1_000_000, measured)
    assert big["chunks"] >= VECTOR_INDEX_MIN_ROWS
    assert big["bytes"]["vector_index"] == round(big["chunks"] * vector_index_bytes_per_chunk(384))
    assert big["bytes"]["on_disk_right_after_indexing"] == pytest.approx(2 * big["bytes"]["on_disk"], rel=1e-6)
    small = storage_plan(100, measured)
    assert small["chunks"] < VECTOR_INDEX_MIN_ROWS and small["bytes"]["vector_index"] == 0
    assert "exact search" in small["vector_index_note"]


def test_defaults_include_the_vector_index_and_the_version_overhead():
    result = storage_plan(1_000_000)
    b = result["bytes"]
    assert b["vector_index"] == round(2_000_000 * (384 / 8 + 16))  # 64 B per chunk; measured 64.6 at 100k
    parts = b["text"] + b["terms"] + b["vectors"] + b["fulltext_index"] + b["vector_index"]
    assert b["on_disk"] == pytest.approx(parts, abs=2)
    assert b["on_disk_right_after_indexing"] == pytest.approx(2 * b["on_disk"], abs=2)


def test_the_planner_threshold_is_the_indexers():
    assert VECTOR_INDEX_MIN_ROWS == lance_store.VECTOR_INDEX_MIN_ROWS


def test_index_kinds_and_tables_we_cannot_read(tmp_path):
    for files, kind in (
        (["auxiliary.idx", "index.idx"], "vector"),
        (["metadata.lance", "part_0_invert.lance"], "fulltext"),
        (["page_data.lance", "page_lookup.lance"], "scalar"),
    ):
        folder = tmp_path / kind
        folder.mkdir()
        for name in files:
            (folder / name).write_bytes(b"x")
        assert index_kind(folder) == kind
    odd = tmp_path / "odd.lance"
    odd.mkdir()
    (odd / "data.bin").write_bytes(b"x" * 10)
    assert table_bytes(odd, 3) == TableBytes(10, 10, {})  # no manifest: everything counts as current
