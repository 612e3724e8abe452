"""`konsilium history` as the user runs it, over a log written with the Python API: through the real typer app in
this process (a process start costs seconds of imports), and the installed command in a subprocess where the
process is what is tested (its exit status and output, `--home` given to the group, a writer in another process)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime

import pytest
from cli_runner import KONSILIUM, run_process
from cli_runner import run_with_home as run

from konsilium.memory import DB_NAME, ConversationLog


@pytest.fixture
def home(tmp_path, make):
    """A home whose log holds three exchanges, the newest a Russian one with a role."""
    root = tmp_path / "home"
    with ConversationLog(root / "memory" / DB_NAME) as log:
        log.record(make(1, id="chatcmpl-aaa111", messages=[{"role": "user", "content": "Hello there"}]))
        log.record(make(2, id="chatcmpl-aab222", model="other", response="Second answer", completion_tokens=7))
        log.record(
            make(
                3,
                id="chatcmpl-bbb333",
                role="юрист",
                messages=[
                    {"role": "system", "content": "s"},
                    {"role": "user", "content": "Что такое Контекст?\nи ещё"},
                ],
                response="ПРИВЕТ. Контекст — это [[окно]].",
                sources=[{"note": "окно.md", "heading": None, "score": 0.5}],
                prompt_tokens=11,
                completion_tokens=4,
                timings={"total_ms": 120.0},
            )
        )
    return root


def test_an_empty_log_lists_nothing_and_creates_nothing(tmp_path):
    root = tmp_path / "fresh"
    assert json.loads(run_process(root, "history", "--json").stdout) == []  # the installed command's own output
    assert "no conversations recorded yet" in run(root, "history").stdout
    assert not (root / "memory" / DB_NAME).exists()  # reading never creates the log
    run_process(root, "history", "show", "chatcmpl-x", code=1)


def test_json_lists_newest_first_with_the_documented_keys(home):
    items = json.loads(run(home, "history", "--json").stdout)
    assert [i["id"] for i in items] == ["chatcmpl-bbb333", "chatcmpl-aab222", "chatcmpl-aaa111"]
    newest = items[0]
    for key in ("id", "time", "model", "role", "messages", "response", "sources", "finish_reason", "usage"):
        assert key in newest
    assert newest["role"] == "юрист" and newest["response"] == "ПРИВЕТ. Контекст — это [[окно]]."
    assert newest["usage"] == {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}
    assert newest["timings"] == {"total_ms": 120.0} and newest["status"] == "ok"
    assert newest["sources"] == [{"note": "окно.md", "heading": None, "score": 0.5}]
    when = datetime.fromisoformat(newest["time"])
    assert when.tzinfo is not None and abs(when.timestamp() - newest["unix_time"]) < 0.001


def test_search_model_and_limit(home):
    def ids(*args: str) -> list[str]:
        return [i["id"] for i in json.loads(run(home, "history", "--json", *args).stdout)]

    assert ids("--search", "контекст") == ["chatcmpl-bbb333"]  # the message says "Контекст"
    assert ids("--search", "привет") == ["chatcmpl-bbb333"]  # the response says "ПРИВЕТ"
    assert ids("--search", "HELLO") == ["chatcmpl-aaa111"]
    assert ids("--search", "nothing like it") == []
    assert ids("--model", "other") == ["chatcmpl-aab222"]
    assert ids("--limit", "2") == ["chatcmpl-bbb333", "chatcmpl-aab222"]
    assert ids("--limit", "1", "--offset", "2") == ["chatcmpl-aaa111"]
    assert "no conversations match" in run(home, "history", "--search", "nothing like it").stdout


def test_the_table_shows_question_answer_and_model(home):
    text = run(home, "history").stdout
    assert "Что такое Контекст?" in text and "и ещё" not in text  # first line of the last user message
    assert "ПРИВЕТ. Контекст" in text and "konsilium/юрист" in text and "11+4" in text
    assert text.index("chatcmpl-bbb333") < text.index("chatcmpl-aaa111")


def test_show_takes_a_unique_prefix(home):
    shown = json.loads(run(home, "history", "show", "chatcmpl-bb", "--json").stdout)
    assert shown["id"] == "chatcmpl-bbb333" and shown["messages"][0] == {"role": "system", "content": "s"}
    text = run(home, "history", "show", "chatcmpl-bbb333").stdout
    assert "Что такое Контекст?\nи ещё" in text and "[[окно]]" in text and "окно.md" in text
    assert "konsilium/юрист" in text and "11 prompt + 4 completion" in text
    # --home given to the group reaches the subcommand
    proc = subprocess.run([*KONSILIUM, "history", "--home", str(home), "show", "chatcmpl-aaa"], capture_output=True)
    assert proc.returncode == 0 and "Hello there" in proc.stdout.decode()


def test_unknown_and_ambiguous_ids_are_clear_errors(home):
    proc = run(home, "history", "show", "chatcmpl-zzz", code=1)
    assert "no conversation with id 'chatcmpl-zzz'" in proc.stderr and "Traceback" not in proc.stderr
    as_json = json.loads(run(home, "history", "show", "nope", "--json", code=1).stdout)
    assert "no conversation with id 'nope'" in as_json["error"]["message"]
    proc = run(home, "history", "show", "chatcmpl-aa", code=1)
    assert "several ids" in proc.stderr and "chatcmpl-aaa111" in proc.stderr and "chatcmpl-aab222" in proc.stderr


def test_a_log_that_is_not_sqlite_is_one_clear_line(tmp_path):
    path = tmp_path / "home" / "memory" / DB_NAME
    path.parent.mkdir(parents=True)
    path.write_text("not a database at all\n" * 100)
    proc = run_process(tmp_path / "home", "history", code=1)
    assert "not a usable konsilium conversation log" in proc.stderr and "Traceback" not in proc.stderr
    assert DB_NAME in proc.stderr.replace("\n", "")


def test_history_reads_while_a_writer_process_holds_the_log(home):
    holder = (
        "import sys; from pathlib import Path; from konsilium.memory import ConversationLog; "
        "log = ConversationLog(Path(sys.argv[1])); print('open', flush=True); sys.stdin.readline()"
    )
    writer = subprocess.Popen(
        [sys.executable, "-c", holder, str(home / "memory" / DB_NAME)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "open"
        assert len(json.loads(run(home, "history", "--json").stdout)) == 3
    finally:
        writer.stdin.close()
        writer.wait(timeout=60)
