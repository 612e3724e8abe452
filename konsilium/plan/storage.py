"""`konsilium plan storage`: bytes and RAM for N pages of notes.

Two disk figures, because LanceDB keeps old versions until a cleanup: `on_disk` is the index once old versions
are gone (the projection; konsilium's next index run removes versions older than five minutes), and
`on_disk_right_after_indexing` is what the folder holds when a full index run has just finished.
"""

from __future__ import annotations

from .architectures import PlanError

PAGE_CHARS = 2000
VECTOR_INDEX_MIN_ROWS = 20_000  # as konsilium.index.lance_store (a test keeps them equal): flat search below
# Documented defaults (measured on the sample vault with a 384-dim embedder, ~1,000-char chunks; the version
# overhead and the vector index by benchmarks/retrieval_scale.py: 9.2 kB vs 4.6 kB per chunk at 10k chunks,
# 8.6 vs 4.2 at 100k; an IVF_RQ index of 6.46 MB for 100k 384-dim chunks):
DEFAULTS = {
    "chunks_per_page": 2.0,  # ~1,000 characters per chunk with overlap
    "text_bytes_per_chunk": 1300,  # chunk text + note/title/heading columns (UTF-8, Cyrillic ~1.8 bytes/char)
    "terms_bytes_per_chunk": 700,  # stemmed terms column used by the full-text index
    "dim": 384,
    "fulltext_index_bytes_per_chunk": 600,
    "version_overhead": 2.0,  # folder right after a full index run / after cleanup
}


def vector_index_bytes_per_chunk(dim: int) -> float:
    """IVF_RQ keeps one bit per dimension plus a row id and partition bookkeeping (64.6 B at dim 384, 100k)."""
    return dim / 8 + 16


def storage_plan(pages: int, measured: dict | None = None) -> dict:
    if pages < 1:
        raise PlanError("--pages must be at least 1")
    src = dict(DEFAULTS)
    source = "defaults"
    disk_per_chunk = None  # measured from the index's files, latest version only
    if measured and measured.get("chunks"):
        chunks = measured["chunks"]
        b = measured["bytes"]
        pages_measured = max(measured.get("text_chars", 0) / PAGE_CHARS, 1e-9)
        src.update(
            {
                "chunks_per_page": chunks / pages_measured,
                "text_bytes_per_chunk": b["text"] / chunks,
                "terms_bytes_per_chunk": b["terms"] / chunks,
                "dim": measured["dim"],
                "fulltext_index_bytes_per_chunk": b.get("fulltext_index", 0) / chunks,
            }
        )
        if b.get("vector_index"):  # only an index past VECTOR_INDEX_MIN_ROWS has one to measure
            src["vector_index_bytes_per_chunk"] = b["vector_index"] / chunks
        disk = measured.get("disk") or {}
        if disk.get("current_version"):
            disk_per_chunk = (disk["current_version"] - b.get("vector_index", 0)) / chunks
            src["disk_bytes_per_chunk_without_vector_index"] = disk_per_chunk
            if disk.get("all_versions", 0) > 1.01 * disk["current_version"]:
                src["version_overhead"] = disk["all_versions"] / disk["current_version"]
        source = f"measured on this machine's index ({chunks} chunks, collection {measured.get('collection')})"
    src.setdefault("vector_index_bytes_per_chunk", vector_index_bytes_per_chunk(src["dim"]))
    chunks = pages * src["chunks_per_page"]
    text = chunks * src["text_bytes_per_chunk"]
    terms = chunks * src["terms_bytes_per_chunk"]
    vectors = chunks * src["dim"] * 4
    fts = chunks * src["fulltext_index_bytes_per_chunk"]
    has_vector_index = chunks >= VECTOR_INDEX_MIN_ROWS
    vindex = chunks * src["vector_index_bytes_per_chunk"] if has_vector_index else 0
    if disk_per_chunk is None:
        disk = text + terms + vectors + fts + vindex
        disk_note = "on_disk: the sum of the parts (documented defaults), after cleanup of old versions"
    else:
        disk = chunks * disk_per_chunk + vindex
        disk_note = (
            "on_disk: this index's files per chunk (latest version only), scaled; the parts are Arrow sizes before "
            "Lance encodes them, so they need not add up to it"
        )
    right_after = disk * src["version_overhead"]
    return {
        "pages": pages,
        "page_chars": PAGE_CHARS,
        "source": source,
        "assumptions": {k: round(v, 2) for k, v in src.items()},
        "chunks": round(chunks),
        "bytes": {
            "text": round(text),
            "terms": round(terms),
            "vectors": round(vectors),
            "fulltext_index": round(fts),
            "vector_index": round(vindex),
            "on_disk": round(disk),
            "on_disk_right_after_indexing": round(right_after),
        },
        "projected": "on_disk",
        "disk_note": (
            f"{disk_note}. Right after a full index run the folder holds ~{src['version_overhead']:.1f}x that "
            "(old versions kept five minutes; the next index run removes them)"
        ),
        "vector_index_note": (
            f"IVF_RQ index from {VECTOR_INDEX_MIN_ROWS:,} chunks"
            if has_vector_index
            else f"no vector index below {VECTOR_INDEX_MIN_ROWS:,} chunks: exact search"
        ),
        "ram_bytes_estimate": round(vectors + fts + vindex),
        "ram_note": "estimate: vectors plus indices held in memory for fast search; text is read from disk per hit",
    }
