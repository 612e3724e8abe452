"""Memories on disk: tables in the conversation log's SQLite file (migration m003), so one transaction can
apply the operations drawn from an exchange and move the extraction cursor past it — a crash between the two
cannot happen, and a later pass catches up from the last exchange processed.

Search is dense (a numpy matrix of the current memories' vectors, rebuilt when the memories change, in this
process or another) plus stems matched through FTS5, fused by `MemorySearch`.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .log import ConversationLog, MemoryStoreError
from .records import HistoryEvent, Memory, Operation, fingerprint, new_memory_id, terms

_COLUMNS = (
    "id",
    "text",
    "about",
    "kind",
    "key",
    "status",
    "pinned",
    "origin",
    "created",
    "updated",
    "exchange_id",
    "superseded_by",
    "vector",
    "search_vector",
    "fingerprint",
)
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM memories"
_SELECT_WITH_ROWID = f"SELECT rowid, {', '.join(_COLUMNS)} FROM memories"
CURSOR = "extracted_through"  # memory_state: the rowid of the last exchange the extractor processed
GENERATION = "generation"  # memory_state: bumped by every change, so other processes' caches notice
PATCH_LIMIT = 5000  # history rows past which the current memories are read again in full
EXPORTS = "export_folders"  # memory_state: JSON list of folders `memory export` wrote notes into
CONVERSATIONS = "conversations_generation"  # the same for the past conversations' vectors


class MemoryNotFound(KeyError):
    def __str__(self) -> str:
        return f"no memory {self.args[0]!r}"


@dataclass
class CurrentMatrix:
    """The current memories and their vectors, as of one generation."""

    generation: int
    memories: list[Memory]
    # (n, dim) float32: what questions are compared with, each memory's search vector where it has one, else its own
    # vector (rows of memories without a vector are zero); the memories keep their own vectors for updates
    vectors: np.ndarray
    people: dict[int, object] = field(default_factory=dict)  # row → people.Person, for memories about others
    row_of: dict[int, int] = field(default_factory=dict)  # SQLite rowid → row, to read full-text hits
    rowids: list[int] = field(default_factory=list)  # row → SQLite rowid
    history_seq: int = 0  # every change up to this memory_history row is in here

    @cached_property
    def pinned(self) -> list[Memory]:
        """The pinned memories (the core profile), found once per generation, not on every question."""
        return [m for m in self.memories if m.pinned]


@dataclass(frozen=True)
class PastConversation:
    """One exchange made searchable: its rowid and id in the log, when it was, its vector."""

    rowid: int
    exchange_id: str
    time: float
    vector: np.ndarray


@dataclass
class ConversationMatrix:
    generation: int
    exchange_ids: list[str]
    vectors: np.ndarray


class MemoryStore:
    def __init__(self, log: ConversationLog):
        self.log = log
        self._conversations: ConversationMatrix | None = None
        self._cache: CurrentMatrix | None = None
        self._cache_lock = threading.Lock()

    # --- reading ------------------------------------------------------------------------------------------

    def get(self, memory_id: str) -> Memory:
        rows = self.log.query(f"{_SELECT} WHERE id = ?", (memory_id,))
        if not rows:
            prefix = "SELECT id FROM memories WHERE substr(id, 1, length(?1)) = ?1 LIMIT 2"
            matches = self.log.query(prefix, (memory_id,))
            if len(matches) != 1 or len(memory_id) < 6:
                raise MemoryNotFound(memory_id)
            rows = self.log.query(f"{_SELECT} WHERE id = ?", (matches[0][0],))
        return _memory(rows[0])

    def list(
        self,
        status: str | None = "current",
        pinned: bool | None = None,
        about: str | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[Memory]:
        clauses, params = [], []
        if status is not None:
            clauses.append("status = ?")
            params.append(status)
        if pinned is not None:
            clauses.append("pinned = ?")
            params.append(int(pinned))
        if about is not None:
            clauses.append("about = ?")
            params.append(about)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        sql = f"{_SELECT}{where} ORDER BY created DESC, rowid DESC LIMIT ? OFFSET ?"
        return [_memory(r) for r in self.log.query(sql, (*params, -1 if limit is None else limit, offset))]

    def count(self, status: str | None = "current") -> int:
        if status is None:
            return self.log.query("SELECT count(*) FROM memories")[0][0]
        return self.log.query("SELECT count(*) FROM memories WHERE status = ?", (status,))[0][0]

    def history(self, memory_id: str) -> list[HistoryEvent]:
        """Every event of the memory and of those it superseded or that superseded it, oldest first."""
        chain = self.chain(memory_id)
        marks = ", ".join("?" for _ in chain)
        rows = self.log.query(
            "SELECT memory_id, event, old_text, new_text, time, exchange_id, detail FROM memory_history "
            f"WHERE memory_id IN ({marks}) ORDER BY seq",
            tuple(chain),
        )
        return [HistoryEvent(*row) for row in rows]

    def chain(self, memory_id: str) -> list[str]:
        seen, todo = [], [self.get(memory_id).id]
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.append(current)
            rows = self.log.query("SELECT id FROM memories WHERE superseded_by = ?", (current,))
            todo.extend(r[0] for r in rows)
            after = self.log.query("SELECT superseded_by FROM memories WHERE id = ?", (current,))
            todo.extend(r[0] for r in after if r[0])
        return seen

    def is_forgotten(self, statement_fingerprint: str, said_at: float) -> bool:
        """A statement forgotten after it was said stays forgotten when the same exchange is read again."""
        rows = self.log.query(
            "SELECT 1 FROM memories WHERE fingerprint = ? AND status = 'forgotten' AND updated >= ? LIMIT 1",
            (statement_fingerprint, said_at),
        )
        return bool(rows)

    def current_matrix(self) -> CurrentMatrix:
        """The current memories with their vectors, cached until any process changes a memory. A change reads only
        the memories it touched (every change writes a history row), not all of them again: at 100k memories a
        full read takes seconds, and the memory thread changes something after most answers."""
        generation = self.generation()
        with self._cache_lock:
            cache = self._cache
            if cache is not None and cache.generation == generation:
                return cache
            changed = self._changed_since(cache) if cache is not None else None
            if changed is None:
                seq = self._history_seq()  # before reading: a change made meanwhile is read again next time
                rows = self.log.query(f"{_SELECT_WITH_ROWID} WHERE status = 'current' ORDER BY rowid")
                self._cache = _matrix(generation, seq, [r[0] for r in rows], [_memory(r[1:]) for r in rows])
            else:
                seq, ids = changed
                self._cache = _patched(cache, generation, seq, ids, self._current_rows(ids))
            return self._cache

    def _history_seq(self) -> int:
        return int(self.log.query("SELECT COALESCE(MAX(seq), 0) FROM memory_history")[0][0])

    def _changed_since(self, cache: CurrentMatrix) -> tuple[int, set[str]] | None:
        """(history seq, ids of the memories changed after the cache was read), or None when so much changed
        that reading everything is as cheap."""
        rows = self.log.query(
            "SELECT seq, memory_id FROM memory_history WHERE seq > ? ORDER BY seq LIMIT ?",
            (cache.history_seq, PATCH_LIMIT + 1),
        )
        if len(rows) > PATCH_LIMIT:
            return None
        return (rows[-1][0] if rows else cache.history_seq), {r[1] for r in rows}

    def _current_rows(self, ids: set[str]) -> list[tuple[int, Memory]]:
        found = []
        ordered = sorted(ids)
        for start in range(0, len(ordered), 500):  # SQLite's limit on bound variables
            part = ordered[start : start + 500]
            marks = ", ".join("?" for _ in part)
            rows = self.log.query(
                f"{_SELECT_WITH_ROWID} WHERE status = 'current' AND id IN ({marks})",
                tuple(part),
            )
            found.extend((r[0], _memory(r[1:])) for r in rows)
        return sorted(found, key=lambda pair: pair[0])

    def lexical(self, query_terms: list[str], limit: int) -> dict[int, float]:
        """Memories sharing stems with the query (any status: the caller keeps the current ones): SQLite rowid →
        share of the query's stems matched. Reads the index and the stored terms only, never the vectors."""
        wanted = set(query_terms)
        return {rowid: len(found) / len(wanted) for rowid, found in self.lexical_matches(wanted, limit).items()}

    def lexical_matches(self, query_terms, limit: int) -> dict[int, frozenset[str]]:
        """Memories holding any of `query_terms` (any status), best first by BM25: SQLite rowid → the terms each
        holds. One index lookup answers several questions asked of one set of terms."""
        wanted = set(query_terms)
        if not wanted:
            return {}
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in sorted(wanted))
        hits = self.log.query(
            "SELECT rowid FROM memories_search WHERE memories_search MATCH ? ORDER BY bm25(memories_search) LIMIT ?",
            (match, limit),
        )
        if not hits:
            return {}
        marks = ", ".join("?" for _ in hits)
        rows = self.log.query(f"SELECT rowid, terms FROM memories WHERE rowid IN ({marks})", tuple(r[0] for r in hits))
        return {rowid: frozenset(stored.split()) & wanted for rowid, stored in rows}

    def with_token(self, token: str) -> set[int]:
        """SQLite rowids of the memories whose terms hold `token` (a subject token, see records.key_tokens)."""
        rows = self.log.query(
            "SELECT rowid FROM memories_search WHERE memories_search MATCH ?", ('"' + token.replace('"', '""') + '"',)
        )
        return {r[0] for r in rows}

    def generation(self, name: str = "generation") -> int:
        rows = self.log.query("SELECT value FROM memory_state WHERE name = ?", (name,))
        return int(rows[0][0]) if rows else 0

    def cursor(self) -> int:
        rows = self.log.query("SELECT value FROM memory_state WHERE name = ?", (CURSOR,))
        return int(rows[0][0]) if rows else 0

    # --- writing ------------------------------------------------------------------------------------------

    def apply(
        self,
        operations: list[Operation],
        exchange_id: str | None = None,
        cursor: int | None = None,
        conversation: PastConversation | None = None,
    ) -> None:
        """The operations drawn from one exchange, the exchange made searchable as a past conversation, and the
        cursor past it, in one transaction."""
        now = time.time()
        with self.log.transaction() as db:
            for op in operations:
                self._apply_one(db, op, exchange_id, now)
            if conversation is not None:
                # An upsert, not REPLACE: reading the log again (`memory update --rebuild`) must keep an exchange
                # excluded once a memory drawn from it was forgotten.
                db.execute(
                    "INSERT INTO conversation_vectors (exchange_rowid, exchange_id, time, vector) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (exchange_rowid) DO UPDATE SET vector = excluded.vector",
                    (conversation.rowid, conversation.exchange_id, conversation.time, _blob(conversation.vector)),
                )
                _bump(db, CONVERSATIONS)
            if cursor is not None:
                _set_state(db, CURSOR, cursor)
            if operations:
                _bump(db)

    def conversation_matrix(self) -> ConversationMatrix:
        """The past conversations that may be offered, with their vectors (cached until one is added)."""
        generation = self.generation(CONVERSATIONS)
        with self._cache_lock:
            if self._conversations is not None and self._conversations.generation == generation:
                return self._conversations
            rows = self.log.query(
                "SELECT exchange_id, vector FROM conversation_vectors WHERE excluded = 0 ORDER BY exchange_rowid"
            )
            vectors = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows]) if rows else np.zeros((0, 0))
            self._conversations = ConversationMatrix(generation, [r[0] for r in rows], vectors.astype(np.float32))
            return self._conversations

    def exclude_conversations(self, exchange_ids: list[str]) -> None:
        """Never offer these exchanges as past conversations again (a memory drawn from them was forgotten)."""
        if not exchange_ids:
            return
        marks = ", ".join("?" for _ in exchange_ids)
        with self.log.transaction() as db:
            db.execute(f"UPDATE conversation_vectors SET excluded = 1 WHERE exchange_id IN ({marks})", exchange_ids)
            _bump(db, CONVERSATIONS)

    def _apply_one(self, db, op: Operation, exchange_id: str | None, now: float) -> None:
        if op.event == "ADD":
            _insert(db, op.memory)
            _history(db, op.memory.id, "ADD", None, op.memory.text, now, exchange_id, op.reason)
        elif op.event == "UPDATE":
            _insert(db, op.memory)
            detail = f"superseded by {op.memory.id}" + (f": {op.reason}" if op.reason else "")
            _supersede(db, op.target, op.memory, now, exchange_id, detail)
            _history(db, op.memory.id, "ADD", None, op.memory.text, now, exchange_id, f"supersedes {op.target}")
            for also in op.also:
                _supersede(db, also, op.memory, now, exchange_id, detail, only_current=True)
        elif op.event == "DELETE":
            self._forget(db, op.target, now, exchange_id, op.reason)
        elif op.event == "NOOP":
            _history(db, op.target, "NOOP", None, None, now, exchange_id, op.reason)

    def add(self, memory: Memory, reason: str = "added by the user") -> Memory:
        self.apply([Operation("ADD", memory, reason=reason)])
        return memory

    def _forget(self, db, memory_id: str, now: float, exchange_id: str | None, reason: str) -> None:
        """The words go (text, stems, vector, and the text in its history); the tombstone keeps the fingerprint
        so that reading the old exchange again does not bring the memory back."""
        db.execute(
            "UPDATE memories SET status = 'forgotten', text = '', terms = '', vector = NULL, search_vector = NULL, "
            "pinned = 0, updated = ? "
            "WHERE id = ?",
            (now, memory_id),
        )
        db.execute("UPDATE memory_history SET old_text = NULL, new_text = NULL WHERE memory_id = ?", (memory_id,))
        _history(db, memory_id, "DELETE", None, None, now, exchange_id, reason)

    def set_pinned(self, memory_id: str, pinned: bool) -> Memory:
        memory = self.get(memory_id)
        if memory.status != "current":
            raise ValueError(f"{memory.id} is {memory.status}: only a current memory can be pinned")
        now = time.time()
        with self.log.transaction() as db:
            db.execute("UPDATE memories SET pinned = ?, updated = ? WHERE id = ?", (int(pinned), now, memory.id))
            _history(db, memory.id, "PIN" if pinned else "UNPIN", None, None, now, None, None)
            _bump(db)
        return self.get(memory.id)

    def edit(self, memory_id: str, text: str, vector: np.ndarray | None) -> Memory:
        memory = self.get(memory_id)
        if memory.status != "current":
            raise ValueError(f"{memory.id} is {memory.status}: only a current memory can be edited")
        now = time.time()
        with self.log.transaction() as db:
            db.execute(
                "UPDATE memories SET text = ?, terms = ?, fingerprint = ?, vector = ?, search_vector = NULL, "
                "updated = ? WHERE id = ?",
                (
                    text,
                    terms(text, memory.about, memory.key),
                    fingerprint(text, memory.about),
                    _blob(vector),
                    now,
                    memory.id,
                ),
            )
            _history(db, memory.id, "EDIT", memory.text, text, now, None, "edited by the user")
            _bump(db)
        return self.get(memory.id)

    def export_folders(self) -> list[str]:
        rows = self.log.query("SELECT value FROM memory_state WHERE name = ?", (EXPORTS,))
        return json.loads(rows[0][0]) if rows else []

    def add_export_folder(self, folder: str) -> None:
        folders = [f for f in self.export_folders() if f != folder] + [folder]
        with self.log.transaction() as db:
            _set_state(db, EXPORTS, json.dumps(folders, ensure_ascii=False))

    def pending(self) -> int:
        """Exchanges logged after the cursor: what the next pass will read."""
        return self.log.query("SELECT count(*) FROM exchanges WHERE rowid > ?", (self.cursor(),))[0][0]

    def reset_cursor(self) -> None:
        with self.log.transaction() as db:
            _set_state(db, CURSOR, 0)


def _insert(db, memory: Memory) -> None:
    memory.id = memory.id or new_memory_id()
    db.execute(
        "INSERT INTO memories (id, text, about, kind, key, status, pinned, origin, created, updated, exchange_id, "
        "superseded_by, fingerprint, terms, vector, search_vector) "
        "VALUES (?, ?, ?, ?, ?, 'current', ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?)",
        (
            memory.id,
            memory.text,
            memory.about,
            memory.kind,
            memory.key,
            int(memory.pinned),
            memory.origin,
            memory.created,
            memory.updated or memory.created,
            memory.exchange_id,
            fingerprint(memory.text, memory.about),
            terms(memory.text, memory.about, memory.key),
            _blob(memory.vector),
            _blob(memory.search_vector),
        ),
    )


def _matrix(generation: int, seq: int, rowids: list[int], memories: list[Memory]) -> CurrentMatrix:
    from .people import person

    dims = {m.vector.shape[0] for m in memories if m.vector is not None}
    dim = dims.pop() if len(dims) == 1 else 0
    vectors = np.zeros((len(memories), dim), dtype=np.float32)
    for row, memory in enumerate(memories):
        if memory.vector is not None and memory.vector.shape[0] == dim:
            vectors[row] = _searched(memory)
    people = {row: found for row, m in enumerate(memories) if m.about != "user" and (found := person(m.about))}
    row_of = {rowid: row for row, rowid in enumerate(rowids)}
    return CurrentMatrix(generation, memories, vectors, people, row_of, list(rowids), seq)


def _patched(cache: CurrentMatrix, generation: int, seq: int, ids: set[str], rows: list[tuple[int, Memory]]):
    """`cache` without the memories `ids` names, plus those of them that are current now, in rowid order as a
    full read gives them (an edited or re-pinned memory keeps its place). The kept rows' vectors and people are
    reused: only what changed is parsed."""
    from .people import person

    dim = cache.vectors.shape[1] if cache.vectors.ndim == 2 else 0
    added = [m for _, m in rows]
    if not cache.memories or any(m.vector is not None and m.vector.shape[0] != dim for m in added):
        kept = [(rowid, m) for rowid, m in zip(cache.rowids, cache.memories, strict=True) if m.id not in ids]
        merged = sorted(kept + rows, key=lambda pair: pair[0])
        return _matrix(generation, seq, [rowid for rowid, _ in merged], [m for _, m in merged])
    keep = [row for row, m in enumerate(cache.memories) if m.id not in ids]
    fresh = np.zeros((len(added), dim), dtype=np.float32)
    for row, memory in enumerate(added):
        if memory.vector is not None:
            fresh[row] = _searched(memory)
    rowids = np.asarray([cache.rowids[r] for r in keep] + [rowid for rowid, _ in rows], dtype=np.int64)
    order = np.argsort(rowids, kind="stable")
    vectors = np.concatenate([cache.vectors[keep], fresh])[order]
    memories_before = [cache.memories[r] for r in keep] + added
    people_before = {new: cache.people[old] for new, old in enumerate(keep) if old in cache.people}
    for offset, memory in enumerate(added, start=len(keep)):
        if memory.about != "user" and (found := person(memory.about)):
            people_before[offset] = found
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    memories = [memories_before[i] for i in order]
    people = {int(position[before]): found for before, found in people_before.items()}
    ordered = rowids[order].tolist()
    return CurrentMatrix(generation, memories, vectors, people, {r: i for i, r in enumerate(ordered)}, ordered, seq)


def _supersede(db, memory_id, by: Memory, now, exchange_id, detail, only_current: bool = False) -> None:
    """Mark `memory_id` superseded by `by`, with its history ("UPDATE", its text then and the new one)."""
    old = _text_of(db, memory_id)
    db.execute(
        "UPDATE memories SET status = 'superseded', superseded_by = ?, updated = ? WHERE id = ?"
        + (" AND status = 'current'" if only_current else ""),
        (by.id, now, memory_id),
    )
    _history(db, memory_id, "UPDATE", old, by.text, now, exchange_id, detail)


def _text_of(db, memory_id: str) -> str:
    row = db.execute("SELECT text FROM memories WHERE id = ?", (memory_id,)).fetchone()
    if row is None:
        raise MemoryStoreError(f"memory {memory_id} vanished while being updated")
    return row[0]


def _history(db, memory_id, event, old_text, new_text, now, exchange_id, detail) -> None:
    db.execute(
        "INSERT INTO memory_history (memory_id, event, old_text, new_text, time, exchange_id, detail) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (memory_id, event, old_text, new_text, now, exchange_id, detail or None),
    )


def _set_state(db, name: str, value) -> None:
    db.execute(
        "INSERT INTO memory_state (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        (name, str(value)),
    )


def _bump(db, name: str = GENERATION) -> None:
    db.execute(
        "INSERT INTO memory_state (name, value) VALUES (?, '1') "
        "ON CONFLICT (name) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
        (name,),
    )


def _searched(memory: Memory) -> np.ndarray:
    """The row a question is compared with: the search vector where it was said in context, else its own."""
    searched = memory.search_vector
    return searched if searched is not None and searched.shape == memory.vector.shape else memory.vector


def _blob(vector: np.ndarray | None) -> bytes | None:
    return None if vector is None else np.asarray(vector, dtype=np.float32).tobytes()


def _memory(row: tuple) -> Memory:
    values = dict(zip(_COLUMNS, row, strict=True))
    blob, searched, stored = values.pop("vector"), values.pop("search_vector"), values.pop("fingerprint")
    return Memory(
        **values | {"pinned": bool(values["pinned"])},
        vector=np.frombuffer(blob, dtype=np.float32) if blob else None,
        search_vector=np.frombuffer(searched, dtype=np.float32) if searched else None,
        stored_fingerprint=stored,
    )
