"""Memories into the prompt: the pinned core profile and the memories relevant to the question, each within its
own token budget, as delimited blocks the model is told to treat as what it remembers about the user."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from .context import neutralize_note_tags

MEMORY_INSTRUCTIONS = (
    "What you remember about the user from earlier conversations is shown between <memory> tags (newest facts "
    'replace older ones; `about` says whom a memory concerns; kind="conversation" is an earlier exchange). Use '
    "it when it helps; do not cite it as a note."
)


def memory_block(recalled) -> str:
    memory = recalled.memory
    day = datetime.fromtimestamp(memory.created, tz=UTC).strftime("%Y-%m-%d") if memory.created else ""
    about = "" if memory.about == "user" else f' about="{_attribute(memory.about)}"'
    kind = ' kind="conversation"' if memory.kind == "conversation" else ""
    body = neutralize_note_tags(memory.text).replace("</memory", "&lt;/memory")
    return f'<memory id="{memory.id}" date="{day}"{kind}{about}>{body}</memory>'


def fit_memories(recalled: list, count_tokens: Callable[[str], int], pinned_tokens: int, memory_tokens: int):
    """The memories that fit (pinned ones within `pinned_tokens`, the rest within `memory_tokens`), in order,
    with their blocks."""
    kept, blocks = [], []
    used = {True: 0, False: 0}
    for item in recalled:
        block = memory_block(item)
        cost = count_tokens(block) + 1
        budget = pinned_tokens if item.pinned else memory_tokens
        if used[item.pinned] + cost > budget:
            continue  # a shorter one further down may still fit
        used[item.pinned] += cost
        kept.append(item)
        blocks.append(block)
    return kept, blocks


def _attribute(value: str) -> str:
    return value.replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
