"""A logged conversation's earlier answers with what the log kept of each: the web UI shows every answer's reasoning
and sources, not only the last one's.

The log keeps exchanges, not conversations: turn N's exchange holds the messages sent (the earlier turns included)
and its own answer, reasoning and sources. An earlier answer's exchange is the one whose messages are the
conversation up to it and whose response is that answer; it is looked for among the exchanges before the
conversation's latest turn that hold the first question's words (the log's search index)."""

from __future__ import annotations

import hashlib
import json

MAX_SCANNED = 2000  # exchanges read to find a conversation's earlier turns: far more than one conversation has
SEARCH_WORDS = 6  # of the first question: enough to narrow the search to its conversation


def digest(messages: list) -> str:
    return hashlib.sha1(json.dumps(messages, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def _said(response: str, content: str) -> bool:
    """Whether an exchange's response is this answer (a dual exchange's response ends with the role's answer)."""
    response, content = (response or "").strip(), (content or "").strip()
    return bool(content) and (response == content or response.endswith("\n\n" + content))


def _search(messages: list) -> str | None:
    from ..memory.log import MIN_INDEXED_CHARS, content_text

    first = next((m for m in messages if isinstance(m, dict) and m.get("role") == "user"), None)
    words = content_text(first.get("content")).split() if first else []
    words = [word for word in words if len(word) >= MIN_INDEXED_CHARS][:SEARCH_WORDS]
    return " ".join(words) or None


def _answer(exchange) -> dict | None:
    if exchange is None:
        return None
    return {
        "id": exchange.id,
        "role": exchange.role,
        "reasoning": exchange.reasoning or None,
        "sources": exchange.sources,
    }


def earlier_answers(log, exchange) -> list[dict | None]:
    """For each assistant message of `exchange.messages`, in order: its exchange's id, role, reasoning and sources
    (None: not found in the log, e.g. a conversation another client kept and sent)."""
    from ..memory.log import content_text

    messages = list(exchange.messages or [])
    spots = [i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "assistant"]
    if not spots:
        return []
    wanted = {digest(messages[:i]): i for i in spots}
    found: dict[int, object] = {}
    for candidate in log.list(_search(messages), limit=MAX_SCANNED, until=exchange.time):  # newest first
        spot = wanted.get(digest(list(candidate.messages or [])))
        if spot is None or spot in found:
            continue
        if _said(candidate.response, content_text(messages[spot].get("content"))):
            found[spot] = candidate
            if len(found) == len(spots):
                break
    return [_answer(found.get(spot)) for spot in spots]
