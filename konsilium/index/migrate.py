"""`konsilium index migrate`: copy a collection between LanceDB and Qdrant with its vectors (no re-embedding).

The copy is written as a rebuild of the target (a new generation that replaces what the target held only when
complete), so an interrupted migration leaves the target as it was.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable

from ..config import Home
from ..errors import IndexError_
from .indexer import STORES, index_lock, qdrant_client, stored_meta

NOTES_PER_BATCH = 200


def _open(home: Home, kind: str, collection: str, meta: dict, rebuild: bool):
    args = (collection, meta["embedder"], meta["dim"])
    if kind == "qdrant":
        from .qdrant_store import QdrantStore

        return QdrantStore(qdrant_client(home), *args, model=meta.get("model"), rebuild=rebuild)
    from .lance_store import LanceStore

    return LanceStore(home.index_dir, *args, model=meta.get("model"), rebuild=rebuild)


def migrate(
    home: Home, to: str, collection: str | None = None, progress: Callable[[int, int, str], None] | None = None
) -> dict:
    """Copy `collection` (default: the configured one) from the other store into `to`; returns counts."""
    if to not in STORES:
        raise IndexError_(f"--to {to!r}: use {' or '.join(STORES)}")
    source_kind = next(kind for kind in STORES if kind != to)
    name = collection or home.config.index.collection
    meta = stored_meta(home, name, source_kind)
    if not meta.get("embedder"):
        raise IndexError_(f"collection {name!r} has no {source_kind} index to migrate: run `konsilium index` first")
    started = time.perf_counter()
    with index_lock(home.index_dir):
        source = _open(home, source_kind, name, meta, rebuild=False)
        target = _open(home, to, name, meta, rebuild=True)
        notes = source.notes()
        chunks = defaultdict(list)
        total = source.count_chunks()
        for done, chunk in enumerate(source.all_chunks()):
            chunks[chunk.note_key].append(chunk)
            if progress and done % 500 == 0:
                progress(done, total * 2, "reading")
        keys = list(notes)
        copied = 0
        for start in range(0, len(keys), NOTES_PER_BATCH):
            part = keys[start : start + NOTES_PER_BATCH]
            batch = [c for key in part for c in sorted(chunks.get(key, []), key=lambda c: c.ordinal)]
            target.replace_notes([notes[key] for key in part], batch)
            copied += len(batch)
            if progress:
                progress(total + copied, total * 2, "writing")
        target.finish()
        stats = target.stats()
    if progress:
        progress(total * 2, total * 2, "")
    return {
        "collection": name,
        "from": source_kind,
        "to": to,
        "notes": stats["notes"],
        "chunks": stats["chunks"],
        "source_notes": len(notes),
        "source_chunks": total,
        "seconds": round(time.perf_counter() - started, 3),
    }
