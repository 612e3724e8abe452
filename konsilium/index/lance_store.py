"""The embedded default store: LanceDB files under the home directory, two tables per collection.

`chunks__<collection>` holds text, stems and vectors; `notes__<collection>` is the manifest of indexed notes
(content hash, title, links) that makes re-indexing incremental. Lance commits are atomic, so a killed run leaves
the last committed version readable.

`index --rebuild` writes a new generation of both tables (`chunks__<collection>.r<ns>`) next to the live one and
swaps the collection's meta file to point at it only when it is complete: a reader keeps the tables it has open,
and a reader that follows the meta file (`generation()`, `LanceStore.follow()`) moves to the new ones. Replaced
generations stay readable for a few minutes and are dropped by a later index run.
"""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta
from pathlib import Path

import lancedb
import numpy as np
import pyarrow as pa
from lancedb.background_loop import LOOP
from lancedb.index import FTS, BTree, IvfRq
from lancedb.query import MatchQuery

from konsilium.errors import StoreError

from .scope import Scope, tags_field
from .store import ChunkRecord, NoteRecord, StoredChunk, check_collection_name

_SHOWN = ["note_key", "note", "title", "heading", "text", "ordinal"]
# What fusion reads from every candidate; the rest of _SHOWN is read only for the hits returned. Each column costs
# its own random reads: at 1M chunks, 60 BM25 candidates took 14.5 ms with all six columns and 7 ms with these.
_RANKED = ["note_key", "text", "ordinal"]
_DISPLAYED = ["note", "title", "heading"]
# Exact vector search costs ~8 ms at 10k chunks and ~70 ms at 100k on 2 cores; an IVF_RQ index answers in
# ~7 ms at 100k with recall@10 0.99 (benchmarks/retrieval_scale.py), so index from a few tens of thousands.
VECTOR_INDEX_MIN_ROWS = 20_000
# A replaced generation stays on disk this long, so a reader in the middle of a search never loses its files; an
# unfinished rebuild's tables (a killed run) are dropped after STALE_REBUILD_S.
RETIRED_KEEP_S = 300
STALE_REBUILD_S = 3600


def _meta_path(index_dir: Path, collection: str) -> Path:
    return Path(index_dir) / f"{collection}.meta.json"


def _read_meta(index_dir: Path, collection: str) -> dict:
    try:
        return json.loads(_meta_path(index_dir, collection).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def stored_meta(index_dir: Path, collection: str) -> dict:
    """What a collection's meta file records: embedder, dim, model, live tables (empty before the first index)."""
    return _read_meta(index_dir, collection)


def stored_model(index_dir: Path, collection: str) -> str | None:
    """The embedder model a collection was built with, if it exists (recorded in its meta file)."""
    return _read_meta(index_dir, collection).get("model")


def generation(index_dir: Path, collection: str) -> tuple:
    """What a reader must reopen on when it changes: the live tables and the embedder that filled them."""
    meta = _read_meta(index_dir, collection)
    return meta.get("tables", ""), meta.get("embedder"), meta.get("dim"), meta.get("model")


def _generations(names, collection: str) -> dict[str, list[str]]:
    """The table names of each generation suffix ("" for the first) of `collection`."""
    found: dict[str, list[str]] = {}
    for name in names:
        for prefix in (f"chunks__{collection}", f"notes__{collection}"):
            suffix = name[len(prefix) :] if name.startswith(prefix) else None
            if suffix is not None and (suffix == "" or suffix.startswith(".r")):
                found.setdefault(suffix, []).append(name)
    return found


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _in_filter(column: str, values: list[str]) -> str:
    return f"{column} IN ({', '.join(_quote(v) for v in values)})"


def _like_literal(value: str) -> str:
    """`value` matched literally inside a LIKE pattern: its own `%`, `_` and `\\` must not act as wildcards."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like(column: str, pattern: str) -> str:
    return f"{column} LIKE {_quote(pattern)} ESCAPE '\\'"


def scope_filter(scope: Scope | None) -> str | None:
    """The SQL `where` for a scope, applied before ranking: any folder (a path prefix ending at `/`, so `Sport`
    never covers `Sports/`) and any tag (itself or nested under it: `sport` covers `sport/running`)."""
    if scope is None:
        return None
    parts = []
    if scope.folders:
        parts.append(" OR ".join(_like("note", _like_literal(folder) + "/%") for folder in scope.folders))
    if scope.tags:
        tags = [_like_literal(tag) for tag in scope.tags]
        parts.append(" OR ".join(f"{_like('tags', f'%|{t}|%')} OR {_like('tags', f'%|{t}/%')}" for t in tags))
    return " AND ".join(f"({part})" for part in parts) or None


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def drop_collection(index_dir: Path, collection: str) -> None:
    """Remove a collection's tables (every generation) and meta, whatever embedder built it."""
    if not Path(index_dir).exists():
        return
    db = lancedb.connect(str(index_dir))
    result = db.list_tables()
    for names in _generations(getattr(result, "tables", result), collection).values():
        for name in names:
            db.drop_table(name)
    _meta_path(index_dir, collection).unlink(missing_ok=True)


class LanceStore:
    def __init__(
        self,
        index_dir: Path,
        collection: str,
        embedder_name: str,
        dim: int,
        model: str | None = None,
        rebuild: bool = False,
    ):
        """With `rebuild`, writes go to a new, empty generation that replaces the live one at `finish()`."""
        check_collection_name(collection)
        self.dir = Path(index_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.collection = collection
        self.dim = dim
        self.embedder_name = embedder_name
        self.model = model
        # Check for newer versions on every read: a running server sees `konsilium index` runs (new notes, new tags)
        # at once, for the cost of a manifest lookup.
        self.db = lancedb.connect(str(self.dir), read_consistency_interval=timedelta(0))
        # A rebuild keeps its meta here until it swaps in; the live meta file still describes the live tables.
        self._staged_meta: dict | None = {} if rebuild else None
        if rebuild:
            self.suffix = f".r{time.time_ns()}"
        else:
            if not self._check_meta():
                self._drop_empty_tables()
            self.suffix = self._meta().get("tables", "")
        self._open_tables()
        if not rebuild:
            self._store_tags_of_an_older_index()

    def _open_tables(self) -> None:
        self.chunks = self._open_or_create(f"chunks__{self.collection}{self.suffix}", self._chunk_schema())
        self.notes_table = self._open_or_create(f"notes__{self.collection}{self.suffix}", self._note_schema())

    def follow(self) -> bool:
        """Move to the live generation if a rebuild replaced ours; returns whether it did. A generation built
        with another embedder cannot be read with ours: that needs a new store (StoreError)."""
        if self._staged_meta is not None:
            return False
        live = self._meta().get("tables", "")
        if live == self.suffix:
            return False
        self._check_meta()
        self.suffix = live
        self._open_tables()
        return True

    # -- layout ---------------------------------------------------------------------------------------------
    def _chunk_schema(self) -> pa.Schema:
        return pa.schema(
            [
                ("note_key", pa.string()),
                ("note", pa.string()),
                ("title", pa.string()),
                ("heading", pa.string()),
                ("text", pa.string()),
                ("terms", pa.string()),
                ("text_hash", pa.string()),
                ("ordinal", pa.int32()),
                ("vector", pa.list_(pa.float32(), self.dim)),
                ("tags", pa.string()),  # scope.tags_field: `|a|b/c|`; NULL only while an old index migrates
            ]
        )

    @staticmethod
    def _note_schema() -> pa.Schema:
        return pa.schema(
            [
                ("note_key", pa.string()),
                ("vault", pa.string()),
                ("note", pa.string()),
                ("content_hash", pa.string()),
                ("title", pa.string()),
                ("aliases", pa.list_(pa.string())),
                ("links", pa.list_(pa.string())),
                ("chunks", pa.int32()),
            ]
        )

    def _check_meta(self) -> bool:
        """Vectors from another embedder are meaningless here: refuse instead of mixing them.

        Returns whether the collection has been written to (its meta file exists).
        """
        meta_path = _meta_path(self.dir, self.collection)
        if not meta_path.exists():
            return False
        found = json.loads(meta_path.read_text(encoding="utf-8"))
        if (found.get("embedder"), found.get("dim")) != (self.embedder_name, self.dim):
            raise StoreError(
                f"collection {self.collection!r} was built with embedder {found.get('embedder')} "
                f"(dim {found.get('dim')}), the config now asks for {self.embedder_name} (dim {self.dim}); "
                "re-index with --rebuild"
            )
        return True

    def _drop_empty_tables(self) -> None:
        """A search or stats before the first index leaves empty tables; they must not fix the vector size."""
        for name in (f"chunks__{self.collection}", f"notes__{self.collection}"):
            if name in self._table_names() and self.db.open_table(name).count_rows() == 0:
                self.db.drop_table(name)

    def _meta(self) -> dict:
        if self._staged_meta is not None:
            return dict(self._staged_meta)
        return _read_meta(self.dir, self.collection)

    def _write_meta(self, **fields) -> None:
        meta = {"embedder": self.embedder_name, "dim": self.dim, "model": self.model, **self._meta(), **fields}
        if self._staged_meta is not None:
            self._staged_meta = meta
            return
        self._replace_meta_file(meta)

    def _replace_meta_file(self, meta: dict) -> None:
        path = _meta_path(self.dir, self.collection)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(meta), encoding="utf-8")
        os.replace(tmp, path)  # atomic: a reader sees the old meta or the new one, never half of it

    def _record_meta(self) -> None:
        """Written with the first data, so only a real index decides which embedder a collection has."""
        if not self._meta():
            self._write_meta(tags=True)

    def _swap_in(self) -> None:
        """Make a finished rebuild the live generation; the replaced one is kept a while for open readers."""
        old = _read_meta(self.dir, self.collection)
        retired = [r for r in old.get("retired", []) if r[0] != self.suffix]
        if old:
            retired.append([old.get("tables", ""), time.time()])
        meta = {**self._meta(), "tables": self.suffix, "retired": retired}
        self._staged_meta = None
        self._replace_meta_file(meta)

    def _drop_old_generations(self) -> None:
        """Replaced generations after RETIRED_KEEP_S, and tables of rebuilds that never finished."""
        meta = self._meta()
        retired = {suffix: at for suffix, at in meta.get("retired", [])}
        now = time.time()
        kept = []
        for suffix, names in _generations(self._table_names(), self.collection).items():
            if suffix == self.suffix:
                continue
            if suffix in retired:
                expired = now - retired[suffix] > RETIRED_KEEP_S
            else:  # an unfinished rebuild: its suffix is its start time
                started = int(suffix[2:]) / 1e9 if suffix[2:].isdigit() else 0
                expired = now - started > STALE_REBUILD_S
            if expired:
                for name in names:
                    self.db.drop_table(name)
            elif suffix in retired:
                kept.append([suffix, retired[suffix]])
        if kept != meta.get("retired", []):
            self._write_meta(retired=kept)

    def _store_tags_of_an_older_index(self) -> None:
        """Indexes built before tags were stored get them once, read from the notes as they are now (the next
        `konsilium index` refreshes any note edited since). Until then a tag scope would silently match nothing.
        """
        meta = self._meta()
        if not meta or meta.get("tags"):
            return
        if "tags" not in self.chunks.schema.names:
            try:
                self.chunks.add_columns([pa.field("tags", pa.string())])
            except Exception:  # another process added it first
                self.chunks.checkout_latest()
                if "tags" not in self.chunks.schema.names:
                    raise
        from .tag_migration import current_tags

        unknown = self.chunks.search().where("tags IS NULL").select(["note_key"]).limit(None).to_arrow()
        if unknown.num_rows:
            keys = set(unknown["note_key"].to_pylist())
            found = current_tags([record for key, record in self.notes().items() if key in keys])
            if found:
                rows = pa.table({"note_key": list(found), "tags": [tags_field(tags) for tags in found.values()]})
                self.chunks.merge_insert("note_key").when_matched_update_all().execute(rows)
        if not self.chunks.count_rows("tags IS NULL"):  # else a note could not be read: try again next time
            self._write_meta(tags=True)

    def _open_or_create(self, name: str, schema: pa.Schema):
        if name in self._table_names():
            return self.db.open_table(name)
        return self.db.create_table(name, schema=schema, exist_ok=True)

    def _table_names(self) -> list[str]:
        result = self.db.list_tables()
        return list(getattr(result, "tables", result))

    # -- writes ---------------------------------------------------------------------------------------------
    def notes(self) -> dict[str, NoteRecord]:
        rows = self.notes_table.to_arrow().to_pylist()
        return {r["note_key"]: NoteRecord(**r) for r in rows}

    def vectors_by_hash(self, note_keys: list[str]) -> dict[str, np.ndarray]:
        if not note_keys:
            return {}
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(note_keys), 500):
            part = note_keys[start : start + 500]
            table = (
                self.chunks.search()
                .where(_in_filter("note_key", part))
                .select(["text_hash", "vector"])
                .limit(None)
                .to_arrow()
            )
            for h, v in zip(
                table["text_hash"].to_pylist(), table["vector"].to_numpy(zero_copy_only=False), strict=True
            ):
                found[h] = np.asarray(v, dtype=np.float32)
        return found

    def replace_notes(self, notes: list[NoteRecord], chunks: list[ChunkRecord]) -> None:
        keys = [n.note_key for n in notes]
        if not keys:
            return
        self._record_meta()
        # Order matters for crash safety: the manifest is written last, so a note whose chunks were not fully
        # written still looks changed to the next run.
        self.chunks.delete(_in_filter("note_key", keys))
        if chunks:
            self.chunks.add(self._chunk_table(chunks))
        rows = pa.Table.from_pylist([n.__dict__ for n in notes], schema=self._note_schema())
        (
            self.notes_table.merge_insert("note_key")
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute(rows)
        )

    def _chunk_table(self, chunks: list[ChunkRecord]) -> pa.Table:
        vectors = np.stack([c.vector for c in chunks]).astype(np.float32)
        columns = {
            name: [getattr(c, name) for c in chunks]
            for name in ("note_key", "note", "title", "heading", "text", "terms", "text_hash", "ordinal")
        }
        columns["vector"] = pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), self.dim)
        columns["tags"] = [tags_field(c.tags) for c in chunks]
        return pa.Table.from_pydict(columns, schema=self._chunk_schema())

    def delete_notes(self, note_keys: list[str]) -> None:
        for start in range(0, len(note_keys), 500):
            part = note_keys[start : start + 500]
            self.notes_table.delete(_in_filter("note_key", part))
            self.chunks.delete(_in_filter("note_key", part))

    def finish(self) -> None:
        if self._staged_meta is not None:
            self._record_meta()  # even an empty rebuild replaces what was there
        self._index_and_compact()
        if self._staged_meta is not None:
            self._swap_in()
        self._drop_old_generations()

    def _index_and_compact(self) -> None:
        if self.chunks.count_rows() == 0:
            return
        names = {i.name for i in self.chunks.list_indices()}
        if "note_key_idx" not in names:
            # Every write deletes by note_key; without an index that scans the whole table.
            self.chunks.create_index("note_key", config=BTree(), name="note_key_idx")
        if "terms_idx" not in names:
            # Stems are computed by us (index/text.py), so LanceDB only splits on whitespace.
            config = FTS(
                base_tokenizer="whitespace",
                lower_case=False,
                stem=False,
                remove_stop_words=False,
                ascii_folding=False,
                max_token_length=64,
            )
            self.chunks.create_index("terms", config=config, replace=True, name="terms_idx")
        rows = self.chunks.count_rows()
        built_for = self._meta().get("vector_index_rows", 0)
        # IVF partitions are sized for the rows at build time; rebuild when the table has grown 4x since.
        if rows >= VECTOR_INDEX_MIN_ROWS and ("vector_idx" not in names or rows > 4 * built_for):
            self.create_vector_index()
        # Keep a few minutes of old versions so a concurrent reader is never left without its files.
        for table in (self.chunks, self.notes_table):
            table.optimize(cleanup_older_than=timedelta(minutes=5))

    def create_vector_index(self) -> None:
        # IVF_RQ measured at 1M chunks: recall@10 0.97 at nprobes 48 in 15 ms p95; IVF_PQ reached only 0.35.
        partitions = max(16, int(self.chunks.count_rows() ** 0.5))
        config = IvfRq(distance_type="dot", num_partitions=partitions)
        self.chunks.create_index("vector", config=config, replace=True, name="vector_idx")
        self._write_meta(vector_index_rows=self.chunks.count_rows())

    # -- reads ----------------------------------------------------------------------------------------------
    def _hits(self, table: pa.Table, score) -> list[StoredChunk]:
        n = table.num_rows
        cols = {name: table[name].to_pylist() if name in table.column_names else [None] * n for name in _SHOWN}
        row_ids = table["_rowid"].to_pylist() if "_rowid" in table.column_names else [None] * n
        scores = score(table)
        return [
            StoredChunk(
                cols["note_key"][i],
                cols["note"][i],
                cols["title"][i],
                cols["heading"][i],
                cols["text"][i],
                float(scores[i]),
                cols["ordinal"][i],
                row_ids[i],
            )
            for i in range(n)
        ]

    def _run(self, query) -> pa.Table:
        """One query through LanceDB's async API, on the event loop its sync API uses. The sync query builder cost
        ~5 ms more per call (extra round trips to that loop: 12 vs 7 ms for BM25 at 100k chunks, same rows)."""
        return LOOP.run(query.to_arrow())

    @staticmethod
    def _columns(query, complete: bool, score: str):
        """With `complete=False`, only what ranking needs and the row id; complete_chunks() reads the rest."""
        if complete:
            return query.select([*_SHOWN, score])
        return query.select([*_RANKED, score]).with_row_id()

    def search_bm25(
        self, terms: str, limit: int, scope: Scope | None = None, complete: bool = True
    ) -> list[StoredChunk]:
        # No count_rows() first: an empty or not yet indexed table answers with no rows, and the call cost a round
        # trip per query.
        if not terms.strip():
            return []
        query = self.chunks._table.query().nearest_to_text(MatchQuery(terms, "terms"))
        where = scope_filter(scope)
        if where:  # the async API filters before ranking by default
            query = query.where(where)
        table = self._run(self._columns(query, complete, "_score").limit(limit))
        return self._hits(table, lambda t: t["_score"].to_pylist())

    def search_dense(
        self, vector: np.ndarray, limit: int, scope: Scope | None = None, nprobes: int = 48, complete: bool = True
    ) -> list[StoredChunk]:
        query = self.chunks._table.query().nearest_to(vector.astype(np.float32)).column("vector").distance_type("dot")
        where = scope_filter(scope)
        if where:  # a prefiltered IVF search still fills `limit` from a narrow scope (tested with nprobes=1)
            query = query.where(where)
        query = self._columns(query.nprobes(nprobes).refine_factor(4), complete, "_distance").limit(limit)
        # Lance's "dot" distance is 1 - dot; our vectors are unit length, so this is cosine similarity.
        return self._hits(self._run(query), lambda t: [1.0 - d for d in t["_distance"].to_pylist()])

    def complete_chunks(self, chunks: list[StoredChunk]) -> None:
        """Fill note, title and heading of chunks from a `complete=False` search, in one read by row id. A row id
        is a position, so a compaction in between can move a row: rows that no longer match are read by key."""
        wanted = [c for c in chunks if c.note is None]
        if not wanted:
            return
        take = self.chunks._table.take_row_ids([c.row_id for c in wanted])
        rows = {
            r["_rowid"]: r
            for r in self._run(take.select(["note_key", "ordinal", *_DISPLAYED]).with_row_id()).to_pylist()
        }
        moved = []
        for c in wanted:
            row = rows.get(c.row_id)
            if row is None or (row["note_key"], row["ordinal"]) != (c.note_key, c.ordinal):
                moved.append(c)
            else:
                c.note, c.title, c.heading = row["note"], row["title"], row["heading"]
        if moved:
            query = self.chunks._table.query().where(_in_filter("note_key", sorted({c.note_key for c in moved})))
            table = self._run(query.select(["note_key", "ordinal", *_DISPLAYED]))
            found = {(r["note_key"], r["ordinal"]): r for r in table.to_pylist()}
            for c in moved:
                row = found.get((c.note_key, c.ordinal), {"note": "", "title": "", "heading": ""})  # deleted since
                c.note, c.title, c.heading = row["note"], row["title"], row["heading"]

    def count_chunks(self) -> int:
        return self.chunks.count_rows()

    def count_notes(self) -> int:
        return self.notes_table.count_rows()

    def vaults(self) -> list[str]:
        rows = self.notes_table.search().select(["vault"]).limit(None).to_arrow()
        return sorted(set(rows["vault"].to_pylist()))

    def find_note(self, note: str) -> NoteRecord | None:
        rows = self.notes_table.search().where(f"note = {_quote(note)}").limit(None).to_list()
        rows.sort(key=lambda row: row["vault"])  # the same vault wins every time, and in every store
        return NoteRecord(**{k: rows[0][k] for k in NoteRecord.__dataclass_fields__}) if rows else None

    def resolve_link(self, link: str) -> list[NoteRecord]:
        from .link_targets import rank_link_targets

        columns = [name for name in NoteRecord.__dataclass_fields__ if name != "links"]  # links: the bulk
        rows = self.notes_table.search().select(columns).limit(None).to_arrow().to_pylist()
        return rank_link_targets(link, (NoteRecord(**row) for row in rows))

    def note_chunks(self, note_key: str) -> list[StoredChunk]:
        query = self.chunks.search().where(f"note_key = {_quote(note_key)}").select(_SHOWN).limit(None)
        return sorted(self._hits(query.to_arrow(), lambda t: [0.0] * t.num_rows), key=lambda c: c.ordinal)

    def last_changed(self) -> float | None:
        """The newest version of the live chunk table: every committed write (and compaction) adds one."""
        versions = self.dir / f"{self.chunks.name}.lance" / "_versions"
        times = [p.stat().st_mtime for p in versions.glob("*")] if versions.is_dir() else []
        return max(times) if times else None

    def all_chunks(self):
        """Every stored chunk with its vector, in batches (for `konsilium index migrate`)."""
        from .scope import stored_tags

        for batch in self.chunks.search().limit(None).to_batches(batch_size=1024):
            rows = batch.to_pylist()
            for r in rows:
                yield ChunkRecord(
                    r["note_key"],
                    r["note"],
                    r["title"],
                    r["heading"],
                    r["text"],
                    r["terms"],
                    r["text_hash"],
                    r["ordinal"],
                    np.asarray(r["vector"], dtype=np.float32),
                    stored_tags(r["tags"]),
                )

    def links(self) -> list[NoteRecord]:
        return list(self.notes().values())

    def stats(self) -> dict:
        chunks = self.chunks.count_rows()
        text_cols = ["note_key", "note", "title", "heading", "text", "text_hash", "ordinal"]
        text_bytes = terms_bytes = chars = 0
        scan = self.chunks.search().select(text_cols + ["terms"]).limit(None)
        for batch in scan.to_batches(batch_size=8192):
            text_bytes += sum(batch.column(c).nbytes for c in text_cols)
            terms_bytes += batch.column("terms").nbytes
            chars += sum(len(s) for s in batch.column("text").to_pylist())
        indices = {i.name: getattr(i, "size_bytes", 0) or 0 for i in self.chunks.list_indices()}
        return {
            "collection": self.collection,
            "embedder": self.embedder_name,
            "dim": self.dim,
            "notes": self.notes_table.count_rows(),
            "chunks": chunks,
            "text_chars": chars,
            "bytes": {
                "text": text_bytes,
                "terms": terms_bytes,
                "vectors": chunks * self.dim * 4,
                "fulltext_index": indices.get("terms_idx", 0),
                "vector_index": indices.get("vector_idx", 0),
                "on_disk": _dir_bytes(self.dir / f"{self.chunks.name}.lance")
                + _dir_bytes(self.dir / f"{self.notes_table.name}.lance"),
            },
        }


def list_collections(index_dir: Path) -> list[str]:
    """Collections that hold an index (a meta file is written with a collection's first data)."""
    folder = Path(index_dir)
    return sorted(p.name.removesuffix(".meta.json") for p in folder.glob("*.meta.json")) if folder.exists() else []
