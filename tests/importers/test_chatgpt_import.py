"""Importing the real ChatGPT export from ../shared/chat-exports."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC
from pathlib import Path

import pytest

from konsilium.vault.importers import ImportInputError, import_chatgpt
from konsilium.vault.importers.chatgpt import current_branch

EXPORTS = Path(__file__).resolve().parents[2].parent / "shared" / "chat-exports"
CHATGPT = EXPORTS / "chatgpt-conversations.json"
CLAUDE = EXPORTS / "claude-conversations.json"

pytestmark = pytest.mark.skipif(not CHATGPT.is_file(), reason="shared chat exports not available")

REFACTOR_ID = "94622218-ae22-45d4-9ac6-7613d6442a40"  # "Refactor Utility Functions", 6 branch points
SANITIZE_ID = "e410121b-300d-4b99-988a-fe1983fc78f8"  # "Sanitize Filename Function Analysis"


def _export() -> list[dict]:
    return json.loads(CHATGPT.read_text(encoding="utf-8"))


def _index_notes(folder: Path) -> dict[str, Path]:
    found = {}
    for path in folder.glob("*.md"):
        match = re.search(r"^conversation_id: (.+)$", path.read_text(encoding="utf-8"), re.MULTILINE)
        if match:
            assert match.group(1) not in found, f"duplicate index note for {match.group(1)}"
            found[match.group(1)] = path
    return found


def _conversation_text(index: Path) -> str:
    links = re.findall(r"^\[\[(\d\d+_[^\]]+)\]\]$", index.read_text(encoding="utf-8"), re.MULTILINE)
    folder = next(p for p in index.parent.iterdir() if p.is_dir() and (p / f"{links[0]}.md").is_file())
    return "\n".join((folder / f"{name}.md").read_text(encoding="utf-8") for name in links)


def _visible_user_turns(conv: dict) -> int:
    """User turns on the current branch, counted independently of the importer."""
    count = 0
    nodes, node = [], conv["current_node"]
    while node:
        nodes.append(conv["mapping"][node])
        node = conv["mapping"][node]["parent"]
    for n in nodes:
        msg = n["message"]
        if not msg or msg["author"]["role"] != "user":
            continue
        if msg["metadata"].get("is_visually_hidden_from_conversation"):
            continue
        if any(isinstance(p, str) and p.strip() for p in msg["content"].get("parts") or []):
            count += 1
    return count


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    vault = tmp_path_factory.mktemp("vault")
    result = import_chatgpt(CHATGPT, vault, tz=UTC)
    return vault, result


def test_imports_all_17_conversations(imported):
    vault, result = imported
    assert result.skipped == []
    assert result.conversations == 17 and len(result.created_conversations) == 17
    index = _index_notes(vault / "0_chatgpt")
    assert set(index) == {c["conversation_id"] for c in _export()}
    folders = [p for p in (vault / "0_chatgpt").iterdir() if p.is_dir()]
    assert len(folders) == 17
    assert result.notes_written == len(list((vault / "0_chatgpt").rglob("*.md")))


def test_one_step_note_per_user_turn_on_the_current_branch(imported):
    vault, _ = imported
    index = _index_notes(vault / "0_chatgpt")
    for conv in _export():
        text = index[conv["conversation_id"]].read_text(encoding="utf-8")
        steps = re.findall(r"^\[\[\d\d+_[^\]]+\]\]$", text, re.MULTILINE)
        assert len(steps) == _visible_user_turns(conv), conv["title"]
        folder = index[conv["conversation_id"]].parent
        step_files = [p for p in folder.glob("*/[0-9]*.md") if p.parent.name.endswith(f"- {conv['title']}")]
        assert len(step_files) in (0, len(steps))  # (titles with ':' or '/' are sanitised)


def test_index_and_step_format(imported):
    vault, _ = imported
    index = _index_notes(vault / "0_chatgpt")[SANITIZE_ID]
    assert index.name == "Sanitize Filename Function Analysis.md"
    text = index.read_text(encoding="utf-8")
    assert text.startswith(
        '---\nnexus: nexus-ai-chat-importer\nplugin_version: "1.2.0"\nprovider: chatgpt\n'
        'aliases: "Sanitize Filename Function Analysis"\n'
        f"conversation_id: {SANITIZE_ID}\ncreate_time: 05.12.2023 at 22:46\n"
        "update_time: 09.12.2023 at 21:45\n---\n"
        "[[0_chatgpt/2023-12-05 - Sanitize Filename Function Analysis/meta_information]]\n"
        "[[01_analyze_this_plugin_i]]\n"
    )
    folder = vault / "0_chatgpt" / "2023-12-05 - Sanitize Filename Function Analysis"
    first = (folder / "01_analyze_this_plugin_i.md").read_text(encoding="utf-8")
    assert first.startswith(
        "# Title: Sanitize Filename Function Analysis\n\nCreated: 05.12.2023 at 22:46\n"
        "Last Updated: 09.12.2023 at 21:45\n"
        f"Chat URL: https://chat.openai.com/c/{SANITIZE_ID}\n\n\n"
        ">[!nexus_user] **User** - 05.12.2023 at 22:46\n> Analyze this plugin."
    )
    # The user's file upload is a placeholder; code-interpreter code is a fenced block.
    assert "> [Attachment: main.ts]\n<!-- UID: aaa2ccca-ac9e-49c2-943f-b2b662948b1a -->\n" in first
    assert "\n\n\n\n\n>[!nexus_agent] **Assistant** - 05.12.2023 at 22:47\n> ```python\n" in first
    assert "\n---\n\n>[!nexus_agent]" in first
    second = (folder / "02_bullshit_you_should_be.md").read_text(encoding="utf-8")
    assert second.startswith(">[!nexus_user] **User** - ")
    assert (folder / "meta_information.md").read_text(encoding="utf-8") == text.split("[[")[0] + "\n"


def test_tool_and_system_messages_are_left_out(imported):
    vault, _ = imported
    all_text = "\n".join(p.read_text(encoding="utf-8") for p in (vault / "0_chatgpt").rglob("*.md"))
    tool_uids = {
        n["message"]["id"]
        for c in _export()
        for n in c["mapping"].values()
        if n["message"] and n["message"]["author"]["role"] in ("tool", "system")
    }
    assert tool_uids and not any(uid in all_text for uid in tool_uids)
    assert "tether_browsing_display" not in all_text


def test_edited_branches_keep_only_the_current_branch(imported):
    vault, _ = imported
    index = _index_notes(vault / "0_chatgpt")
    refactor = _conversation_text(index[REFACTOR_ID])
    assert "I have stored the functions.ts. Is this suitable ?" in refactor
    assert "I have stored the functions.js." not in refactor  # the edited-away first version
    sanitize = _conversation_text(index[SANITIZE_ID])
    assert "Summarize the answer in one sentence. Short and clear." in sanitize
    assert "Sort and clear" not in sanitize
    assert "aaa262ae-e40d-4ceb-b799-ecdf2b345787" not in sanitize  # uid of the abandoned message
    # Every UID written belongs to the current branch.
    conv = next(c for c in _export() if c["conversation_id"] == REFACTOR_ID)
    on_branch = {n["id"] for n in current_branch(conv)}
    assert set(re.findall(r"^<!-- UID: (.+) -->$", refactor, re.MULTILINE)) <= on_branch


def test_reimport_changes_nothing(imported, tmp_path):
    vault, first = imported
    before = {p: p.read_bytes() for p in vault.rglob("*") if p.is_file()}
    mtimes = {p: p.stat().st_mtime_ns for p in before}
    again = import_chatgpt(CHATGPT, vault, tz=UTC)
    assert again.conversations == 17
    assert (again.notes_written, again.updated, again.removed) == (0, 0, 0)
    assert again.unchanged == first.notes_written
    assert len(again.unchanged_conversations) == 17
    after = {p: p.read_bytes() for p in vault.rglob("*") if p.is_file()}
    assert after == before
    assert {p: p.stat().st_mtime_ns for p in after} == mtimes  # not even rewritten


def test_newer_export_updates_one_conversation_in_place(tmp_path):
    vault = tmp_path / "vault"
    vault.mkdir()
    import_chatgpt(CHATGPT, vault, tz=UTC)
    data = _export()
    conv = next(c for c in data if c["conversation_id"] == SANITIZE_ID)
    old_index = _index_notes(vault / "0_chatgpt")[SANITIZE_ID]
    old_steps = len(re.findall(r"^\[\[\d\d", old_index.read_text(encoding="utf-8"), re.MULTILINE))
    # The user asked one more question, got an answer, and renamed the conversation.
    parent = conv["current_node"]
    for node_id, role, text in [
        ("new-user-1", "user", "Une nouvelle question ajoutée plus tard ?"),
        ("new-assistant-1", "assistant", "Une réponse ajoutée plus tard."),
    ]:
        conv["mapping"][parent]["children"].append(node_id)
        conv["mapping"][node_id] = {
            "id": node_id,
            "parent": parent,
            "children": [],
            "message": {
                "id": node_id,
                "author": {"role": role, "name": None, "metadata": {}},
                "create_time": conv["update_time"] + 60,
                "content": {"content_type": "text", "parts": [text]},
                "metadata": {},
                "recipient": "all",
            },
        }
        parent = node_id
    conv["current_node"] = parent
    conv["update_time"] += 120
    conv["title"] = "Sanitize Filenames (renamed)"
    newer = tmp_path / "conversations.json"
    newer.write_text(json.dumps(data), encoding="utf-8")

    result = import_chatgpt(newer, vault, tz=UTC)
    assert result.updated_conversations == [SANITIZE_ID]
    assert len(result.unchanged_conversations) == 16 and result.created_conversations == []
    # New step note + index, meta and first step (title, update time) rewritten.
    assert (result.notes_written, result.updated, result.removed) == (1, 3, 0)
    index = _index_notes(vault / "0_chatgpt")  # asserts no duplicate index notes
    assert len(index) == 17 and index[SANITIZE_ID] == old_index  # kept its name and folder
    text = old_index.read_text(encoding="utf-8")
    assert 'aliases: "Sanitize Filenames (renamed)"' in text
    assert len(re.findall(r"^\[\[\d\d", text, re.MULTILINE)) == old_steps + 1
    assert f"[[{old_steps + 1}_une_nouvelle_question_ajoutée]]" in text
    folder = vault / "0_chatgpt" / "2023-12-05 - Sanitize Filename Function Analysis"
    new_note = (folder / f"{old_steps + 1}_une_nouvelle_question_ajoutée.md").read_text(encoding="utf-8")
    assert "> Une réponse ajoutée plus tard.\n<!-- UID: new-assistant-1 -->\n" in new_note
    assert (folder / "01_analyze_this_plugin_i.md").read_text().startswith("# Title: Sanitize Filenames (renamed)\n")
    assert len([p for p in (vault / "0_chatgpt").iterdir() if p.is_dir()]) == 17
    # And importing the newer export again is a no-op.
    again = import_chatgpt(newer, vault, tz=UTC)
    assert (again.notes_written, again.updated, len(again.unchanged_conversations)) == (0, 0, 17)


def test_switching_branch_removes_stale_step_notes(tmp_path):
    vault = tmp_path / "vault"
    vault.mkdir()
    import_chatgpt(CHATGPT, vault, tz=UTC)
    data = _export()
    conv = next(c for c in data if c["conversation_id"] == SANITIZE_ID)
    # Go back to the abandoned "Sort and clear" branch: the steps after it change.
    node = "aaa262ae-e40d-4ceb-b799-ecdf2b345787"
    while conv["mapping"][node]["children"]:
        node = conv["mapping"][node]["children"][-1]
    conv["current_node"] = node
    older = tmp_path / "conversations.json"
    older.write_text(json.dumps(data), encoding="utf-8")
    result = import_chatgpt(older, vault, tz=UTC)
    assert result.updated_conversations == [SANITIZE_ID]
    text = _conversation_text(_index_notes(vault / "0_chatgpt")[SANITIZE_ID])
    assert "Sort and clear" in text
    assert "Summarize the answer in one sentence. Short and clear." not in text
    assert (result.notes_written, result.updated, result.removed) == (0, 2, 1)  # one step fewer
    folder = vault / "0_chatgpt" / "2023-12-05 - Sanitize Filename Function Analysis"
    index_text = _index_notes(vault / "0_chatgpt")[SANITIZE_ID].read_text(encoding="utf-8")
    linked = set(re.findall(r"^\[\[(\d\d+_[^\]]+)\]\]$", index_text, re.MULTILINE))
    assert {p.stem for p in folder.glob("[0-9]*.md")} == linked


def test_same_title_gets_a_distinct_name(tmp_path):
    data = _export()[:2]
    clone = json.loads(json.dumps(data[0]))
    clone["conversation_id"] = clone["id"] = "00000000-0000-0000-0000-000000000001"
    export = tmp_path / "c.json"
    export.write_text(json.dumps([data[0], clone, data[1]]), encoding="utf-8")
    vault = tmp_path / "v"
    vault.mkdir()
    result = import_chatgpt(export, vault, tz=UTC)
    assert result.conversations == 3
    names = sorted(p.name for p in (vault / "0_chatgpt").glob("*.md"))
    assert names == [
        "Choisir Panneaux Solaires en Suisse.md",
        "Sauvegarde dans xigmaNAS (2).md",
        "Sauvegarde dans xigmaNAS.md",
    ]
    assert (vault / "0_chatgpt" / "2023-12-06 - Sauvegarde dans xigmaNAS (2)").is_dir()
    again = import_chatgpt(export, vault, tz=UTC)
    assert len(again.unchanged_conversations) == 3 and again.notes_written == 0


def test_malformed_conversations_are_skipped_with_a_reason(tmp_path):
    data = _export()[:3]
    broken_parent = json.loads(json.dumps(data[1]))
    broken_parent["conversation_id"] = broken_parent["id"] = "broken-parent"
    broken_parent["mapping"][broken_parent["current_node"]]["parent"] = "nowhere"
    no_mapping = {"conversation_id": "no-mapping", "title": "x", "mapping": {}, "current_node": None}
    data += [broken_parent, no_mapping, "not an object"]
    export = tmp_path / "c.json"
    export.write_text(json.dumps(data), encoding="utf-8")
    vault = tmp_path / "v"
    vault.mkdir()
    result = import_chatgpt(export, vault, tz=UTC)
    assert result.conversations == 3
    reasons = {s["id"]: s["reason"] for s in result.skipped}
    assert set(reasons) == {"broken-parent", "no-mapping", "#5"}
    assert "missing" in reasons["broken-parent"] and "mapping" in reasons["no-mapping"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "not found"),
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b'{"a": 1}', "expected a JSON list"),
        (b'[{"title": "x"}]', "no conversation has a 'mapping'"),
    ],
)
def test_bad_input_names_the_problem_and_writes_nothing(tmp_path, content, message):
    export = tmp_path / "conversations.json"
    if content is not None:
        export.write_bytes(content)
    vault = tmp_path / "v"
    vault.mkdir()
    with pytest.raises(ImportInputError, match=message):
        import_chatgpt(export, vault)
    assert list(vault.iterdir()) == []


def test_claude_export_is_refused_by_the_chatgpt_importer(tmp_path):
    with pytest.raises(ImportInputError, match="looks like a Claude export"):
        import_chatgpt(CLAUDE, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_missing_vault_is_an_input_error(tmp_path):
    with pytest.raises(ImportInputError, match="vault directory does not exist"):
        import_chatgpt(CHATGPT, tmp_path / "nope")


def test_custom_folder_and_an_empty_export(tmp_path):
    shutil.copy(CHATGPT, tmp_path / "c.json")
    result = import_chatgpt(tmp_path / "c.json", tmp_path, folder="Chats/GPT", tz=UTC)
    assert result.conversations == 17
    index = _index_notes(tmp_path / "Chats" / "GPT")[SANITIZE_ID]
    assert "[[Chats/GPT/2023-12-05 - Sanitize Filename Function Analysis/meta_information]]" in (
        index.read_text(encoding="utf-8")
    )
    (tmp_path / "empty.json").write_text("[]", encoding="utf-8")
    empty = import_chatgpt(tmp_path / "empty.json", tmp_path, tz=UTC)
    assert empty.conversations == 0 and empty.skipped == []
