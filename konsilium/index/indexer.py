"""Incremental indexing: walk the vaults, hash every note, re-chunk and re-embed only what changed.

A run plans first (added / updated / deleted / unchanged by content hash), then writes in batches; each
batch is committed, so an interrupted run keeps what it finished and the next run completes the rest.
"""

from __future__ import annotations

import fcntl
import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Home
from ..errors import IndexError_
from ..vault.chunker import chunk_note
from ..vault.model import Note
from ..vault.walker import Skipped, iter_vault_files, read_note
from .embedder import AUTO_MODEL, DEFAULT_MODEL, Embedder, choose_for_text, make_embedder
from .lance_store import LanceStore
from .store import ChunkRecord, NoteRecord
from .text import cyrillic_share, terms_string

# Bump when chunking or analysis changes, so stored notes are re-chunked on the next run.
PIPELINE_VERSION = "2"

Progress = Callable[[int, int, str], None]  # (done, total, current path)


@dataclass
class IndexReport:
    notes: int = 0
    chunks: int = 0
    added: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    skipped: list[dict] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)
    embedded_chunks: int = 0
    reused_vectors: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict:
        return dict(self.__dict__)


def note_key(vault: Path, rel: str) -> str:
    return f"{vault.as_posix()}::{rel}"


def normalize_link(target: str) -> str:
    """Obsidian resolves links case-insensitively by name or path, with or without `.md`."""
    target = target.strip().replace("\\", "/").lower()
    return target[:-3] if target.endswith(".md") else target


def embedding_input(title: str, heading: str, text: str) -> str:
    head = f"{title} — {heading}" if heading else title
    return f"{head}\n{text}"


@contextmanager
def index_lock(index_dir: Path) -> Iterator[None]:
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise IndexError_(f"another `konsilium index` is writing to {index_dir}; try again when it ends") from exc
        yield


def vault_cyrillic_share(roots: list[Path], sample: int = 300, head_bytes: int = 4096) -> float:
    """Share of Cyrillic letters in the beginnings of up to `sample` notes spread over the whole vault: enough to
    tell its language. Spread, because notes come sorted and an imported export fills whole folders."""
    files = [Path(root).expanduser() / rel for root in roots for rel in iter_vault_files(Path(root).expanduser())]
    step = max(1, len(files) / sample)
    cyrillic = letters = 0
    for path in (files[int(i * step)] for i in range(min(sample, len(files)))):
        try:
            with open(path, "rb") as handle:
                text = handle.read(head_bytes).decode("utf-8", errors="ignore")
        except OSError:
            continue
        count = sum(1 for ch in text if ch.isalpha())
        cyrillic += cyrillic_share(text) * count
        letters += count
    return cyrillic / letters if letters else 0.0


STORES = ("lance", "qdrant")


def store_kind(home: Home, store: str | None = None) -> str:
    kind = store or home.config.index.store
    if kind not in STORES:
        raise IndexError_(f"store {kind!r}: use {' or '.join(STORES)}")
    return kind


def qdrant_client(home: Home):
    """The configured Qdrant server, or the embedded one under the home (one client per process)."""
    from .qdrant_store import client_for

    return client_for(home.config.index.qdrant_url, home.root / "qdrant")


def stored_meta(home: Home, collection: str, store: str | None = None) -> dict:
    """What the collection's store records about it (embedder, dim, model); empty before the first index."""
    if store_kind(home, store) == "qdrant":
        from .qdrant_store import read_meta

        return read_meta(qdrant_client(home), collection)
    from .lance_store import stored_meta as lance_meta

    return lance_meta(home.index_dir, collection)


def list_collections(home: Home) -> list[str]:
    """The collections indexed in the configured store."""
    if store_kind(home) == "qdrant":
        from .qdrant_store import list_collections as qdrant_collections

        return qdrant_collections(qdrant_client(home))
    from .lance_store import list_collections as lance_collections

    return lance_collections(home.index_dir)


def generation(home: Home, collection: str) -> tuple:
    """What a reader must reopen on when it changes (a rebuild swapped in, another embedder)."""
    if store_kind(home) == "qdrant":
        meta = stored_meta(home, collection)
        return "qdrant", meta.get("tables", ""), meta.get("embedder"), meta.get("dim"), meta.get("model")
    from .lance_store import generation as lance_generation

    return lance_generation(home.index_dir, collection)


def resolve_model(
    home: Home, collection: str, roots: list[Path] | None = None, rebuild: bool = False, store: str | None = None
) -> str:
    """The embedder model for a collection: as configured, or for `auto` the one it was built with (unless it is
    being rebuilt), or the one that suits the vaults' language."""
    model = home.config.embedder.model
    if model != AUTO_MODEL:
        return model
    built = None if rebuild else stored_meta(home, collection, store).get("model")
    if built:
        return built
    return choose_for_text(vault_cyrillic_share(roots)) if roots else DEFAULT_MODEL


def open_store(
    home: Home,
    collection: str | None = None,
    embedder: Embedder | None = None,
    roots: list[Path] | None = None,
    rebuild: bool = False,
    store: str | None = None,
):
    """The collection's store (`store`, default `index.store`) and embedder; with `rebuild`, a new generation that
    replaces the live one when the run finishes (readers never lose the tables they have open)."""
    name = collection or home.config.index.collection
    kind = store_kind(home, store)
    model = resolve_model(home, name, roots, rebuild, kind)
    embedder = embedder or make_embedder(home.config, model)
    built = {} if rebuild else stored_meta(home, name, kind)
    # The stored size when it is the same embedder: asking the embedder loads its model (seconds), which a BM25
    # search or `stats` never needs.
    dim = built["dim"] if built.get("embedder") == embedder.name and built.get("dim") else embedder.dim
    if kind == "qdrant":
        from .qdrant_store import QdrantStore

        return QdrantStore(qdrant_client(home), name, embedder.name, dim, model=model, rebuild=rebuild), embedder
    return LanceStore(home.index_dir, name, embedder.name, dim, model=model, rebuild=rebuild), embedder


class Indexer:
    def __init__(
        self,
        home: Home,
        collection: str | None = None,
        embedder: Embedder | None = None,
        roots: list[Path] | None = None,
        rebuild: bool = False,
        store: str | None = None,
    ):
        self.home = home
        # `roots` only matter for `embedder.model: auto` on a new collection: they decide its language.
        self.store, self.embedder = open_store(home, collection, embedder, roots, rebuild, store)
        index = home.config.index
        self.fingerprint = "|".join([PIPELINE_VERSION, str(index.chunk_chars), str(index.chunk_overlap)])

    def _hash(self, data: bytes) -> str:
        return hashlib.sha256(self.fingerprint.encode() + b"\0" + data).hexdigest()

    def run(self, roots: list[Path], progress: Progress | None = None) -> IndexReport:
        started = time.perf_counter()
        vaults = []
        for root in roots:
            path = Path(root).expanduser()
            if not path.is_dir():
                raise IndexError_(f"{root}: not a directory (give the vault folder)")
            vaults.append(path.resolve())
        report = IndexReport()
        with index_lock(self.home.index_dir):
            self.store.follow()  # a rebuild may have swapped in a new generation since this store was opened
            known = self.store.notes()
            seen, todo = self._plan(vaults, known, report)
            vault_names = {v.as_posix() for v in vaults}
            gone = [k for k, rec in known.items() if rec.vault in vault_names and k not in seen]
            reusable = self.store.vectors_by_hash([t[0] for t in todo if t[0] in known] + gone)
            self._write(todo, known, reusable, report, progress)
            self.store.delete_notes(gone)
            report.deleted = len(gone)
            self.store.finish()
            stats = self.store.stats()
        report.notes, report.chunks = stats["notes"], stats["chunks"]
        report.seconds = round(time.perf_counter() - started, 3)
        return report

    def _plan(self, vaults, known, report):
        """Hash every file; return the keys seen and the (key, vault, rel, hash) list to (re)index."""
        seen: set[str] = set()
        todo: list[tuple[str, Path, str]] = []
        vault_settings = self.home.config.vault
        include, exclude, limit = vault_settings.include, vault_settings.exclude, vault_settings.max_file_bytes
        for vault in vaults:
            walk_skips: list[Skipped] = []  # symlinks leaving the vault, FIFOs, unreadable folders: with reasons
            for rel in iter_vault_files(vault, include, exclude, walk_skips):
                key = note_key(vault, rel)
                try:
                    path = vault / rel
                    if path.stat().st_size > limit:
                        # read_note reports the reason; keep the key out of `seen` so a stale copy is removed.
                        todo.append((key, vault, rel, None))
                        continue
                    digest = self._hash(path.read_bytes())
                except OSError:
                    todo.append((key, vault, rel, None))  # read_note turns this into a skip with its reason
                    continue
                seen.add(key)
                record = known.get(key)
                if record is not None and record.content_hash == digest:
                    report.unchanged += 1
                else:
                    todo.append((key, vault, rel, digest))
            report.skipped.extend({"path": skip.path, "reason": skip.reason} for skip in walk_skips)
        return seen, todo

    def _write(self, todo, known, reusable, report, progress) -> None:
        notes: list[NoteRecord] = []
        chunks: list[ChunkRecord] = []
        pending_texts: list[tuple[ChunkRecord, str]] = []
        limit = self.home.config.vault.max_file_bytes

        def flush() -> None:
            texts = [t for _, t in pending_texts]
            if texts:
                vectors = self.embedder.embed(texts)
                for (record, _), vector in zip(pending_texts, vectors, strict=True):
                    record.vector = vector
                report.embedded_chunks += len(texts)
            self.store.replace_notes(notes, chunks)
            notes.clear()
            chunks.clear()
            pending_texts.clear()

        for done, (key, vault, rel, digest) in enumerate(todo):
            if progress:
                progress(done, len(todo), rel)
            parsed = read_note(vault, rel, max_bytes=limit)
            if isinstance(parsed, Skipped):
                report.skipped.append({"path": rel, "reason": parsed.reason})
                continue
            if digest is None:  # it could not be hashed during planning but can be read now
                try:
                    digest = self._hash((vault / rel).read_bytes())
                except OSError as exc:
                    report.skipped.append({"path": rel, "reason": f"unreadable: {exc.strerror or exc}"})
                    continue
            for warning in parsed.warnings:
                report.warnings.append({"path": rel, "warning": warning})
            record, note_chunks = self._records(key, vault, parsed, digest)
            for chunk in note_chunks:
                vector = reusable.get(chunk.text_hash)
                if vector is None:
                    pending_texts.append((chunk, embedding_input(chunk.title, chunk.heading, chunk.text)))
                else:
                    chunk.vector = vector
                    report.reused_vectors += 1
            notes.append(record)
            chunks.extend(note_chunks)
            if key in known:
                report.updated += 1
            else:
                report.added += 1
            if len(pending_texts) >= self.home.config.index.commit_chunks or len(notes) >= 200:
                flush()
        flush()
        if progress:
            progress(len(todo), len(todo), "")

    def _records(self, key: str, vault: Path, note: Note, digest: str):
        pieces = chunk_note(note, self.home.config.index.chunk_chars, self.home.config.index.chunk_overlap)
        records = []
        for piece in pieces:
            embed_text = embedding_input(piece.title, piece.heading, piece.text)
            records.append(
                ChunkRecord(
                    note_key=key,
                    note=piece.note,
                    title=piece.title,
                    heading=piece.heading,
                    text=piece.text,
                    terms=terms_string(f"{piece.title}\n{piece.heading}\n{piece.text}"),
                    text_hash=hashlib.sha1(embed_text.encode("utf-8")).hexdigest(),
                    ordinal=piece.ordinal,
                    vector=None,  # filled from `reusable` or by the embedder in flush()
                    tags=list(note.tags),  # stored per chunk: a role's tag scope filters before ranking
                )
            )
        note_record = NoteRecord(
            note_key=key,
            vault=vault.as_posix(),
            note=note.path,
            content_hash=digest,
            title=note.title,
            aliases=[str(a) for a in note.aliases],
            links=sorted({normalize_link(link.target) for link in note.links if link.target}),
            chunks=len(records),
        )
        return note_record, records
