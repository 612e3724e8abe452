"""`konsilium eval memory` on the public sample (the project's goal: hit ≥ 0.9, leak ≤ 0.05, no forget leak) and
`konsilium memory …` as a user drives it, with --json for scripts and one clear line for bad input."""

from __future__ import annotations

import json

from shared_data import SHARED, needs
from typer.testing import CliRunner

from konsilium.cli.main import app

SESSIONS = SHARED / "eval" / "memory-sample-sessions.jsonl"
QUESTIONS = SHARED / "eval" / "memory-sample-questions.jsonl"


def run(home, *args):
    result = CliRunner().invoke(app, ["--home", str(home), *args])
    return result


@needs(SESSIONS)
def test_eval_memory_on_the_public_sample_meets_the_goal(tmp_path):
    result = run(
        tmp_path / "home", "eval", "memory", "--sessions", str(SESSIONS), "--questions", str(QUESTIONS), "--json"
    )
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert scores["k"] == 5 and scores["questions"] == 8
    assert scores["current_hit"] >= 0.9 and scores["stale_leak"] <= 0.05
    assert scores["by_kind"]["forget"]["leak"] == 0
    assert set(scores["per_question"][0]) >= {"question", "kind", "hit", "leak", "memories"}


def test_eval_memory_names_the_bad_line(tmp_path):
    sessions = tmp_path / "s.jsonl"
    sessions.write_text('{"session": "a", "time": "2026-01-01T00:00:00Z", "messages": []}\n{oops\n', encoding="utf-8")
    result = run(tmp_path / "home", "eval", "memory", "--sessions", str(sessions), "--questions", str(sessions))
    assert result.exit_code == 1 and f"{sessions}:2: not JSON" in result.output.replace("\n", "")


def test_memory_commands_add_search_pin_export_and_forget(tmp_path):
    home = tmp_path / "home"
    added = json.loads(
        run(home, "memory", "add", "My sister Ira lives in Minsk", "--about", "sister Ira", "--json").stdout
    )
    run(home, "memory", "add", "I prefer short answers", "--kind", "preference")
    found = json.loads(run(home, "memory", "search", "Где живёт сестра?", "--k", "1", "--json").stdout)["memories"]
    assert found[0]["id"] == added["id"]
    assert run(home, "memory", "pin", added["id"][:8]).exit_code == 0
    listed = json.loads(run(home, "memory", "list", "--pinned", "--json").stdout)
    assert [m["id"] for m in listed["memories"]] == [added["id"]]
    notes = json.loads(run(home, "memory", "export", str(tmp_path / "vault" / "Memory"), "--json").stdout)["written"]
    assert len(notes) == 2 and any(
        "konsilium_memory: " + added["id"] in open(n, encoding="utf-8").read() for n in notes
    )
    forgot = json.loads(run(home, "memory", "forget", "--query", "I prefer short answers", "--json").stdout)
    assert len(forgot["forgotten"]) == 1
    left = list((tmp_path / "vault" / "Memory").glob("*.md"))  # its exported note is gone from the vault too
    assert len(left) == 1 and added["id"] in left[0].name
    history = json.loads(run(home, "memory", "history", forgot["forgotten"][0], "--json").stdout)["history"]
    assert [e["event"] for e in history] == ["ADD", "DELETE"] and history[0]["new_text"] is None  # words erased
    missing = run(home, "memory", "show", "mem-doesnotexist")
    assert missing.exit_code == 1 and "no memory 'mem-doesnotexist'" in missing.output
    both = run(home, "memory", "forget", added["id"], "--query", "x")
    assert both.exit_code == 2 and "one of them" in both.output


def test_past_conversations_are_searchable_by_meaning_across_languages(tmp_path):
    from konsilium.config import open_home
    from konsilium.memory import ConversationLog, Exchange, log_path

    home = tmp_path / "home"
    said = {
        "chatcmpl-db": ("Which database should the billing service use?", "We agreed on PostgreSQL, not MongoDB."),
        "chatcmpl-cake": ("How long do I bake a sponge cake?", "About 30 minutes at 180 °C."),
    }
    with ConversationLog(log_path(open_home(home))) as log:
        for i, (exchange_id, (question, answer)) in enumerate(said.items()):
            messages = [{"role": "user", "content": question}]
            log.record(
                Exchange(exchange_id, 1.7e9 + i, "chat.completions", "konsilium", None, messages, answer, "stop", [])
            )
    assert run(home, "memory", "update").exit_code == 0  # the pass the server runs after every answer
    found = json.loads(
        run(home, "memory", "search", "Что мы решили насчёт базы данных?", "--conversations", "--json").stdout
    )["conversations"]
    assert [c["id"] for c in found] == ["chatcmpl-db", "chatcmpl-cake"]  # best first, the user reads the scores
    assert "PostgreSQL" in found[0]["text"] and found[0]["kind"] == "conversation"
    assert found[0]["score"] > found[1]["score"]
