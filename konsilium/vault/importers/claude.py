"""Import Claude's ``conversations.json`` as nexus-ai-chat-importer notes.

A Claude export is a list of conversations (``uuid``, ``name``, ``created_at``, ``updated_at``,
``chat_messages``). Messages are not stored in order and a question often has the same
``created_at`` as its answer, so they are sorted by time with the human message first on ties.
Text comes from ``content`` text blocks when present (newer exports), else from ``text``;
``attachments`` and ``files`` become ``[Attachment: name]`` placeholders. Conversations without
messages are skipped.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from pathlib import Path

from konsilium.vault.importers.nexus_writer import (
    Conversation,
    ImportInputError,
    ImportResult,
    MalformedConversation,
    Message,
    ProgressFn,
    parse_each,
    run_import,
)

PROVIDER = "claude"
CHAT_URL = "https://claude.ai/chat/{id}"
_ROLES = {"human": "user", "user": "user", "assistant": "assistant"}


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _message_text(msg: dict) -> str:
    pieces: list[str] = []
    blocks = msg.get("content")
    block_text = ""
    if isinstance(blocks, list):
        block_text = "\n\n".join(
            b["text"].strip("\n")
            for b in blocks
            if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str) and b["text"].strip()
        )
    text = block_text or (msg.get("text") if isinstance(msg.get("text"), str) else "")
    if text.strip():
        pieces.append(text)
    names: list[str] = []
    for key in ("attachments", "files"):
        for item in msg.get(key) or []:
            if isinstance(item, dict):
                name = item.get("file_name") or item.get("name") or "file"
                if name not in names:
                    names.append(name)
    if names:
        pieces.append("\n".join(f"[Attachment: {name}]" for name in names))
    return "\n\n".join(pieces).strip()


def parse_conversation(conv: dict) -> Conversation:
    conv_id = conv.get("uuid")
    if not isinstance(conv_id, str) or not conv_id.strip():
        raise MalformedConversation("missing uuid")
    raw = conv.get("chat_messages")
    if not isinstance(raw, list):
        raise MalformedConversation("'chat_messages' is not a list")
    conv_created = _time(conv.get("created_at"))
    keyed = []
    for i, msg in enumerate(raw):
        if not isinstance(msg, dict):
            continue
        role = _ROLES.get(msg.get("sender"))
        if role is None:
            continue
        text = _message_text(msg)
        if not text:
            continue
        when = _time(msg.get("created_at"))
        uid = msg.get("uuid") or f"{conv_id}-{i}"
        # Sort by time; on equal times the question goes before the answer; then export order.
        sort_time = when or conv_created or datetime.min.replace(tzinfo=UTC)
        keyed.append(((sort_time, role != "user", i), Message(role=role, text=text, uid=str(uid), time=when)))
    if not keyed:
        raise MalformedConversation("no messages")
    keyed.sort(key=lambda pair: pair[0])
    messages = [m for _, m in keyed]
    times = [m.time for m in messages if m.time is not None]
    created = conv_created or (min(times) if times else None)
    updated = _time(conv.get("updated_at")) or (max(times) if times else None) or created
    if created is None or updated is None:
        raise MalformedConversation("no created_at")
    title = conv.get("name") if isinstance(conv.get("name"), str) else ""
    return Conversation(
        id=conv_id.strip(),
        title=title.strip() or "Untitled",
        create_time=created,
        update_time=updated,
        url=CHAT_URL.format(id=conv_id.strip()),
        messages=messages,
    )


def parse_export(data: object) -> tuple[list[Conversation], list[dict]]:
    """Conversations of a loaded Claude export and the ones skipped, with a reason."""
    if not isinstance(data, list):
        raise ImportInputError(f"not a Claude export: expected a JSON list of conversations, got {type(data).__name__}")
    if data and not any(isinstance(c, dict) and "chat_messages" in c for c in data):
        hint = ""
        if any(isinstance(c, dict) and "mapping" in c for c in data):
            hint = " (this looks like a ChatGPT export: use `konsilium import chatgpt`)"
        raise ImportInputError(f"not a Claude export: no conversation has 'chat_messages'{hint}")
    return parse_each(data, parse_conversation, "uuid", "name")


def import_claude(
    export_path: Path,
    vault: Path,
    folder: str = "0_claude",
    *,
    tz: tzinfo | None = None,
    on_progress: ProgressFn | None = None,
) -> ImportResult:
    """Import a Claude ``conversations.json`` into ``<vault>/<folder>``; see ``nexus_writer``.

    Dates are written in ``tz`` (the machine's local time zone when None), as the plugin does.
    Raises ImportInputError, before writing anything, when the file cannot be imported at all.
    """
    return run_import(export_path, vault, folder, PROVIDER, "Claude", parse_export, tz, on_progress)
