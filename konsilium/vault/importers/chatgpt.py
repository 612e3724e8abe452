"""Import ChatGPT's ``conversations.json`` as nexus-ai-chat-importer notes.

Each conversation is a tree of ``mapping`` nodes. Only the branch the user last saw is kept: walk
``parent`` links up from ``current_node`` and reverse, so the abandoned branches of edited or
regenerated messages stay out. System and tool messages, hidden ones
(``metadata.is_visually_hidden_from_conversation``), tool calls other than code-interpreter code,
and messages left empty are skipped. Text parts are rendered; images, audio and attachments become
a short ``[Image]`` / ``[Attachment: name]`` placeholder.
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

PROVIDER = "chatgpt"
CHAT_URL = "https://chat.openai.com/c/{id}"

# Content types that carry no conversation text (browsing results, reasoning, custom instructions...).
_SKIPPED_CONTENT = {
    "user_editable_context",
    "model_editable_context",
    "thoughts",
    "reasoning_recap",
    "tether_browsing_display",
    "tether_quote",
    "execution_output",
    "system_error",
    "computer_output",
}
_PART_PLACEHOLDERS = {
    "image_asset_pointer": "[Image]",
    "audio_asset_pointer": "[Audio]",
    "real_time_user_audio_video_asset_pointer": "[Audio/video]",
    "video_container_asset_pointer": "[Video]",
}


def _time(value: object) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def current_branch(conv: dict) -> list[dict]:
    """Mapping nodes from the root to ``current_node`` (or to the newest leaf when it is missing)."""
    mapping = conv.get("mapping")
    if not isinstance(mapping, dict) or not mapping:
        raise MalformedConversation("'mapping' is missing or empty")
    node_id = conv.get("current_node")
    if node_id not in mapping:
        # No usable current_node: follow the newest child from the root.
        roots = [k for k, n in mapping.items() if isinstance(n, dict) and n.get("parent") not in mapping]
        if not roots:
            raise MalformedConversation("no root node in 'mapping'")
        node_id = roots[0]
        seen = {node_id}
        while True:
            children = [c for c in (mapping[node_id].get("children") or []) if c in mapping]
            if not children or children[-1] in seen:
                break
            node_id = children[-1]
            seen.add(node_id)
    path: list[dict] = []
    seen = set()
    while node_id is not None:
        if node_id in seen:
            raise MalformedConversation("cycle in 'mapping' parent links")
        seen.add(node_id)
        node = mapping.get(node_id)
        if not isinstance(node, dict):
            raise MalformedConversation(f"node {node_id!r} referenced but missing from 'mapping'")
        path.append(node)
        node_id = node.get("parent")
    path.reverse()
    return path


def _render_part(part: object) -> str:
    if isinstance(part, str):
        return part
    if not isinstance(part, dict):
        return ""
    ctype = part.get("content_type", "")
    if ctype in _PART_PLACEHOLDERS:
        return _PART_PLACEHOLDERS[ctype]
    if isinstance(part.get("text"), str):  # audio_transcription and the like
        return part["text"]
    return f"[{ctype}]" if ctype else ""


def render_content(message: dict) -> str | None:
    """Markdown for one message, or None when it is not part of the visible conversation."""
    content = message.get("content")
    if not isinstance(content, dict):
        return None
    ctype = content.get("content_type", "text")
    if ctype in _SKIPPED_CONTENT:
        return None
    pieces: list[str] = []
    if ctype == "code":
        code = content.get("text")
        if not isinstance(code, str) or not code.strip():
            return None
        lang = content.get("language") or ""
        if lang == "unknown":
            lang = "python" if message.get("recipient") == "python" else ""
        pieces.append(f"```{lang}\n{code.strip(chr(10))}\n```")
    elif isinstance(content.get("parts"), list):
        rendered = [_render_part(p) for p in content["parts"]]
        text = "\n\n".join(r.strip("\n") for r in rendered if r.strip())
        if text:
            pieces.append(text)
    elif isinstance(content.get("text"), str) and content["text"].strip():
        pieces.append(content["text"])
    else:
        return None
    metadata = message.get("metadata") if isinstance(message.get("metadata"), dict) else {}
    names = [a.get("name") or "file" for a in metadata.get("attachments") or [] if isinstance(a, dict)]
    if names:
        pieces.append("\n".join(f"[Attachment: {name}]" for name in names))
    text = "\n\n".join(p for p in pieces if p.strip())
    return text.strip() or None


def parse_conversation(conv: dict) -> Conversation:
    conv_id = conv.get("conversation_id") or conv.get("id")
    if not isinstance(conv_id, str) or not conv_id.strip():
        raise MalformedConversation("missing conversation id")
    messages: list[Message] = []
    for node in current_branch(conv):
        msg = node.get("message")
        if not isinstance(msg, dict):
            continue
        author = msg.get("author") if isinstance(msg.get("author"), dict) else {}
        role = author.get("role")
        if role not in ("user", "assistant"):
            continue
        metadata = msg.get("metadata") if isinstance(msg.get("metadata"), dict) else {}
        if metadata.get("is_visually_hidden_from_conversation"):
            continue
        recipient = msg.get("recipient") or "all"
        content = msg.get("content") if isinstance(msg.get("content"), dict) else {}
        content_type = content.get("content_type")
        # Tool calls (browser searches, plugins) are noise; code-interpreter code is kept.
        if role == "assistant" and recipient != "all" and not (recipient == "python" and content_type == "code"):
            continue
        text = render_content(msg)
        if text is None:
            continue
        uid = msg.get("id") or node.get("id") or ""
        messages.append(Message(role=role, text=text, uid=str(uid), time=_time(msg.get("create_time"))))
    if not messages:
        raise MalformedConversation("no messages")
    times = [m.time for m in messages if m.time is not None]
    created = _time(conv.get("create_time")) or (min(times) if times else None)
    updated = _time(conv.get("update_time")) or (max(times) if times else None) or created
    if created is None or updated is None:
        raise MalformedConversation("no create_time")
    title = conv.get("title") if isinstance(conv.get("title"), str) else ""
    return Conversation(
        id=conv_id.strip(),
        title=title.strip() or "Untitled",
        create_time=created,
        update_time=updated,
        url=CHAT_URL.format(id=conv_id.strip()),
        messages=messages,
    )


def parse_export(data: object) -> tuple[list[Conversation], list[dict]]:
    """Conversations of a loaded ``conversations.json`` and the ones skipped, with a reason."""
    if isinstance(data, dict) and isinstance(data.get("conversations"), list):
        data = data["conversations"]
    if not isinstance(data, list):
        raise ImportInputError(
            f"not a ChatGPT export: expected a JSON list of conversations, got {type(data).__name__}"
        )
    if data and not any(isinstance(c, dict) and "mapping" in c for c in data):
        hint = ""
        if any(isinstance(c, dict) and "chat_messages" in c for c in data):
            hint = " (this looks like a Claude export: use `konsilium import claude`)"
        raise ImportInputError(f"not a ChatGPT export: no conversation has a 'mapping'{hint}")
    return parse_each(data, parse_conversation, "conversation_id", "title")


def import_chatgpt(
    export_path: Path,
    vault: Path,
    folder: str = "0_chatgpt",
    *,
    tz: tzinfo | None = None,
    on_progress: ProgressFn | None = None,
) -> ImportResult:
    """Import a ChatGPT ``conversations.json`` into ``<vault>/<folder>``; see ``nexus_writer``.

    Dates are written in ``tz`` (the machine's local time zone when None), as the plugin does.
    Raises ImportInputError, before writing anything, when the file cannot be imported at all.
    """
    return run_import(export_path, vault, folder, PROVIDER, "ChatGPT", parse_export, tz, on_progress)
