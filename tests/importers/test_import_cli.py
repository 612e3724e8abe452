"""`konsilium import chatgpt|claude` through a Typer app that mounts import_app as the lead does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from konsilium.cli.import_cmd import import_app

EXPORTS = Path(__file__).resolve().parents[2].parent / "shared" / "chat-exports"
CHATGPT = EXPORTS / "chatgpt-conversations.json"
CLAUDE = EXPORTS / "claude-conversations.json"

pytestmark = pytest.mark.skipif(not CHATGPT.is_file(), reason="shared chat exports not available")

app = typer.Typer()
app.add_typer(import_app, name="import")


@pytest.fixture
def runner(monkeypatch):
    monkeypatch.delenv("KONSILIUM_VAULT", raising=False)
    return CliRunner()


def _run(runner, *args, **kw):
    return runner.invoke(app, ["import", *map(str, args)], **kw)


def test_chatgpt_json_then_reimport_unchanged(runner, tmp_path):
    first = _run(runner, "chatgpt", CHATGPT, "--vault", tmp_path, "--json")
    assert first.exit_code == 0, first.output
    result = json.loads(first.stdout)
    assert result["provider"] == "chatgpt" and result["conversations"] == 17
    assert len(result["created_conversations"]) == 17 and result["skipped"] == []
    assert (tmp_path / "0_chatgpt").is_dir()
    again = json.loads(_run(runner, "chatgpt", CHATGPT, "--vault", tmp_path, "--json").stdout)
    assert again["notes_written"] == 0 and again["updated"] == 0
    assert len(again["unchanged_conversations"]) == 17


def test_claude_human_summary_with_env_vault_and_folder(runner, tmp_path):
    res = _run(runner, "claude", CLAUDE, "--folder", "Chats/Claude", env={"KONSILIUM_VAULT": str(tmp_path)})
    assert res.exit_code == 0, res.output
    assert "claude: 51 conversations" in res.stdout and "51 new" in res.stdout
    assert "skipped 3" in res.stdout and "no messages" in res.stdout
    assert len(list((tmp_path / "Chats" / "Claude").glob("*.md"))) == 51


def test_vault_is_required_without_env(runner, tmp_path):
    res = _run(runner, "chatgpt", CHATGPT)
    assert res.exit_code != 0
    assert "--vault" in res.output


@pytest.mark.parametrize(
    ("command", "make_file", "message"),
    [
        ("chatgpt", lambda p: None, "ChatGPT export not found"),
        ("chatgpt", lambda p: p.write_text("{oops", encoding="utf-8"), "not valid JSON"),
        ("chatgpt", lambda p: p.write_bytes(CLAUDE.read_bytes()), "looks like a Claude export"),
        ("claude", lambda p: p.write_bytes(CHATGPT.read_bytes()), "looks like a ChatGPT export"),
    ],
)
def test_bad_input_exits_1_with_message_on_stderr(runner, tmp_path, command, make_file, message):
    export = tmp_path / "export.json"
    make_file(export)
    vault = tmp_path / "vault"
    vault.mkdir()
    res = _run(runner, command, export, "--vault", vault, "--json")
    assert res.exit_code == 1
    assert message in res.stderr and res.stdout == ""
    assert list(vault.iterdir()) == []


def test_missing_vault_dir_exits_1(runner, tmp_path):
    res = _run(runner, "claude", CLAUDE, "--vault", tmp_path / "nope")
    assert res.exit_code == 1 and "vault directory does not exist" in res.stderr


def test_folder_outside_vault_exits_1(runner, tmp_path):
    res = _run(runner, "claude", CLAUDE, "--vault", tmp_path, "--folder", "../escape")
    assert res.exit_code == 1 and "folder must be a relative path" in res.stderr
    assert not (tmp_path.parent / "escape").exists()
