"""The store protocol: what the indexer and retriever need from a chunk store (LanceDB now, Qdrant later)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from konsilium.errors import StoreError

from .scope import Scope

_COLLECTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def check_collection_name(collection: str) -> None:
    """Every store's collection names: they become table, folder or Qdrant collection names."""
    if not _COLLECTION_NAME.match(collection):
        raise StoreError(f"collection name {collection!r}: use 1-64 letters, digits, '_' or '-'")


@dataclass
class ChunkRecord:
    note_key: str  # "<vault id>/<note path>": unique across the vaults of one collection
    note: str  # note path relative to its vault root
    title: str
    heading: str
    text: str
    terms: str  # analyzed stems for BM25
    text_hash: str  # lets re-indexing reuse vectors of unchanged chunks
    ordinal: int
    vector: np.ndarray
    tags: list[str] = field(default_factory=list)  # the note's tags, so a scope filters before ranking


@dataclass
class NoteRecord:
    note_key: str
    vault: str  # absolute vault root
    note: str
    content_hash: str
    title: str
    aliases: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)  # link targets as written (normalized), resolved at query time
    chunks: int = 0


@dataclass
class StoredChunk:
    note_key: str
    note: str
    title: str
    heading: str
    text: str
    score: float
    ordinal: int = 0
    row_id: int | None = None  # set by a store that reads note/title/heading later (LanceStore.complete_chunks)


class ChunkStore(Protocol):
    def notes(self) -> dict[str, NoteRecord]: ...

    def vectors_by_hash(self, note_keys: list[str]) -> dict[str, np.ndarray]: ...

    def replace_notes(self, notes: list[NoteRecord], chunks: list[ChunkRecord]) -> None:
        """Atomically enough: a crash leaves each note either old or absent, and the next run completes it."""
        ...

    def delete_notes(self, note_keys: list[str]) -> None: ...

    def search_bm25(self, terms: str, limit: int, scope: Scope | None = None) -> list[StoredChunk]:
        """The best `limit` chunks within `scope`: filtered before ranking, so a narrow scope still fills it."""
        ...

    def search_dense(self, vector: np.ndarray, limit: int, scope: Scope | None = None) -> list[StoredChunk]: ...

    # Optional: a store whose searches take `complete=False` (chunks without note/title/heading, cheaper to read)
    # also has `complete_chunks(chunks)` to fill them; the Retriever then completes only the hits it returns.

    def finish(self) -> None:
        """Compact and bring indices up to date after a batch of writes."""
        ...

    def stats(self) -> dict: ...

    # -- what the web UI shows of an index (server/serving_ui.py) ------------------------------------------------
    def count_notes(self) -> int: ...

    def count_chunks(self) -> int: ...

    def vaults(self) -> list[str]:
        """The vault roots the collection's notes were indexed from, sorted."""
        ...

    def find_note(self, note: str) -> NoteRecord | None:
        """The manifest record of a note by its vault-relative path (the first vault's, if several hold it)."""
        ...

    def resolve_link(self, link: str) -> list[NoteRecord]:
        """The notes an Obsidian link target names, best first (index/link_targets.py): path, file name, title,
        alias. Records come without their `links` (not read)."""
        ...

    def note_chunks(self, note_key: str) -> list[StoredChunk]:
        """A note's passages in their order in the note (score 0)."""
        ...

    def last_changed(self) -> float | None:
        """When the collection's index was last written (a Unix time; None: never, or not known)."""
        ...
