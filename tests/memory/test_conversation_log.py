"""The conversation log on real files: every field back, order and filters, Russian search, thread and process
concurrency, clear errors for bad files."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from konsilium.config import open_home
from konsilium.memory import DB_NAME, ConversationLog, Exchange, MemoryStoreError


@pytest.fixture
def log(tmp_path):
    with ConversationLog(tmp_path / "memory" / DB_NAME) as opened:
        yield opened


def test_every_field_survives_a_round_trip_through_the_file(tmp_path):
    path = tmp_path / "deep" / "er" / DB_NAME  # parent folders are created
    exchange = Exchange(
        id="chatcmpl-9f8e7d6c",
        time=1751200000.123456,
        endpoint="chat.completions",
        model="konsilium:юрист",
        role="юрист",
        messages=[
            {"role": "system", "content": "Отвечай кратко."},
            {"role": "user", "content": "Что такое «контекст» — и почему 🙂?"},
            {"role": "user", "content": [{"type": "text", "text": "часть"}]},
        ],
        response="Контекст — это…\n\n[[заметка#Раздел]]",
        finish_reason="length",
        sources=[{"note": "папка/заметка.md", "heading": "Раздел", "score": 0.8125}],
        prompt_tokens=123,
        completion_tokens=45,
        timings={"retrieval_ms": 12.5, "first_token_ms": 80.0, "total_ms": 950.25},
        status="error",
        error="upstream timed out",
        client="obsidian-plugin",
    )
    with ConversationLog(path) as log:
        log.record(exchange)
    with ConversationLog(path) as log:  # a fresh connection: the data came from disk
        assert log.get(exchange.id) == exchange
        assert log.get("chatcmpl-missing") is None


def test_none_fields_and_defaults_round_trip(log, make):
    bare = make(1, finish_reason=None, role=None, response="", sources=[], messages=[])
    log.record(bare)
    assert log.get(bare.id) == bare


def test_open_home_puts_the_log_in_the_memory_dir(tmp_path):
    home = open_home(tmp_path / "home")
    with ConversationLog.open_home(home) as log:
        assert log.path == home.memory_dir / "conversations.sqlite3"
    assert (home.memory_dir / "conversations.sqlite3").is_file()


def test_list_is_newest_first_with_limit_offset_model_and_since(log, make):
    for i in (3, 0, 4, 1, 2):  # recorded out of order on purpose
        log.record(make(i, model="other" if i % 2 else "konsilium"))
    assert [e.id for e in log.list()] == [make(i).id for i in (4, 3, 2, 1, 0)]
    assert [e.id for e in log.list(limit=2)] == [make(4).id, make(3).id]
    assert [e.id for e in log.list(limit=2, offset=2)] == [make(2).id, make(1).id]
    assert log.list(offset=5) == []
    assert [e.id for e in log.list(model="other")] == [make(3).id, make(1).id]
    assert [e.id for e in log.list(since=make(3).time)] == [make(4).id, make(3).id]
    assert len(log.list(limit=None)) == log.count() == 5


def test_search_folds_case_for_russian_and_english_in_messages_and_response(log, make):
    log.record(make(1, messages=[{"role": "user", "content": "Расскажи про контекст беседы"}], response="Хорошо."))
    log.record(make(2, messages=[{"role": "user", "content": "Hi"}], response="ПРИВЕТ! Как дела?"))
    log.record(make(3, messages=[{"role": "system", "content": "Mention the GPU"}], response="VRAM matters"))
    log.record(make(4, messages=[{"role": "user", "content": "Ёлка и йогурт"}], response="ok"))

    def ids(text: str) -> list[int]:
        return sorted(int(e.id.split("-")[1]) for e in log.list(search=text))

    assert ids("Контекст") == [1]  # upper case query, lower case message
    assert ids("КОНТЕКСТА") == []  # a longer word is not a match…
    assert ids("контекс") == [1]  # …a part of one is
    assert ids("привет") == [2]  # lower case query, upper case response
    assert ids("ПрИвЕт") == [2]
    assert ids("gpu") == [3] and ids("vram") == [3]  # English, system message and response
    assert ids("hi") == [2] and ids("HI") == [2]
    assert ids("елка") == [4] and ids("ЁЛКА") == [4]  # ё and е are the same letter to searchers
    assert ids("ЙОГУРТ") == [4] and ids("и\u0306огурт") == [4]  # й composed or decomposed
    assert ids("иогурт") == []  # but й is not и
    assert ids("контекст беседы") == [1] and ids("контекст дела") == []  # every word must occur
    assert ids("   ") == [1, 2, 3, 4]  # an empty search is no filter
    assert log.count(search="привет") == 1 and log.count(search="нет такого") == 0


def test_content_parts_are_searchable(log, make):
    parts = [{"type": "text", "text": "Что в ЗАМЕТКЕ?"}, {"type": "image_url", "image_url": {"url": "x"}}]
    log.record(make(1, messages=[{"role": "user", "content": parts}]))
    assert [e.messages for e in log.list(search="заметке")] == [[{"role": "user", "content": parts}]]


def test_recording_an_id_again_replaces_it(log, make):
    log.record(make(1, response="partial", status="cancelled"))
    log.record(make(1, response="the full answer", completion_tokens=9))
    assert log.count() == 1
    again = log.get(make(1).id)
    assert again.response == "the full answer" and again.status == "ok" and again.completion_tokens == 9
    assert log.list(search="partial") == []


def test_eight_threads_recording_at_once(log, make):
    errors: list[BaseException] = []

    def writer(t: int) -> None:
        try:
            for i in range(50):
                log.record(make(t * 1000 + i))
                log.list(limit=3)  # readers interleave with the writers
        except BaseException as exc:  # reported below, in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert log.count() == 400
    assert len({e.id for e in log.list(limit=None)}) == 400


WRITER = """
import sys, time
from pathlib import Path
from konsilium.memory import ConversationLog, Exchange
log = ConversationLog(Path(sys.argv[1]))
for i in range(int(sys.argv[3])):
    log.record(Exchange(id=f"{sys.argv[2]}-{i}", time=time.time(), endpoint="ask", model="konsilium", role=None,
                        messages=[{"role": "user", "content": "вопрос"}], response="ответ", finish_reason="stop",
                        sources=[], client="cli"))
"""


def test_two_processes_writing_the_same_log(tmp_path):
    path = tmp_path / DB_NAME
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), name, "100"]) for name in ("a", "b")]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    with ConversationLog(path) as log:
        assert log.count() == 200


def test_not_a_sqlite_file_is_a_clear_error_naming_the_path(tmp_path):
    path = tmp_path / "memory" / DB_NAME
    path.parent.mkdir()
    path.write_bytes(b"these are my notes, not a database\n" * 200)
    with pytest.raises(MemoryStoreError, match="not a usable konsilium conversation log") as caught:
        ConversationLog(path)
    assert str(path) in str(caught.value)
    assert path.read_bytes().startswith(b"these are my notes")  # left untouched


def test_a_directory_at_the_path_is_a_clear_error(tmp_path):
    (tmp_path / DB_NAME).mkdir()
    with pytest.raises(MemoryStoreError, match="not a file"):
        ConversationLog(tmp_path / DB_NAME)


def test_another_programs_sqlite_database_is_refused(tmp_path):
    path = tmp_path / DB_NAME
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE photos (id INTEGER)")
    with pytest.raises(MemoryStoreError, match="not a konsilium conversation log.*photos"):
        ConversationLog(path)


def test_a_log_from_a_newer_konsilium_is_refused(tmp_path, make):
    path = tmp_path / DB_NAME
    with ConversationLog(path) as log:
        log.record(make(1))
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(MemoryStoreError, match="newer konsilium.*schema 99"):
        ConversationLog(path)


def test_a_closed_log_says_so(tmp_path, make):
    log = ConversationLog(tmp_path / DB_NAME)
    log.close()
    with pytest.raises(MemoryStoreError, match="closed"):
        log.record(make(1))
    log.close()  # twice is fine


def test_wal_and_full_sync_are_in_force(log):
    db = log._conn()
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_the_memory_package_imports_only_the_standard_library():
    code = (
        "import sys, konsilium.memory; "
        "heavy = [m for m in ('torch', 'lancedb', 'numpy', 'typer', 'rich', 'yaml') if m in sys.modules]; "
        "print(json.dumps(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_a_json_unfriendly_value_is_stored_rather_than_lost(log, make):
    log.record(make(1, timings={"total_ms": Path("x")}))
    assert log.get(make(1).id).timings == {"total_ms": "x"}


def test_an_empty_id_is_refused(log, make):
    with pytest.raises(ValueError):
        log.record(make(1, id=""))


def test_prefix_lookup_is_case_sensitive_and_newest_first(log, make):
    log.record(make(1, id="chatcmpl-AbC1"))
    log.record(make(2, id="chatcmpl-AbC2"))
    log.record(make(3, id="chatcmpl-xyz"))
    assert log.ids_with_prefix("chatcmpl-AbC") == ["chatcmpl-AbC2", "chatcmpl-AbC1"]
    assert log.ids_with_prefix("chatcmpl-abc") == []
    assert log.ids_with_prefix("chatcmpl-x") == ["chatcmpl-xyz"]
    assert log.ids_with_prefix("chatcmpl-%") == []  # no LIKE wildcards
