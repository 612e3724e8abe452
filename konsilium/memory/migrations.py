"""Schema migrations of the conversation log, in simonw/llm's pattern (llm/migrations.py).

Each migration is a function `mNNN_what(db)` registered in order with `@migration`; the table
`_konsilium_migrations` names those that ran. `migrate()` applies the missing ones exactly once, in order, in
one IMMEDIATE transaction, so two processes opening a fresh log at once cannot both run one, and a failure
leaves the file as it was. To change the schema, append `m00N_what` at the end; never edit one that shipped.

`PRAGMA user_version` is kept equal to the number of migrations applied: konsilium before migrations read only
that number and refuses a log whose number is higher than its own, which stops an old version from writing
rows the newer schema (the search index) would not see.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

MIGRATIONS_TABLE = "_konsilium_migrations"

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[Migration] = []


class SchemaError(Exception):
    """The file cannot be brought to this version's schema (another program's database, a newer konsilium)."""


def migration(fn: Migration) -> Migration:
    """Register `fn` as the next migration; its name must carry the next number (m001_, m002_, ...)."""
    expected = f"m{len(MIGRATIONS) + 1:03d}_"
    if not fn.__name__.startswith(expected):
        raise ValueError(f"migration {fn.__name__!r} is out of order: the next one must be named {expected}...")
    MIGRATIONS.append(fn)
    return fn


def names() -> list[str]:
    return [fn.__name__ for fn in MIGRATIONS]


def _execute_script(db: sqlite3.Connection, script: str) -> None:
    # One by one: executescript() would COMMIT the caller's transaction before running.
    for statement in _statements(script):
        db.execute(statement)


def _statements(script: str) -> list[str]:
    """Whole statements, as SQLite itself sees them: a trigger body's `;` does not end the CREATE TRIGGER."""
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement in a migration: {pending.strip()[:80]!r}")
    return statements


@migration
def m001_exchanges(db: sqlite3.Connection) -> None:
    """The log as it was at schema version 1 (before migrations existed), exactly."""
    _execute_script(
        db,
        """
CREATE TABLE exchanges (
    id TEXT PRIMARY KEY,
    time REAL NOT NULL,
    endpoint TEXT NOT NULL,
    model TEXT NOT NULL,
    role TEXT,
    messages TEXT NOT NULL,           -- JSON list of {"role", "content"}
    response TEXT NOT NULL,
    finish_reason TEXT,
    sources TEXT NOT NULL,            -- JSON list of {"note", "heading", "score"}
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    timings TEXT NOT NULL,            -- JSON object
    status TEXT NOT NULL,
    error TEXT,
    client TEXT,
    search_text TEXT NOT NULL         -- fold(messages + response): SQLite's lower()/LIKE fold ASCII only
);
CREATE INDEX exchanges_by_time ON exchanges (time DESC);
CREATE INDEX exchanges_by_model ON exchanges (model, time DESC);
""",
    )


@migration
def m002_search_index(db: sqlite3.Connection) -> None:
    """History search through FTS5 instead of a scan: a trigram index over `search_text` (already folded by
    Python, hence case_sensitive 1: a match is exactly a substring of the folded text, as the scan's instr()).
    External content, so the text is not stored twice; triggers keep it in step with `exchanges`."""
    _execute_script(
        db,
        """
CREATE VIRTUAL TABLE exchanges_search USING fts5(
    search_text, content='exchanges', content_rowid='rowid', tokenize='trigram case_sensitive 1'
);
CREATE TRIGGER exchanges_search_insert AFTER INSERT ON exchanges BEGIN
    INSERT INTO exchanges_search (rowid, search_text) VALUES (new.rowid, new.search_text);
END;
CREATE TRIGGER exchanges_search_delete AFTER DELETE ON exchanges BEGIN
    INSERT INTO exchanges_search (exchanges_search, rowid, search_text) VALUES ('delete', old.rowid, old.search_text);
END;
CREATE TRIGGER exchanges_search_update AFTER UPDATE ON exchanges BEGIN
    INSERT INTO exchanges_search (exchanges_search, rowid, search_text) VALUES ('delete', old.rowid, old.search_text);
    INSERT INTO exchanges_search (rowid, search_text) VALUES (new.rowid, new.search_text);
END;
INSERT INTO exchanges_search (exchanges_search) VALUES ('rebuild');
""",
    )


def migrate(db: sqlite3.Connection) -> list[str]:
    """Bring `db` (autocommit connection) to the latest schema; returns the names applied (empty: up to date).
    Raises SchemaError for another program's database or a log written by a newer konsilium."""
    if not _pending(db)[1]:
        return []  # the usual case: no write lock, so a reader never waits on the server
    # IMMEDIATE: two processes opening a fresh log at once must not both run a migration.
    db.execute("BEGIN IMMEDIATE")
    try:
        adopted, pending = _pending(db)  # again: another process may have migrated while we waited for the lock
        if pending:
            db.execute(f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (name TEXT PRIMARY KEY, applied_at REAL)")
            for name in adopted:
                db.execute(f"INSERT INTO {MIGRATIONS_TABLE} (name, applied_at) VALUES (?, NULL)", (name,))
            for fn in pending:
                fn(db)
                db.execute(
                    f"INSERT INTO {MIGRATIONS_TABLE} (name, applied_at) VALUES (?, ?)", (fn.__name__, time.time())
                )
            db.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")
        db.execute("COMMIT")
        return [fn.__name__ for fn in pending]
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _pending(db: sqlite3.Connection) -> tuple[list[str], list[Migration]]:
    """(adopted, pending): the migrations this file still needs, in order, and the names to record as applied
    without running them: a log from before migrations (user_version 1) has m001's schema already."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    adopted: list[str] = []
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    known = names()
    if version > len(known):
        raise SchemaError(
            f"written by a newer konsilium (log schema {version}; this version reads up to {len(known)}); "
            "upgrade konsilium or point --home elsewhere"
        )
    if MIGRATIONS_TABLE in tables:
        applied = [r[0] for r in db.execute(f"SELECT name FROM {MIGRATIONS_TABLE} ORDER BY rowid")]
        unknown = [name for name in applied if name not in known]
        if unknown:
            raise SchemaError(
                f"written by a newer konsilium (log migration {', '.join(unknown)} is unknown to this version); "
                "upgrade konsilium or point --home elsewhere"
            )
    elif version == 1 and "exchanges" in tables:
        applied = adopted = [known[0]]  # the schema-1 log konsilium wrote before migrations existed
    elif version == 0 and tables:
        raise SchemaError(f"a SQLite database but not a konsilium conversation log (tables: {', '.join(tables[:5])})")
    elif version == 0:
        applied = []
    else:
        raise SchemaError(f"log schema {version} without its migration record; not a log this konsilium wrote")
    return adopted, [fn for fn in MIGRATIONS if fn.__name__ not in applied]


@migration
def m003_memories(db: sqlite3.Connection) -> None:
    """Memories drawn from the conversations (mem0's operations: ADD / UPDATE / DELETE / NOOP, with history), the
    extraction cursor, and which memories each exchange's prompt carried."""
    _execute_script(
        db,
        """
CREATE TABLE memories (
    id TEXT PRIMARY KEY,              -- "mem-" + hex
    text TEXT NOT NULL,               -- '' once forgotten (the words are gone; the tombstone stays)
    about TEXT NOT NULL,              -- "user", or who it is about ("sister Ира")
    kind TEXT NOT NULL,
    key TEXT,                         -- subject key: same about + key, the newer statement supersedes
    status TEXT NOT NULL,             -- current | superseded | forgotten
    pinned INTEGER NOT NULL DEFAULT 0,
    origin TEXT NOT NULL,             -- rules | model | user
    created REAL NOT NULL,            -- when it was said
    updated REAL NOT NULL,
    exchange_id TEXT,                 -- the exchange it came from (NULL: added by hand)
    superseded_by TEXT,
    fingerprint TEXT NOT NULL,        -- the statement's stems: a forgotten one is not re-extracted
    terms TEXT NOT NULL,              -- stems for full-text search
    vector BLOB                       -- float32, unit length, from the memory embedder
);
CREATE INDEX memories_by_status ON memories (status, about, key);
CREATE INDEX memories_by_fingerprint ON memories (fingerprint);
CREATE VIRTUAL TABLE memories_search USING fts5(terms, content='memories', content_rowid='rowid');
CREATE TRIGGER memories_search_insert AFTER INSERT ON memories BEGIN
    INSERT INTO memories_search (rowid, terms) VALUES (new.rowid, new.terms);
END;
CREATE TRIGGER memories_search_delete AFTER DELETE ON memories BEGIN
    INSERT INTO memories_search (memories_search, rowid, terms) VALUES ('delete', old.rowid, old.terms);
END;
CREATE TRIGGER memories_search_update AFTER UPDATE OF terms ON memories BEGIN
    INSERT INTO memories_search (memories_search, rowid, terms) VALUES ('delete', old.rowid, old.terms);
    INSERT INTO memories_search (rowid, terms) VALUES (new.rowid, new.terms);
END;
CREATE TABLE memory_history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    memory_id TEXT NOT NULL,
    event TEXT NOT NULL,              -- ADD | UPDATE | DELETE | NOOP | EDIT | PIN | UNPIN
    old_text TEXT,
    new_text TEXT,
    time REAL NOT NULL,
    exchange_id TEXT,
    detail TEXT                       -- why (the rule or the model's reason), the superseding memory's id
);
CREATE INDEX memory_history_by_memory ON memory_history (memory_id, seq);
CREATE TABLE memory_state (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE conversation_vectors (
    exchange_rowid INTEGER PRIMARY KEY,   -- the exchange, searchable as a past conversation
    exchange_id TEXT NOT NULL,
    time REAL NOT NULL,
    vector BLOB NOT NULL,             -- float32, unit length: the question and the start of the answer
    excluded INTEGER NOT NULL DEFAULT 0   -- 1: a memory drawn from it was forgotten, so it is never offered
);
ALTER TABLE exchanges ADD COLUMN memories TEXT NOT NULL DEFAULT '[]';
""",
    )


@migration
def m004_ratings(db: sqlite3.Connection) -> None:
    """The user's mark on an exchange (good / bad), so training datasets can take the good ones."""
    _execute_script(db, "ALTER TABLE exchanges ADD COLUMN rating INTEGER NOT NULL DEFAULT 0;")


@migration
def m005_tool_calls(db: sqlite3.Connection) -> None:
    """Tool calling and structured output: the calls an answer made (OpenAI's shape, JSON) and what kind of answer
    it was (`text`, `json` or `tool_calls`), so memory and training can leave the non-text ones alone."""
    _execute_script(
        db,
        """
ALTER TABLE exchanges ADD COLUMN tool_calls TEXT NOT NULL DEFAULT '[]';
ALTER TABLE exchanges ADD COLUMN output TEXT NOT NULL DEFAULT 'text';
""",
    )


@migration
def m006_tasks(db: sqlite3.Connection) -> None:
    """`konsilium task` and /v1/tasks: a task's goal, plan, steps (each model call, tool call and result), the
    action waiting for the user's approval and the final report, so a task can be continued from another process."""
    _execute_script(
        db,
        """
CREATE TABLE tasks (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    goal TEXT NOT NULL,
    model TEXT NOT NULL,
    status TEXT NOT NULL,             -- running, awaiting_approval, done, failed, cancelled
    plan TEXT NOT NULL DEFAULT '[]',  -- JSON list of step descriptions
    steps TEXT NOT NULL DEFAULT '[]', -- JSON list of {"n", "kind", ...}
    messages TEXT NOT NULL DEFAULT '[]', -- JSON: the conversation the loop continues from
    pending TEXT,                     -- JSON: the call waiting for approval
    result TEXT,
    error TEXT,
    options TEXT NOT NULL DEFAULT '{}' -- JSON: max_steps, max_seconds, approve, client
);
CREATE INDEX tasks_by_time ON tasks (created);
""",
    )


@migration
def m007_reasoning(db: sqlite3.Connection) -> None:
    """Thinking mode: the model's reasoning (`reasoning_content`) in a column of its own, so that the response stays
    the answer alone (what search, memory and training read)."""
    _execute_script(db, "ALTER TABLE exchanges ADD COLUMN reasoning TEXT NOT NULL DEFAULT '';")


@migration
def m008_memory_key_terms(db: sqlite3.Connection) -> None:
    """A memory's own subject key joins its full-text terms ("С июня я тимлид в Авито" is found by "Where do I
    work?" through job.role, though no word of it names work): the terms of keyed memories are written again."""
    from .records import terms

    rows = db.execute(
        "SELECT rowid, text, about, key FROM memories WHERE key IS NOT NULL AND status != 'forgotten'"
    ).fetchall()
    for rowid, text, about, key in rows:
        db.execute("UPDATE memories SET terms = ? WHERE rowid = ?", (terms(text, about, key), rowid))


@migration
def m009_memory_search_vector(db: sqlite3.Connection) -> None:
    """A memory's vector for search, said in context (`Memory.search_vector`); NULL: its own vector serves."""
    _execute_script(db, "ALTER TABLE memories ADD COLUMN search_vector BLOB;")
