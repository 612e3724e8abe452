"""`konsilium plan storage`: bytes and RAM for N pages of notes."""

from __future__ import annotations

from .architectures import PlanError

PAGE_CHARS = 2000
# Documented defaults (measured on the sample vault with a 384-dim embedder, ~1,000-char chunks):
DEFAULTS = {
    "chunks_per_page": 2.0,  # ~1,000 characters per chunk with overlap
    "text_bytes_per_chunk": 1300,  # chunk text + note/title/heading columns (UTF-8, Cyrillic ~1.8 bytes/char)
    "terms_bytes_per_chunk": 700,  # stemmed terms column used by the full-text index
    "dim": 384,
    "fulltext_index_bytes_per_chunk": 600,
    "vector_index_bytes_per_chunk": 0,  # flat search below ~100k chunks; IVF-PQ adds ~dim/8 bytes
}


def storage_plan(pages: int, measured: dict | None = None) -> dict:
    if pages < 1:
        raise PlanError("--pages must be at least 1")
    src = dict(DEFAULTS)
    source = "defaults"
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
                "vector_index_bytes_per_chunk": b.get("vector_index", 0) / chunks,
            }
        )
        source = f"measured on this machine's index ({chunks} chunks, collection {measured.get('collection')})"
    chunks = pages * src["chunks_per_page"]
    text = chunks * src["text_bytes_per_chunk"]
    terms = chunks * src["terms_bytes_per_chunk"]
    vectors = chunks * src["dim"] * 4
    fts = chunks * src["fulltext_index_bytes_per_chunk"]
    vindex = chunks * src["vector_index_bytes_per_chunk"]
    disk = text + terms + vectors + fts + vindex
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
        },
        "ram_bytes_estimate": round(vectors + fts + vindex),
        "ram_note": "estimate: vectors plus indices held in memory for fast search; text is read from disk per hit",
    }
