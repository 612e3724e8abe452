"""Importing the real Claude export from ../shared/chat-exports."""

from __future__ import annotations

import json
import re
from datetime import UTC
from pathlib import Path

import pytest
import yaml

from konsilium.vault.importers import ImportInputError, import_claude

EXPORTS = Path(__file__).resolve().parents[2].parent / "shared" / "chat-exports"
CLAUDE = EXPORTS / "claude-conversations.json"
CHATGPT = EXPORTS / "chatgpt-conversations.json"

pytestmark = pytest.mark.skipif(not CLAUDE.is_file(), reason="shared chat exports not available")

RIBS_ID = "30600c4a-9513-41f9-9345-6739175f53ef"  # messages stored out of order, ties on created_at
MERMAID_NAME = "Mermaid Diagram for ChatGPTImportPlugin"  # a message with empty text + attachment


def _export() -> list[dict]:
    return json.loads(CLAUDE.read_text(encoding="utf-8"))


def _index_notes(folder: Path) -> dict[str, Path]:
    found = {}
    for path in folder.glob("*.md"):
        match = re.search(r"^conversation_id: (.+)$", path.read_text(encoding="utf-8"), re.MULTILINE)
        if match:
            assert match.group(1) not in found, f"duplicate index note for {match.group(1)}"
            found[match.group(1)] = path
    return found


def _steps(index: Path) -> list[str]:
    return re.findall(r"^\[\[(\d\d+_[^\]]+)\]\]$", index.read_text(encoding="utf-8"), re.MULTILINE)


def _step_dir(index: Path) -> Path:
    link = re.search(r"^\[\[(.+)/meta_information\]\]$", index.read_text(encoding="utf-8"), re.MULTILINE)
    return index.parent / link.group(1).rsplit("/", 1)[-1]


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    vault = tmp_path_factory.mktemp("vault")
    return vault, import_claude(CLAUDE, vault, tz=UTC)


def test_imports_54_conversations_empty_ones_skipped(imported):
    vault, result = imported
    data = _export()
    assert len(data) == 54
    empty = {c["uuid"] for c in data if not c["chat_messages"]}
    assert len(empty) == 3
    assert {s["id"] for s in result.skipped} == empty
    assert all(s["reason"] == "no messages" for s in result.skipped)
    assert result.conversations + len(result.skipped) == 54
    index = _index_notes(vault / "0_claude")
    assert set(index) == {c["uuid"] for c in data} - empty


def test_one_step_per_human_message(imported):
    vault, _ = imported
    index = _index_notes(vault / "0_claude")
    for conv in _export():
        if not conv["chat_messages"]:
            continue
        humans = sum(m["sender"] == "human" for m in conv["chat_messages"])
        steps = _steps(index[conv["uuid"]])
        assert len(steps) == humans, conv["name"]
        assert {p.stem for p in _step_dir(index[conv["uuid"]]).glob("[0-9]*.md")} == set(steps)


def test_messages_are_ordered_question_then_answer(imported):
    vault, _ = imported
    index = _index_notes(vault / "0_claude")[RIBS_ID]
    text = index.read_text(encoding="utf-8")
    assert "provider: claude\n" in text and 'aliases: "Cooking Tender Pork Spare Ribs on the Grill"' in text
    folder = _step_dir(index)
    assert folder.name == "2024-06-08 - Cooking Tender Pork Spare Ribs on the Grill"
    for n, name in enumerate(_steps(index)):
        note = (folder / f"{name}.md").read_text(encoding="utf-8")
        if n == 0:
            assert note.startswith("# Title: Cooking Tender Pork Spare Ribs on the Grill\n\nCreated: ")
            assert f"Chat URL: https://claude.ai/chat/{RIBS_ID}\n\n\n>[!nexus_user]" in note
        else:
            assert note.startswith(">[!nexus_user] **User** - ")
        assert note.count(">[!nexus_user]") == 1 and note.count(">[!nexus_agent]") == 1
        assert note.index(">[!nexus_user]") < note.index(">[!nexus_agent]")
    first = (folder / f"{_steps(index)[0]}.md").read_text(encoding="utf-8")
    assert "> J'ai acheté des spare ribs (porc)" in first
    assert "<!-- UID: 347985c9-eb34-4b64-8bc0-59123ca38fbc -->" in first


def test_attachments_become_placeholders(imported):
    vault, _ = imported
    index = _index_notes(vault / "0_claude")
    conv = next(c for c in _export() if c["name"] == MERMAID_NAME)
    folder = _step_dir(index[conv["uuid"]])
    text = "\n".join(p.read_text(encoding="utf-8") for p in folder.glob("[0-9]*.md"))
    # The human message with empty text and a pasted file is kept, as a placeholder.
    assert "> [Attachment: paste.txt]\n<!-- UID: 090aa562-5d62-4fc2-acc8-b45163d4475a -->" in text
    assert "class BlindCard" not in text  # extracted file contents stay out of the notes


def test_reimport_changes_nothing(imported):
    vault, first = imported
    before = {p: p.read_bytes() for p in vault.rglob("*") if p.is_file()}
    again = import_claude(CLAUDE, vault, tz=UTC)
    assert (again.notes_written, again.updated, again.removed) == (0, 0, 0)
    assert len(again.unchanged_conversations) == 51 and again.unchanged == first.notes_written
    assert {p: p.read_bytes() for p in vault.rglob("*") if p.is_file()} == before


def test_appended_message_updates_only_that_conversation(tmp_path):
    vault = tmp_path / "vault"
    vault.mkdir()
    import_claude(CLAUDE, vault, tz=UTC)
    data = _export()
    conv = next(c for c in data if c["uuid"] == RIBS_ID)
    conv["chat_messages"].append(
        {
            "uuid": "appended-human-1",
            "text": "Et pour la sauce barbecue maison ?",
            "sender": "human",
            "created_at": "2024-06-09T10:00:00.000000Z",
            "updated_at": "2024-06-09T10:00:00.000000Z",
            "attachments": [],
            "files": [],
        }
    )
    conv["updated_at"] = "2024-06-09T10:00:00.000000Z"
    newer = tmp_path / "claude.json"
    newer.write_text(json.dumps(data), encoding="utf-8")
    result = import_claude(newer, vault, tz=UTC)
    assert result.updated_conversations == [RIBS_ID]
    assert len(result.unchanged_conversations) == 50 and result.created_conversations == []
    assert (result.notes_written, result.updated) == (1, 3)  # new step; index, meta, first step
    index = _index_notes(vault / "0_claude")
    assert len(index) == 51
    steps = _steps(index[RIBS_ID])
    assert steps[-1] == f"{len(steps):02d}_et_pour_la_sauce"
    last = (_step_dir(index[RIBS_ID]) / f"{steps[-1]}.md").read_text(encoding="utf-8")
    assert last == (
        ">[!nexus_user] **User** - 09.06.2024 at 10:00\n> Et pour la sauce barbecue maison ?\n"
        "<!-- UID: appended-human-1 -->\n"
    )


def test_content_blocks_are_used_when_text_is_empty(tmp_path):
    conv = {
        "uuid": "c0ffee00-0000-0000-0000-000000000000",
        "name": "Blocks",
        "created_at": "2025-01-02T03:04:05Z",
        "updated_at": "2025-01-02T03:05:05Z",
        "chat_messages": [
            {
                "uuid": "m1",
                "text": "",
                "content": [{"type": "text", "text": "Question from blocks"}],
                "sender": "human",
                "created_at": "2025-01-02T03:04:05Z",
            },
            {
                "uuid": "m2",
                "text": "",
                "content": [
                    {"type": "thinking", "thinking": "hidden"},
                    {"type": "text", "text": "Answer part one."},
                    {"type": "tool_use", "name": "search"},
                    {"type": "text", "text": "Answer part two."},
                ],
                "sender": "assistant",
                "created_at": "2025-01-02T03:04:30Z",
            },
            {"uuid": "m3", "text": "   ", "sender": "assistant", "created_at": "2025-01-02T03:05:00Z"},
        ],
    }
    export = tmp_path / "c.json"
    export.write_text(json.dumps([conv]), encoding="utf-8")
    result = import_claude(export, tmp_path, tz=UTC)
    assert result.conversations == 1
    note = (tmp_path / "0_claude" / "2025-01-02 - Blocks" / "01_question_from_blocks.md").read_text()
    assert "> Question from blocks\n<!-- UID: m1 -->" in note
    assert "> Answer part one.\n> \n> Answer part two.\n<!-- UID: m2 -->\n" in note
    assert "hidden" not in note and "m3" not in note


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "not found"),
        (b"[1, 2,", "not valid JSON"),
        (b'"a string"', "expected a JSON list"),
        (b'[{"uuid": "x"}]', "no conversation has 'chat_messages'"),
    ],
)
def test_bad_input_names_the_problem_and_writes_nothing(tmp_path, content, message):
    export = tmp_path / "claude.json"
    if content is not None:
        export.write_bytes(content)
    vault = tmp_path / "v"
    vault.mkdir()
    with pytest.raises(ImportInputError, match=message):
        import_claude(export, vault)
    assert list(vault.iterdir()) == []


def test_chatgpt_export_is_refused_by_the_claude_importer(tmp_path):
    with pytest.raises(ImportInputError, match="looks like a ChatGPT export"):
        import_claude(CHATGPT, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_one_malformed_conversation_is_skipped(tmp_path):
    data = _export()[:3] + [
        {"uuid": "bad-messages", "name": "Bad", "chat_messages": "oops"},
        {"name": "no uuid", "chat_messages": []},
    ]
    export = tmp_path / "c.json"
    export.write_text(json.dumps(data), encoding="utf-8")
    result = import_claude(export, tmp_path, tz=UTC)
    assert result.conversations == 3
    reasons = {s["id"]: s["reason"] for s in result.skipped}
    assert reasons == {"bad-messages": "'chat_messages' is not a list", "#4": "missing uuid"}


def test_frontmatter_is_valid_yaml(imported):
    vault, _ = imported
    for conv_id, path in _index_notes(vault / "0_claude").items():
        props = yaml.safe_load(path.read_text(encoding="utf-8").split("---\n")[1])
        assert props["nexus"] == "nexus-ai-chat-importer" and props["plugin_version"] == "1.2.0"
        assert props["provider"] == "claude" and props["conversation_id"] == conv_id
        assert isinstance(props["aliases"], str) and isinstance(props["create_time"], str)
        assert re.fullmatch(r"\d\d\.\d\d\.\d{4} at \d{1,2}:\d\d", props["update_time"])
