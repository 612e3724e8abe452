"""The writer reproduces the nexus-ai-chat-importer notes of the sample vault byte for byte."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from konsilium.vault.importers.nexus_writer import (
    Conversation,
    ImportInputError,
    Message,
    check_folder,
    format_time,
    sanitize_title,
    step_slug,
    write_conversations,
)

SAMPLE = Path(__file__).resolve().parents[2].parent / "shared" / "sample-vault"
FOLDER = "0_chatgpt/AI"
CONV_DIR = SAMPLE / FOLDER / "2025-06-29 - 1LTM_4"
INDEX = SAMPLE / FOLDER / "1LTM_4.md"

pytestmark = pytest.mark.skipif(not CONV_DIR.is_dir(), reason="shared sample vault not available")

_HEADER = re.compile(r"^>\[!nexus_(user|agent)\] \*\*(User|Assistant)\*\* - (.+)$")
_UID = re.compile(r"^<!-- UID: (.+) -->$")


def _parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%d.%m.%Y at %H:%M").replace(tzinfo=UTC)


def _parse_step(text: str) -> list[Message]:
    """Messages of a step note, read with a minimal parser of the callout format."""
    messages: list[Message] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        match = _HEADER.match(lines[i])
        if not match:
            i += 1
            continue
        body: list[str] = []
        i += 1
        while not _UID.match(lines[i]):
            assert lines[i].startswith("> "), lines[i]
            body.append(lines[i][2:])
            i += 1
        role = "user" if match.group(1) == "user" else "assistant"
        uid = _UID.match(lines[i]).group(1)
        messages.append(Message(role, "\n".join(body), uid, _parse_time(match.group(3))))
        i += 1
    return messages


def _sample_conversation() -> Conversation:
    front = INDEX.read_text(encoding="utf-8").split("---\n")[1]
    props = dict(line.split(": ", 1) for line in front.strip().split("\n"))
    names = re.findall(r"^\[\[(\d\d_[^\]]+)\]\]$", INDEX.read_text(encoding="utf-8"), re.MULTILINE)
    messages: list[Message] = []
    for name in names:
        messages += _parse_step((CONV_DIR / f"{name}.md").read_text(encoding="utf-8"))
    conv_id = props["conversation_id"]
    return Conversation(
        id=conv_id,
        title=props["aliases"].strip('"'),
        create_time=_parse_time(props["create_time"]),
        update_time=_parse_time(props["update_time"]),
        url=f"https://chat.openai.com/c/{conv_id}",
        messages=messages,
    )


def test_step_slugs_match_every_sample_note_name():
    for path in sorted(CONV_DIR.glob("[0-9]*.md")):
        first_user = next(m for m in _parse_step(path.read_text(encoding="utf-8")) if m.role == "user")
        number, slug = path.stem.split("_", 1)
        assert step_slug(first_user.text) == slug, path.name


def test_writer_reproduces_the_sample_conversation_byte_for_byte(tmp_path):
    conv = _sample_conversation()
    assert sum(m.role == "user" for m in conv.messages) == 84
    result = write_conversations([conv], tmp_path, FOLDER, "chatgpt", tz=UTC)
    assert result.conversations == 1 and result.notes_written == 86  # index + meta + 84 steps
    expected = {p.relative_to(SAMPLE / FOLDER) for p in [INDEX, *CONV_DIR.iterdir()]}
    written = {p.relative_to(tmp_path / FOLDER) for p in (tmp_path / FOLDER).rglob("*.md")}
    assert written == expected
    for rel in sorted(expected):
        assert (tmp_path / FOLDER / rel).read_bytes() == (SAMPLE / FOLDER / rel).read_bytes(), rel
    # Importing the same conversation again changes nothing.
    again = write_conversations([conv], tmp_path, FOLDER, "chatgpt", tz=UTC)
    assert (again.notes_written, again.updated, again.unchanged) == (0, 0, 86)
    assert again.unchanged_conversations == [conv.id]


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("Т.е. я так понимаю 30б и 70б", "т_е_я_так_понимаю"),
        ("Hello, World! How are you today?", "hello_world_how_are"),
        ("vocab.json что это", "vocab_json_что_это"),
        ("  \n ", "untitled"),
        ("🙂 🙂", "untitled"),
        ("a/b\\c:d*e?f", "a_b_c_d_e_f"),
        ("x" * 80, "x" * 50),
    ],
)
def test_step_slug_rules(text, slug):
    assert step_slug(text) == slug


@pytest.mark.parametrize(
    ("title", "name"),
    [
        ("Title: Strategic Account Manager", "Title Strategic Account Manager"),
        ("Différence entre arthrose/arthrite", "Différence entre arthrose arthrite"),
        ('a<b>c"d|e?f*g#h^i[j]k', "a b c d e f g h i j k"),
        ("  ...  ", "Untitled"),
        ("", "Untitled"),
        ("line\nbreak", "line break"),
        ("CON", "CON_"),
        ("Ж" * 150, "Ж" * 100),
    ],
)
def test_sanitize_title(title, name):
    assert sanitize_title(title) == name


def test_format_time_has_no_hour_padding():
    dt = datetime(2025, 6, 30, 2, 53, tzinfo=UTC)
    assert format_time(dt, UTC) == "30.06.2025 at 2:53"
    assert format_time(dt, timezone(timedelta(hours=3))) == "30.06.2025 at 5:53"


@pytest.mark.parametrize("folder", ["", "/abs", "../out", "a/../../b"])
def test_check_folder_rejects_paths_outside_the_vault(folder):
    with pytest.raises(ImportInputError):
        check_folder(folder)


def test_check_folder_normalises():
    assert check_folder("0_chatgpt/AI/") == "0_chatgpt/AI"
    assert check_folder("0_chatgpt\\AI") == "0_chatgpt/AI"


def test_steps_without_user_or_answer_and_crlf(tmp_path):
    t0 = datetime(2024, 1, 2, 3, 4, tzinfo=UTC)
    conv = Conversation(
        id="conv-1",
        title='Quotes "and" [brackets]',
        create_time=t0,
        update_time=t0 + timedelta(minutes=5),
        url="https://example.invalid/conv-1",
        messages=[
            Message("assistant", "Welcome!", "a0", t0),
            Message("user", "First line\r\nsecond line", "u1", None),
            Message("user", "Unanswered question here", "u2", t0 + timedelta(minutes=2)),
        ],
    )
    write_conversations([conv], tmp_path, "chats", "claude", tz=UTC)
    folder = tmp_path / "chats" / "2024-01-02 - Quotes and brackets"
    index = (tmp_path / "chats" / "Quotes and brackets.md").read_text(encoding="utf-8")
    assert 'aliases: "Quotes \\"and\\" [brackets]"\n' in index
    assert index.endswith("[[01_welcome]]\n[[02_first_line_second_line]]\n[[03_unanswered_question_here]]\n")
    first = (folder / "01_welcome.md").read_text(encoding="utf-8")
    assert first.endswith("\n\n\n>[!nexus_agent] **Assistant** - 02.01.2024 at 3:04\n> Welcome!\n<!-- UID: a0 -->\n")
    second = (folder / "02_first_line_second_line.md").read_bytes()
    assert second == b">[!nexus_user] **User** - 02.01.2024 at 3:04\n> First line\n> second line\n<!-- UID: u1 -->\n"
