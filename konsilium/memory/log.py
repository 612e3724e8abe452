"""The durable conversation log: every exchange the server (or the CLI) answers, in one SQLite file.

Stdlib only, so the CLI can import it (and `MemoryStoreError`) without paying for torch or LanceDB.

Durability: WAL with `synchronous=FULL` fsyncs the write-ahead log on every commit, so an exchange is on disk
when `record()` returns and survives `kill -9` of the process (and power loss, as far as SQLite promises).
WAL also lets `konsilium history` read in another process while the server keeps writing.

The schema is built by the numbered migrations in `migrations.py`; search goes through its FTS5 trigram index.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..private_files import create_private_file
from . import migrations

DB_NAME = "conversations.sqlite3"
SCHEMA_VERSION = len(migrations.MIGRATIONS)  # also PRAGMA user_version, for konsilium before migrations
MIN_INDEXED_CHARS = 3  # the trigram index answers only for 3+ characters
BUSY_TIMEOUT_S = 30.0  # a writer holds the lock for milliseconds; waiting beats losing an exchange

_COLUMNS = (
    "id",
    "time",
    "endpoint",
    "model",
    "role",
    "messages",
    "response",
    "finish_reason",
    "sources",
    "prompt_tokens",
    "completion_tokens",
    "timings",
    "status",
    "error",
    "client",
    "memories",
    "rating",
    "tool_calls",
    "output",
    "reasoning",
)
_RECORDED = tuple(name for name in _COLUMNS if name != "rating")  # a rating is set by `rate` alone, never reset
RATINGS = {"good": 1, "bad": -1, "none": 0}
_JSON_COLUMNS = ("messages", "sources", "timings", "memories", "tool_calls")
OUTPUTS = ("text", "json", "tool_calls")  # what an answer was: prose, JSON for response_format, or tool calls


class MemoryStoreError(RuntimeError):
    """The conversation log cannot be opened or written (not a SQLite file, newer schema, disk trouble)."""


@dataclass
class Exchange:
    id: str  # the API response id, e.g. "chatcmpl-…"
    time: float  # unix time the request arrived
    endpoint: str  # "chat.completions" | "responses" | "completions" | "ask"
    model: str  # the model id the client asked for
    role: str | None  # the role (adapter) used, None for the base model
    messages: list[dict]  # the request messages as sent
    response: str  # the full answer text as returned to the client (citations included; tool calls: the model's text)
    finish_reason: str | None
    sources: list[dict]  # [{"note", "heading", "score"}]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    timings: dict = field(default_factory=dict)
    status: str = "ok"  # "ok" | "error" | "cancelled"
    error: str | None = None
    client: str | None = None
    memories: list[str] = field(default_factory=list)  # ids of the memories the prompt carried
    rating: int = 0  # the user's mark: 1 good, -1 bad, 0 none (training datasets select by it)
    tool_calls: list[dict] = field(default_factory=list)  # the calls the answer made, as OpenAI returns them
    output: str = "text"  # one of OUTPUTS: tool calls and JSON are not prose to learn facts or style from
    reasoning: str = ""  # the model's `<think>` text, kept apart: never the answer, never learned from

    @property
    def question(self) -> str:
        """The text of the last user message (what the exchange answered)."""
        for message in reversed(self.messages or []):
            if isinstance(message, dict) and message.get("role") == "user":
                return content_text(message.get("content"))
        return ""


def content_text(content: Any) -> str:
    """Plain text of a message `content`: a string, or OpenAI content parts [{"type": "text", "text": ...}]."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(content_text(part.get("text") if isinstance(part, dict) else part) for part in content)
    return str(content)


def fold(text: str) -> str:
    """Case- and form-insensitive text for search: NFC (a decomposed "й" equals the composed one), casefold
    (Cyrillic, Greek, German ß…), and "ё" as "е" because Russian writers use them interchangeably."""
    return unicodedata.normalize("NFC", text).casefold().replace("ё", "е")


def _search_text(exchange: Exchange) -> str:
    parts = [content_text(m.get("content")) if isinstance(m, dict) else str(m) for m in exchange.messages or []]
    return fold("\n".join([*parts, exchange.response or ""]))


def _dumps(value: Any) -> str:
    # default=str: a stray non-JSON value (a numpy float in timings) must not cost the user the conversation.
    return json.dumps(value, ensure_ascii=False, default=str)


class ConversationLog:
    """One SQLite connection guarded by a lock: the server records from worker threads, SQLite serializes
    writers across processes with its own lock (and our busy timeout)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if self.path.exists() and not self.path.is_file():
            raise MemoryStoreError(f"{self.path}: exists and is not a file (expected the conversation log)")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # Every conversation is private: created 0600 (SQLite gives its -wal and -shm files the same mode).
            create_private_file(self.path)
            self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
            self._db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            # The first statement that reads the file: a non-SQLite file fails here.
            self._enable_wal()
            self._db.execute("PRAGMA synchronous = FULL")
            self._ensure_schema()
        except sqlite3.DatabaseError as exc:
            self._close_quietly()
            raise MemoryStoreError(f"{self.path}: not a usable konsilium conversation log ({exc})") from exc
        except OSError as exc:
            self._close_quietly()
            raise MemoryStoreError(f"{self.path}: cannot open the conversation log ({exc})") from exc
        except MemoryStoreError:
            self._close_quietly()
            raise

    def _enable_wal(self) -> None:
        """Switching to WAL can answer "database is locked" at once, without the busy handler, while another
        process switches the same new file: retry until the busy timeout, as SQLite would for other writes."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        delay = 0.005
        while True:
            try:
                self._db.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.2)

    @classmethod
    def open_home(cls, home) -> ConversationLog:
        return cls(log_path(home))

    def _ensure_schema(self) -> None:
        try:
            migrations.migrate(self._db)
        except migrations.SchemaError as exc:
            raise MemoryStoreError(f"{self.path}: {exc}") from exc

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise MemoryStoreError(f"{self.path}: the conversation log is closed")
        return self._db

    def record(self, exchange: Exchange) -> None:
        """Store `exchange` (replacing one with the same id); it is on disk when this returns."""
        if not isinstance(exchange.id, str) or not exchange.id:
            raise ValueError("an exchange needs a non-empty string id")
        row = {name: getattr(exchange, name) for name in _RECORDED}
        for name in _JSON_COLUMNS:
            row[name] = _dumps(row[name] if row[name] is not None else ({} if name == "timings" else []))
        row["response"] = row["response"] or ""
        row["search_text"] = _search_text(exchange)
        names = ", ".join(row)
        marks = ", ".join(f":{name}" for name in row)
        # An upsert, not INSERT OR REPLACE: REPLACE's implicit delete fires no trigger, which would leave the
        # replaced text in the search index.
        updates = ", ".join(f"{name} = excluded.{name}" for name in row if name != "id")
        sql = f"INSERT INTO exchanges ({names}) VALUES ({marks}) ON CONFLICT (id) DO UPDATE SET {updates}"
        with self.transaction(f"record exchange {exchange.id}") as db:
            db.execute(sql, row)

    def get(self, exchange_id: str) -> Exchange | None:
        rows = self._query(f"SELECT {', '.join(_COLUMNS)} FROM exchanges WHERE id = ?", (exchange_id,))
        return _exchange(rows[0]) if rows else None

    def ids_with_prefix(self, prefix: str, limit: int = 10) -> list[str]:
        """Ids starting with `prefix` (case-sensitive, as ids are), newest first: `history show` takes a prefix."""
        sql = "SELECT id FROM exchanges WHERE substr(id, 1, length(?1)) = ?1 ORDER BY time DESC, rowid DESC LIMIT ?2"
        return [r[0] for r in self._query(sql, (prefix, limit))]

    def list(
        self,
        search: str | None = None,
        limit: int | None = 50,
        offset: int = 0,
        model: str | None = None,
        since: float | None = None,
        until: float | None = None,
        rating: int | None = None,
    ) -> list[Exchange]:
        """Exchanges newest first; `search` keeps those whose messages or response hold every word of it
        (case-insensitive, any script); `since`/`until` bound the time; `limit=None` means all."""
        where, params = _filters(search, model, since, until, rating)
        # The page's rowids first, then their rows: sorting thousands of search hits by time is cheap on
        # (time, rowid) and slow when every hit drags its whole row (messages, response) into the sort.
        order = "ORDER BY time DESC, rowid DESC"
        page = f"SELECT rowid FROM exchanges{where} {order} LIMIT ? OFFSET ?"
        sql = f"SELECT {', '.join(_COLUMNS)} FROM exchanges WHERE rowid IN ({page}) {order}"
        limit = -1 if limit is None else max(0, int(limit))
        return [_exchange(r) for r in self._query(sql, (*params, limit, max(0, int(offset))))]

    def count(
        self,
        search: str | None = None,
        model: str | None = None,
        since: float | None = None,
        until: float | None = None,
        rating: int | None = None,
    ) -> int:
        where, params = _filters(search, model, since, until, rating)
        return self._query(f"SELECT count(*) FROM exchanges{where}", params)[0][0]

    def after(self, rowid: int, limit: int = 100) -> list[tuple[int, Exchange]]:
        """Exchanges recorded after `rowid`, oldest first, with their rowids: a reader that keeps its place (the
        memory extractor catching up)."""
        sql = f"SELECT rowid, {', '.join(_COLUMNS)} FROM exchanges WHERE rowid > ? ORDER BY rowid LIMIT ?"
        return [(row[0], _exchange(row[1:])) for row in self._query(sql, (int(rowid), int(limit)))]

    def rate(self, exchange_id: str, rating: int) -> bool:
        """Mark an exchange good (1), bad (-1) or neither (0); False when there is no such exchange."""
        if rating not in RATINGS.values():
            raise ValueError(f"a rating is one of {', '.join(RATINGS)}")
        with self.transaction(f"rate exchange {exchange_id}") as db:
            return db.execute("UPDATE exchanges SET rating = ? WHERE id = ?", (rating, exchange_id)).rowcount > 0

    def redact_user_text(self, exchange_id: str, replacement: str) -> bool:
        """Blank the user's new words in one exchange (its messages after the last assistant turn): what
        forgetting does to the log when `memory.redact_log_on_forget` is on. The answer is kept."""
        exchange = self.get(exchange_id)
        if exchange is None:
            return False
        messages = [dict(m) if isinstance(m, dict) else m for m in exchange.messages]
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "assistant":
                break
            if isinstance(message, dict) and message.get("role") == "user":
                message["content"] = replacement
        exchange.messages = messages
        self.record(exchange)
        return True

    @contextlib.contextmanager
    def transaction(self, what: str = "write"):
        """The connection inside one IMMEDIATE transaction, under the lock: committed when the block ends, rolled
        back if it raises (for the memory store, which keeps its tables in this file)."""
        with self._lock:
            db = self._conn()
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise MemoryStoreError(f"{self.path}: could not {what}: {exc}") from exc

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        return self._query(sql, params)

    def _query(self, sql: str, params: tuple) -> list[tuple]:
        with self._lock:
            db = self._conn()
            try:
                return db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise MemoryStoreError(f"{self.path}: could not read the conversation log: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._close_quietly()

    def _close_quietly(self) -> None:
        if self._db is not None:
            try:
                self._db.close()
            finally:
                self._db = None

    def __enter__(self) -> ConversationLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def log_path(home) -> Path:
    """Where a home keeps its conversation log."""
    return Path(home.memory_dir) / DB_NAME


def _filters(
    search: str | None,
    model: str | None,
    since: float | None,
    until: float | None = None,
    rating: int | None = None,
) -> tuple[str, tuple]:
    clauses: list[str] = []
    params: list[Any] = []
    # Substring match on the folded text, so "контекст" also finds "контекста" and "контексте": words of three
    # characters or more through the trigram index (one phrase each), shorter ones by a scan with instr().
    words = fold(search or "").split()
    indexed = [word for word in words if len(word) >= MIN_INDEXED_CHARS]
    if indexed:
        clauses.append("rowid IN (SELECT rowid FROM exchanges_search WHERE exchanges_search MATCH ?)")
        params.append(" AND ".join(_phrase(word) for word in indexed))
    for word in words:
        if len(word) < MIN_INDEXED_CHARS:
            clauses.append("instr(search_text, ?) > 0")
            params.append(word)
    if model is not None:
        clauses.append("model = ?")
        params.append(model)
    if since is not None:
        clauses.append("time >= ?")
        params.append(float(since))
    if until is not None:
        clauses.append("time < ?")
        params.append(float(until))
    if rating is not None:
        clauses.append("rating = ?")
        params.append(int(rating))
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(params)


def _phrase(word: str) -> str:
    """An FTS5 string literal: the word matched as written (no query syntax), quotes doubled."""
    return '"' + word.replace('"', '""') + '"'


def _exchange(row: tuple) -> Exchange:
    values = dict(zip(_COLUMNS, row, strict=True))
    for name in _JSON_COLUMNS:
        values[name] = json.loads(values[name])
    return Exchange(**values)
