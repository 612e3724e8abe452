"""Migrations of the conversation log on real SQLite files: a log written by konsilium before migrations is
upgraded with its rows kept and searchable, a fresh log gets every migration, a second open changes nothing,
a log from a newer konsilium is refused untouched, and the FTS5 search answers exactly as the old scan did."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from konsilium.memory import DB_NAME, ConversationLog, MemoryStoreError, fold, migrations
from konsilium.memory.log import SCHEMA_VERSION

# The exact script konsilium wrote at schema version 1, frozen here: the migrations must accept its files.
V1_SCHEMA = """
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
"""

V1_ROWS = [
    ("chatcmpl-old1", "Что такое Контекст модели?", "Контекст — это окно в токенах."),
    ("chatcmpl-old2", "How big is the KV cache?", "It grows with the CONTEXT length."),
    ("chatcmpl-old3", "Ёлка", "ok"),
]


def write_v1_log(path) -> None:
    """A log as konsilium 1 left it: its schema, user_version 1, rows written the way it wrote them."""
    db = sqlite3.connect(path)
    db.executescript(V1_SCHEMA)
    db.execute("PRAGMA user_version = 1")
    for i, (exchange_id, question, answer) in enumerate(V1_ROWS):
        messages = [{"role": "user", "content": question}]
        db.execute(
            "INSERT OR REPLACE INTO exchanges (id, time, endpoint, model, role, messages, response, finish_reason,"
            " sources, prompt_tokens, completion_tokens, timings, status, error, client, search_text)"
            " VALUES (?, ?, 'chat.completions', 'konsilium', NULL, ?, ?, 'stop', '[]', 3, 4, '{}', 'ok', NULL, NULL,"
            " ?)",
            (
                exchange_id,
                1_700_000_000 + i,
                json.dumps(messages, ensure_ascii=False),
                answer,
                fold(f"{question}\n{answer}"),
            ),
        )
    db.commit()
    db.close()


def applied(path) -> list[tuple[str, float]]:
    with sqlite3.connect(path) as db:
        return db.execute(f"SELECT name, applied_at FROM {migrations.MIGRATIONS_TABLE} ORDER BY rowid").fetchall()


def user_version(path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("PRAGMA user_version").fetchone()[0]


def test_a_log_from_before_migrations_is_upgraded_with_its_rows_kept_and_searchable(tmp_path):
    path = tmp_path / DB_NAME
    write_v1_log(path)
    with ConversationLog(path) as log:
        assert sorted(e.id for e in log.list(limit=None)) == ["chatcmpl-old1", "chatcmpl-old2", "chatcmpl-old3"]
        old = log.get("chatcmpl-old1")
        assert old.response == "Контекст — это окно в токенах." and old.completion_tokens == 4
        assert [e.id for e in log.list(search="КОНТЕКСТ")] == ["chatcmpl-old1"]
        assert [e.id for e in log.list(search="context")] == ["chatcmpl-old2"]
        assert [e.id for e in log.list(search="елка")] == ["chatcmpl-old3"]
    assert [name for name, _ in applied(path)] == migrations.names()
    assert user_version(path) == SCHEMA_VERSION == len(migrations.MIGRATIONS)
    with sqlite3.connect(path) as db:  # the backfill is in the index itself, not answered by a scan
        hits = db.execute("SELECT rowid FROM exchanges_search WHERE exchanges_search MATCH '\"окно\"'").fetchall()
        assert len(hits) == 1


def test_a_fresh_log_gets_every_migration_in_order(tmp_path):
    path = tmp_path / DB_NAME
    ConversationLog(path).close()
    assert [name for name, _ in applied(path)] == migrations.names()
    assert migrations.names()[:3] == ["m001_exchanges", "m002_search_index", "m003_memories"]
    assert user_version(path) == len(migrations.MIGRATIONS)


def test_opening_again_applies_nothing(tmp_path, make):
    path = tmp_path / DB_NAME
    with ConversationLog(path) as log:
        log.record(make(1))
    first = applied(path)
    with ConversationLog(path) as log:
        assert log.count() == 1
    assert applied(path) == first  # same names, same applied_at: nothing ran again
    with sqlite3.connect(path, isolation_level=None) as db:
        assert migrations.migrate(db) == []


def test_a_log_with_a_migration_from_a_newer_konsilium_is_refused_untouched(tmp_path, make):
    path = tmp_path / DB_NAME
    with ConversationLog(path) as log:
        log.record(make(1))
    with sqlite3.connect(path) as db:
        db.execute(f"INSERT INTO {migrations.MIGRATIONS_TABLE} VALUES ('m999_reactions', 0)")
    before = applied(path)
    with pytest.raises(MemoryStoreError, match="newer konsilium.*m999_reactions") as caught:
        ConversationLog(path)
    assert str(path) in str(caught.value)
    assert applied(path) == before and user_version(path) == SCHEMA_VERSION  # no downgrade, nothing dropped


def test_history_on_a_log_from_a_newer_konsilium_is_one_clear_line(tmp_path, make):
    path = tmp_path / "home" / "memory" / DB_NAME
    with ConversationLog(path) as log:
        log.record(make(1))
    with sqlite3.connect(path) as db:
        db.execute(f"INSERT INTO {migrations.MIGRATIONS_TABLE} VALUES ('m999_reactions', 0)")
    proc = subprocess.run(
        [sys.executable, "-m", "konsilium.cli.main", "--home", str(tmp_path / "home"), "history"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "newer konsilium" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_failing_migration_leaves_the_file_as_it_was(tmp_path, make, monkeypatch):
    path = tmp_path / DB_NAME
    with ConversationLog(path) as log:
        log.record(make(1))

    def m004_broken(db):
        db.execute("CREATE TABLE reactions (id TEXT)")
        db.execute("ALTER TABLE exchanges ADD COLUMN mood TEXT")
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, m004_broken])
    with pytest.raises(MemoryStoreError, match="disk I/O error"):
        ConversationLog(path)
    with sqlite3.connect(path) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        columns = [r[1] for r in db.execute("PRAGMA table_info(exchanges)")]
    assert "reactions" not in tables and "mood" not in columns
    assert [name for name, _ in applied(path)] == migrations.names()[:-1]  # all but the broken one


def test_a_new_migration_runs_once_on_an_existing_log(tmp_path, make, monkeypatch):
    path = tmp_path / DB_NAME
    with ConversationLog(path) as log:
        log.record(make(1))
    runs = []

    def reactions(db):
        runs.append(1)
        db.execute("CREATE TABLE reactions (exchange_id TEXT, emoji TEXT)")

    number = len(migrations.MIGRATIONS) + 1
    reactions.__name__ = f"m{number:03d}_reactions"
    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, reactions])
    ConversationLog(path).close()
    ConversationLog(path).close()
    assert runs == [1]
    assert [name for name, _ in applied(path)][-1] == reactions.__name__ and user_version(path) == number


def test_migrations_must_be_registered_in_number_order():
    def skipped_ahead(db):
        pass

    count = len(migrations.MIGRATIONS)
    skipped_ahead.__name__ = f"m{count + 3:03d}_skipped_ahead"
    with pytest.raises(ValueError, match=f"out of order.*m{count + 1:03d}_"):
        migrations.migration(skipped_ahead)
    assert len(migrations.MIGRATIONS) == count


def test_two_processes_opening_a_fresh_log_at_once_migrate_it_once(tmp_path):
    path = tmp_path / DB_NAME
    opener = (
        "import sys; from pathlib import Path; from konsilium.memory import ConversationLog;"
        " ConversationLog(Path(sys.argv[1])).close()"
    )
    procs = [subprocess.Popen([sys.executable, "-c", opener, str(path)]) for _ in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    assert [name for name, _ in applied(path)] == migrations.names()


TEXTS = [
    "Расскажи про контекст беседы",
    "КОНТЕКСТНОЕ окно и RoPE scaling",
    "Ёлка, йогурт и \u0438\u0306од",  # a decomposed й
    'He said "quoted" AND NEAR(x y) -minus col:on *star',
    "Straße GPU VRAM",
    "ok",
]
QUERIES = [
    "контекст", "КОНТЕКСТ окно", "ёлка", "елка", "йод", "rope", "ро", "ok", "о", "gpu vram", '"quoted"', "AND",
    "NEAR(x", "-minus", "col:on", "*star", "strasse", "STRASSE", "нет", "контекст дела", "ск", '"',
]  # fmt: skip


def test_the_index_answers_exactly_as_a_scan_of_the_folded_text(tmp_path, make):
    with ConversationLog(tmp_path / DB_NAME) as log:
        for i, text in enumerate(TEXTS):
            log.record(make(i, messages=[{"role": "user", "content": text}], response=f"answer {i}"))
        for query in QUERIES:
            words = fold(query).split()
            expected = sorted(i for i, text in enumerate(TEXTS) if all(w in fold(f"{text}\nanswer {i}") for w in words))
            found = sorted(int(e.id.split("-")[1]) for e in log.list(search=query, limit=None))
            assert found == expected, query
            assert log.count(search=query) == len(expected), query


def test_the_search_goes_through_the_index(tmp_path):
    with ConversationLog(tmp_path / DB_NAME) as log:
        from konsilium.memory.log import _filters  # the same WHERE that list() and count() use

        where, params = _filters("контекст", None, None)
        plan = log._query(f"EXPLAIN QUERY PLAN SELECT id FROM exchanges{where}", params)
    assert any("exchanges_search VIRTUAL TABLE INDEX" in row[-1] for row in plan)


def test_history_search_on_a_home_from_before_migrations(tmp_path):
    path = tmp_path / "home" / "memory" / DB_NAME
    path.parent.mkdir(parents=True)
    write_v1_log(path)
    proc = subprocess.run(
        [sys.executable, "-m", "konsilium.cli.main", "--home", str(tmp_path / "home"), "history"]
        + ["--search", "контекст", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert [e["id"] for e in json.loads(proc.stdout)] == ["chatcmpl-old1"]
    assert user_version(path) == SCHEMA_VERSION  # reading an old log upgrades it once


def test_keyed_memories_written_before_their_key_was_indexed_are_found_by_it_after_the_upgrade(tmp_path):
    from konsilium.memory.records import Memory
    from konsilium.memory.store import MemoryStore

    path = tmp_path / DB_NAME
    with ConversationLog(path) as log:
        store = MemoryStore(log)
        store.add(Memory(id="mem-role", text="С июня я тимлид в Авито", key="job.role", created=1.0))
    with sqlite3.connect(path) as db:  # as konsilium wrote it before m008: the text's stems alone
        db.execute("UPDATE memories SET terms = 'июн тимлид авит' WHERE id = 'mem-role'")
        db.execute(f"DELETE FROM {migrations.MIGRATIONS_TABLE} WHERE name = 'm008_memory_key_terms'")
        db.execute("PRAGMA user_version = 7")
    with ConversationLog(path) as log:
        rowid = log.query("SELECT rowid FROM memories WHERE id = 'mem-role'")[0][0]
        assert MemoryStore(log).with_token("kzjob") == {rowid}
