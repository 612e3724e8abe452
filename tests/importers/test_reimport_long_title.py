"""Re-importing must find the existing notes of a conversation whatever its title: no duplicate copies."""

from __future__ import annotations

import json
from datetime import UTC

from konsilium.vault.importers import import_claude


def _conversation(title: str, answer: str = "Short answer.") -> dict:
    return {
        "uuid": "5e1f0000-0000-0000-0000-00000000abcd",
        "name": title,
        "created_at": "2025-01-02T03:04:05Z",
        "updated_at": "2025-01-02T03:05:05Z",
        "chat_messages": [
            {"uuid": "m1", "text": "A question", "sender": "human", "created_at": "2025-01-02T03:04:05Z"},
            {"uuid": "m2", "text": answer, "sender": "assistant", "created_at": "2025-01-02T03:04:30Z"},
        ],
    }


def test_a_5000_character_title_is_reimported_in_place(tmp_path):
    vault = tmp_path / "vault"
    vault.mkdir()
    export = tmp_path / "claude.json"
    title = "Очень длинный заголовок " * 210  # ~5,000 characters, ~9,000 bytes of UTF-8 in the frontmatter
    assert len(title) > 5000
    export.write_text(json.dumps([_conversation(title)]), encoding="utf-8")
    first = import_claude(export, vault, tz=UTC)
    assert len(first.created_conversations) == 1
    before = sorted(p.relative_to(vault).as_posix() for p in vault.rglob("*.md"))

    again = import_claude(export, vault, tz=UTC)
    assert len(again.created_conversations) == 0 and len(again.unchanged_conversations) == 1
    assert sorted(p.relative_to(vault).as_posix() for p in vault.rglob("*.md")) == before

    export.write_text(json.dumps([_conversation(title, "A longer, changed answer.")]), encoding="utf-8")
    changed = import_claude(export, vault, tz=UTC)
    assert len(changed.updated_conversations) == 1 and not changed.created_conversations
    assert sorted(p.relative_to(vault).as_posix() for p in vault.rglob("*.md")) == before
