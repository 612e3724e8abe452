"""The Qdrant store: the same ChunkStore protocol as LanceStore, embedded (`QdrantClient(path=...)`) or on a
Qdrant server/cluster by URL (`index.qdrant_url`).

Two Qdrant collections per konsilium collection, `<name>__chunks` and `<name>__notes`, rather than one shared
collection with a payload field: each konsilium collection has its own embedder (vector size) and, above all,
its own BM25 statistics. Qdrant computes IDF over a whole Qdrant collection, so sharing one would let another
vault's words change this one's ranking. A third collection, `konsilium_meta`, holds one point per konsilium
collection: embedder, dim, model, the live generation and the average chunk length BM25 was computed with.

BM25 is ours, as with LanceDB: the stems from index/text.py (Russian and English Snowball), hashed into sparse
indices. A chunk stores BM25's term-frequency part, tf·(k1+1)/(tf + k1·(1-b+b·dl/avgdl)), and Qdrant's IDF
modifier multiplies in ln(1 + (N-n+0.5)/(n+0.5)) at query time: the formula LanceDB's full-text index uses, so
the fused ranking (retrieval.py, shared by both stores) comes out the same. avgdl is fixed when written; `finish`
rewrites the sparse vectors when the real average has drifted by more than AVGDL_DRIFT.

Folder and tag scopes are payload filters: each chunk lists its note's folders and tags with their ancestors
(`a`, `a/b`; `sport`, `sport/running`), so a scope is one MatchAny per part, applied before ranking.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import time
import uuid
from collections import Counter
from pathlib import Path

import numpy as np

from konsilium.errors import StoreError

from .scope import Scope, normalize_tag
from .store import ChunkRecord, NoteRecord, StoredChunk, check_collection_name

try:
    from qdrant_client import QdrantClient
    from qdrant_client import models as qm
except ImportError as exc:  # pragma: no cover - the extra is not installed
    raise StoreError("the Qdrant store needs qdrant-client: pip install 'konsilium[qdrant]'") from exc

K1, B = 1.2, 0.75  # BM25's constants, as LanceDB's full-text index uses them
MAX_TOKEN_BYTES = 64  # LanceStore's full-text index is built with max_token_length=64
AVGDL_DRIFT = 0.05
META = "konsilium_meta"
_NS = uuid.UUID("6f1d3c52-8a43-4f7e-9a55-2f0b7d1c9e10")
_BATCH = 256
_CLIENTS: dict[str, QdrantClient] = {}  # embedded storage admits one client per folder: share it in a process


def client_for(url: str | None, path: Path | None = None) -> QdrantClient:
    """A client of the server at `url` (its key from $QDRANT_API_KEY), or of the embedded storage at `path`."""
    key = url or str(Path(path).resolve())
    if key not in _CLIENTS:
        if url:
            _CLIENTS[key] = QdrantClient(url=url, api_key=os.environ.get("QDRANT_API_KEY") or None)
        else:
            Path(path).mkdir(parents=True, exist_ok=True)
            try:
                _CLIENTS[key] = QdrantClient(path=str(path))
            except RuntimeError as exc:  # the folder is locked by another process
                raise StoreError(
                    f"embedded Qdrant at {path} is open in another process (a running `konsilium serve`?); "
                    "embedded Qdrant admits one process: stop it, or run a Qdrant server and set index.qdrant_url"
                ) from exc
    return _CLIENTS[key]


@atexit.register  # before the interpreter tears down the modules an embedded client's close needs
def close_clients() -> None:
    for client in _CLIENTS.values():
        client.close()
    _CLIENTS.clear()


def _embedded(client: QdrantClient) -> bool:
    # The client exposes no public flag; embedded mode warns on (and ignores) payload indexes.
    return type(client._client).__name__ == "QdrantLocal"


def term_id(term: str) -> int:
    """A stable sparse index for a stem (32 bits: a rare collision only merges two words' statistics)."""
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest(), "little")


def _tokens(terms: str) -> list[str]:
    """As LanceStore's full-text index sees them: it drops tokens over MAX_TOKEN_BYTES (URLs, hashes), and they
    count for neither matching nor a chunk's length."""
    return [t for t in terms.split() if len(t.encode("utf-8")) <= MAX_TOKEN_BYTES]


def doc_sparse(terms: str, avgdl: float) -> qm.SparseVector:
    counts = Counter(_tokens(terms))
    length = sum(counts.values())
    norm = K1 * (1 - B + B * length / max(avgdl, 1e-9))
    merged: dict[int, float] = {}
    for term, tf in counts.items():
        index = term_id(term)
        merged[index] = merged.get(index, 0.0) + tf * (K1 + 1) / (tf + norm)
    return qm.SparseVector(indices=list(merged), values=list(merged.values()))


def query_sparse(terms: str) -> qm.SparseVector:
    merged: dict[int, float] = {}
    for term, count in Counter(_tokens(terms)).items():  # a repeated query word counts each time, as in LanceDB
        merged[term_id(term)] = merged.get(term_id(term), 0.0) + count
    return qm.SparseVector(indices=list(merged), values=list(merged.values()))


def _ancestors(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _tag_ancestors(tags: list[str]) -> list[str]:
    found: set[str] = set()
    for tag in tags:
        name = normalize_tag(tag)
        if name:
            found.update(_ancestors(name + "/x"))
    return sorted(found)


def scope_filter(scope: Scope | None) -> qm.Filter | None:
    if scope is None:
        return None
    must = []
    if scope.folders:
        must.append(qm.FieldCondition(key="folders", match=qm.MatchAny(any=list(scope.folders))))
    if scope.tags:
        must.append(qm.FieldCondition(key="tags", match=qm.MatchAny(any=list(scope.tags))))
    return qm.Filter(must=must) if must else None


def _keys_filter(keys: list[str]) -> qm.Filter:
    return qm.Filter(must=[qm.FieldCondition(key="note_key", match=qm.MatchAny(any=keys))])


def _point_id(*parts) -> str:
    return str(uuid.uuid5(_NS, "\0".join(str(p) for p in parts)))


def read_meta(client: QdrantClient, collection: str) -> dict:
    if not client.collection_exists(META):
        return {}
    found = client.retrieve(META, [_point_id(collection)], with_payload=True)
    return dict(found[0].payload) if found else {}


def list_collections(client: QdrantClient) -> list[str]:
    if not client.collection_exists(META):
        return []
    points, _ = client.scroll(META, limit=10_000, with_payload=["collection"])
    return sorted(p.payload["collection"] for p in points)


class QdrantStore:
    def __init__(
        self,
        client: QdrantClient,
        collection: str,
        embedder_name: str,
        dim: int,
        model: str | None = None,
        rebuild: bool = False,
    ):
        """With `rebuild`, writes go to new, empty Qdrant collections that replace the live ones at `finish()`."""
        check_collection_name(collection)
        self.client = client
        self.collection = collection
        self.embedder_name = embedder_name
        self.dim = dim
        self.model = model
        self._rebuilding = rebuild
        meta = {} if rebuild else read_meta(client, collection)
        if meta and (meta.get("embedder"), meta.get("dim")) != (embedder_name, dim):
            raise StoreError(
                f"collection {collection!r} was built with embedder {meta.get('embedder')} (dim {meta.get('dim')}), "
                f"the config now asks for {embedder_name} (dim {dim}); re-index with --rebuild"
            )
        self._meta = meta or {"embedder": embedder_name, "dim": dim, "model": model, "avgdl": 0.0}
        self.suffix = f"__r{time.time_ns()}" if rebuild else meta.get("tables", "")
        self._open()

    def _open(self) -> None:
        self.chunks_name = f"{self.collection}__chunks{self.suffix}"
        self.notes_name = f"{self.collection}__notes{self.suffix}"
        if not self.client.collection_exists(self.chunks_name):
            self.client.create_collection(
                self.chunks_name,
                vectors_config={"dense": qm.VectorParams(size=self.dim, distance=qm.Distance.DOT)},
                sparse_vectors_config={"bm25": qm.SparseVectorParams(modifier=qm.Modifier.IDF)},
            )
            if not _embedded(self.client):  # a server filters and deletes by these; embedded Qdrant scans
                for field in ("note_key", "folders", "tags"):
                    self.client.create_payload_index(self.chunks_name, field, qm.PayloadSchemaType.KEYWORD)
        if not self.client.collection_exists(self.notes_name):
            self.client.create_collection(self.notes_name, vectors_config={})

    def follow(self) -> bool:
        """Move to the live collections if a rebuild replaced ours."""
        if self._rebuilding:
            return False
        live = read_meta(self.client, self.collection)
        if not live or live.get("tables", "") == self.suffix:
            return False
        self._meta, self.suffix = live, live.get("tables", "")
        self._open()
        return True

    def _write_meta(self) -> None:
        if self._rebuilding:
            return  # the rebuild's meta is written when it swaps in
        if not self.client.collection_exists(META):
            self.client.create_collection(META, vectors_config={})
        payload = {**self._meta, "collection": self.collection, "tables": self.suffix, "changed": time.time()}
        self.client.upsert(META, [qm.PointStruct(id=_point_id(self.collection), vector={}, payload=payload)])

    # -- writes ---------------------------------------------------------------------------------------------
    def notes(self) -> dict[str, NoteRecord]:
        return {p.payload["note_key"]: NoteRecord(**p.payload) for p in self._scroll_notes(None, True)}

    def _scroll_notes(self, flt: qm.Filter | None, payload):
        offset = None
        while True:
            points, offset = self.client.scroll(
                self.notes_name, scroll_filter=flt, limit=1000, offset=offset, with_payload=payload
            )
            yield from points
            if offset is None:
                return

    def _scroll_chunks(self, flt: qm.Filter | None, payload, vectors: bool = False):
        offset = None
        while True:
            points, offset = self.client.scroll(
                self.chunks_name,
                scroll_filter=flt,
                limit=1000,
                offset=offset,
                with_payload=payload,
                with_vectors=["dense"] if vectors else False,
            )
            yield from points
            if offset is None:
                return

    def vectors_by_hash(self, note_keys: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(note_keys), 500):
            for p in self._scroll_chunks(_keys_filter(note_keys[start : start + 500]), ["text_hash"], True):
                found[p.payload["text_hash"]] = np.asarray(p.vector["dense"], dtype=np.float32)
        return found

    def replace_notes(self, notes: list[NoteRecord], chunks: list[ChunkRecord]) -> None:
        keys = [n.note_key for n in notes]
        if not keys:
            return
        if not self._meta.get("avgdl") and chunks:  # the first batch sets it; finish() corrects a drift
            self._meta["avgdl"] = float(np.mean([len(_tokens(c.terms)) for c in chunks])) or 1.0
        self._write_meta()
        # As in LanceStore, the manifest (notes) is written last: a half-written note still looks changed.
        self._delete_chunks(keys)
        self._count_lengths(sum(len(_tokens(c.terms)) for c in chunks), len(chunks))
        for start in range(0, len(chunks), _BATCH):
            points = [self._chunk_point(c) for c in chunks[start : start + _BATCH]]
            self.client.upsert(self.chunks_name, points)
        note_points = [qm.PointStruct(id=_point_id(n.note_key), vector={}, payload=dict(n.__dict__)) for n in notes]
        self.client.upsert(self.notes_name, note_points)
        self._write_meta()

    def _count_lengths(self, terms: int, chunks: int) -> None:
        """The running total of chunk lengths, so finish() knows the average without reading every chunk."""
        self._meta["dl_total"] = self._meta.get("dl_total", 0) + terms
        self._meta["dl_chunks"] = self._meta.get("dl_chunks", 0) + chunks

    def _delete_chunks(self, keys: list[str]) -> None:
        old = list(self._scroll_chunks(_keys_filter(keys), ["dl"]))
        self._count_lengths(-sum(p.payload.get("dl", 0) for p in old), -len(old))
        self.client.delete(self.chunks_name, qm.FilterSelector(filter=_keys_filter(keys)))

    def _chunk_point(self, c: ChunkRecord) -> qm.PointStruct:
        payload = {
            name: getattr(c, name)
            for name in ("note_key", "note", "title", "heading", "text", "terms", "text_hash", "ordinal")
        }
        payload.update(
            folders=_ancestors(c.note), tags=_tag_ancestors(c.tags), tag_names=list(c.tags), dl=len(_tokens(c.terms))
        )
        vector = {
            "dense": np.asarray(c.vector, dtype=np.float32).tolist(),
            "bm25": doc_sparse(c.terms, self._meta["avgdl"]),
        }
        return qm.PointStruct(id=_point_id(c.note_key, c.ordinal), vector=vector, payload=payload)

    def delete_notes(self, note_keys: list[str]) -> None:
        for start in range(0, len(note_keys), 500):
            part = note_keys[start : start + 500]
            self.client.delete(self.notes_name, qm.FilterSelector(filter=_keys_filter(part)))
            self._delete_chunks(part)
        if note_keys:
            self._write_meta()

    def finish(self) -> None:
        self._refresh_avgdl()
        if self._rebuilding:
            old = read_meta(self.client, self.collection)
            self._rebuilding = False
            self._write_meta()
            if old and old.get("tables", "") != self.suffix:
                for name in (f"{self.collection}__chunks{old['tables']}", f"{self.collection}__notes{old['tables']}"):
                    if self.client.collection_exists(name):
                        self.client.delete_collection(name)
        elif not read_meta(self.client, self.collection) and self.client.count(self.notes_name).count:
            self._write_meta()

    def _refresh_avgdl(self) -> None:
        """Rewrite the stored BM25 weights when the average chunk length has moved (the first index, a vault that
        grew): the weights are relative to it."""
        count = self.count_chunks()
        if not count:
            return
        if self._meta.get("dl_chunks") != count:  # a run was killed between its writes: count again
            lengths = [len(_tokens(p.payload["terms"])) for p in self._scroll_chunks(None, ["terms"])]
            self._meta.update(dl_total=sum(lengths), dl_chunks=len(lengths))
            self._write_meta()
        real = self._meta["dl_total"] / self._meta["dl_chunks"]
        if abs(real - self._meta.get("avgdl", 0.0)) <= AVGDL_DRIFT * real:
            return
        self._meta["avgdl"] = real
        batch: list[qm.PointVectors] = []
        for p in self._scroll_chunks(None, ["terms"]):
            batch.append(qm.PointVectors(id=p.id, vector={"bm25": doc_sparse(p.payload["terms"], real)}))
            if len(batch) >= _BATCH:
                self.client.update_vectors(self.chunks_name, batch)
                batch = []
        if batch:
            self.client.update_vectors(self.chunks_name, batch)
        self._write_meta()

    # -- reads ----------------------------------------------------------------------------------------------
    @staticmethod
    def _hits(points) -> list[StoredChunk]:
        return [
            StoredChunk(
                p.payload["note_key"],
                p.payload["note"],
                p.payload["title"],
                p.payload["heading"],
                p.payload["text"],
                float(p.score),
                p.payload["ordinal"],
            )
            for p in points
        ]

    _SHOWN = ["note_key", "note", "title", "heading", "text", "ordinal"]

    def search_bm25(self, terms: str, limit: int, scope: Scope | None = None) -> list[StoredChunk]:
        if not terms.strip():
            return []
        found = self.client.query_points(
            self.chunks_name,
            query=query_sparse(terms),
            using="bm25",
            query_filter=scope_filter(scope),
            limit=limit,
            with_payload=self._SHOWN,
        )
        return self._hits(found.points)

    def search_dense(self, vector: np.ndarray, limit: int, scope: Scope | None = None) -> list[StoredChunk]:
        found = self.client.query_points(
            self.chunks_name,
            query=np.asarray(vector, dtype=np.float32).tolist(),
            using="dense",
            query_filter=scope_filter(scope),
            limit=limit,
            with_payload=self._SHOWN,
        )
        return self._hits(found.points)  # DOT on unit vectors: the cosine, as LanceStore reports it

    def count_chunks(self) -> int:
        return self.client.count(self.chunks_name).count

    def count_notes(self) -> int:
        return self.client.count(self.notes_name).count

    def vaults(self) -> list[str]:
        return sorted({p.payload["vault"] for p in self._scroll_notes(None, ["vault"])})

    def find_note(self, note: str) -> NoteRecord | None:
        match = qm.Filter(must=[qm.FieldCondition(key="note", match=qm.MatchValue(value=note))])
        found = sorted((p.payload for p in self._scroll_notes(match, True)), key=lambda d: d["vault"])
        return NoteRecord(**found[0]) if found else None

    def resolve_link(self, link: str) -> list[NoteRecord]:
        from .link_targets import rank_link_targets

        columns = [name for name in NoteRecord.__dataclass_fields__ if name != "links"]  # links: the bulk
        return rank_link_targets(link, (NoteRecord(**p.payload) for p in self._scroll_notes(None, columns)))

    def note_chunks(self, note_key: str) -> list[StoredChunk]:
        points = self._scroll_chunks(_keys_filter([note_key]), self._SHOWN)
        chunks = [StoredChunk(**{k: p.payload[k] for k in self._SHOWN}, score=0.0) for p in points]
        return sorted(chunks, key=lambda c: c.ordinal)

    def last_changed(self) -> float | None:
        """Recorded with the collection's meta on every write (None: written before it was recorded)."""
        return read_meta(self.client, self.collection).get("changed")

    def all_chunks(self):
        """Every stored chunk with its vector, in batches (for `konsilium index migrate`)."""
        for p in self._scroll_chunks(None, True, vectors=True):
            d = p.payload
            yield ChunkRecord(
                d["note_key"],
                d["note"],
                d["title"],
                d["heading"],
                d["text"],
                d["terms"],
                d["text_hash"],
                d["ordinal"],
                np.asarray(p.vector["dense"], dtype=np.float32),
                list(d.get("tag_names", [])),
            )

    def stats(self) -> dict:
        return {
            "collection": self.collection,
            "store": "qdrant",
            "embedder": self.embedder_name,
            "dim": self.dim,
            "notes": self.client.count(self.notes_name).count,
            "chunks": self.count_chunks(),
        }
