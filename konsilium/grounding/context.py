"""Retrieved notes into the prompt: what to search for, how much fits, and how the notes are shown.

The notes go into the system message as numbered, clearly delimited blocks, within a token budget counted with
the engine's own tokenizer: the prompt plus the completion must never overflow the context window, so passages
are added best first, the last one trimmed to fit, and the whole prompt is counted again at the end.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from .citations import Source, wikilink_target
from .knowledge import Passage

INSTRUCTIONS = (
    "You can use notes from the user's Obsidian vault, shown below between <note> tags. Use them when they are "
    "relevant; if they do not answer the question, say so and answer from general knowledge. After a sentence "
    "that uses a note, cite it by its number as a footnote marker, e.g. [^1]. Answer in the language of the "
    "user's question."
)
MIN_TRIMMED_TOKENS = 48  # a passage cut shorter than this is more noise than help
SHORT_QUERY_WORDS = 8
MAX_QUERY_CHARS = 2000
NOTE_TAG = re.compile(r"<(\s*/?\s*note\b)", re.IGNORECASE)  # an opening or closing note tag, however spaced
# A note's path or heading stays inside its attribute's quotes.
ATTRIBUTE_ESCAPES = str.maketrans({'"': "&quot;", "<": "&lt;", ">": "&gt;"})


class ContextLengthExceeded(ValueError):
    """OpenAI's wording, for chat messages and raw prompts alike."""

    def __init__(self, context: int, prompt_tokens: int, completion_tokens: int, what: str = "messages"):
        wanted = prompt_tokens + completion_tokens
        super().__init__(
            f"This model's maximum context length is {context} tokens. However, you requested {wanted} tokens "
            f"({prompt_tokens} in the {what}, {completion_tokens} in the completion). "
            f"Please reduce the length of the {what} or completion."
        )


@dataclass(frozen=True)
class RetrievalOptions:
    """Per request, from the extra body field `konsilium: {"retrieval": false | true | {...}}`."""

    enabled: bool = True
    collections: list[str] | None = None
    k: int = 6
    mode: str | None = None
    folders: tuple[str, ...] = ()  # only notes under these vault folders (a role's scope)
    tags: tuple[str, ...] = ()  # only notes with one of these tags (nested ones count: sport covers sport/run)

    def within(self, scope) -> RetrievalOptions:
        """Narrowed to a role's retrieval scope: a request may narrow a role's collections, never widen them."""
        if scope is None:
            return self
        if not scope.enabled:
            return replace(self, enabled=False)
        collections = self.collections
        if scope.collections is not None:
            outside = sorted(set(collections or []) - set(scope.collections))
            if outside:
                raise ValueError(
                    f"this role answers from {', '.join(scope.collections)} only, not {', '.join(outside)}"
                )
            collections = collections or list(scope.collections)
        return replace(self, collections=collections, folders=tuple(scope.folders), tags=tuple(scope.tags))

    @classmethod
    def parse(cls, raw, default_enabled: bool, default_k: int) -> RetrievalOptions:
        if raw is None:
            return cls(enabled=default_enabled, k=default_k)
        if isinstance(raw, bool):
            return cls(enabled=raw, k=default_k)
        if not isinstance(raw, dict):
            raise ValueError("konsilium.retrieval must be true, false or an object {collections, k, mode}")
        unknown = set(raw) - {"collections", "k", "mode", "enabled"}
        if unknown:
            raise ValueError(
                f"konsilium.retrieval: unknown field(s) {', '.join(sorted(unknown))}; "
                "allowed: collections, k, mode, enabled"
            )
        collections = raw.get("collections")
        if isinstance(collections, str):
            collections = [collections]
        if collections is not None and not (
            isinstance(collections, list) and collections and all(isinstance(c, str) and c for c in collections)
        ):
            raise ValueError("konsilium.retrieval.collections must be a non-empty list of collection names")
        k = raw.get("k", default_k)
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 50:
            raise ValueError("konsilium.retrieval.k must be an integer from 1 to 50")
        mode = raw.get("mode")
        from ..config import RETRIEVAL_MODES

        if mode is not None and mode not in RETRIEVAL_MODES:
            raise ValueError(f"konsilium.retrieval.mode must be one of {', '.join(RETRIEVAL_MODES)}")
        enabled = raw.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ValueError("konsilium.retrieval.enabled must be true or false")
        return cls(enabled=enabled, collections=collections, k=k, mode=mode)


def retrieval_query(messages: list[dict]) -> str:
    """The last user turn; a short follow-up ("and in Russian?") also takes the user turn before it."""
    user_turns = [m["content"] for m in messages if m["role"] == "user" and m["content"].strip()]
    if not user_turns:
        return ""
    query = user_turns[-1]
    if len(query.split()) < SHORT_QUERY_WORDS and len(user_turns) > 1:
        query = f"{user_turns[-2]}\n{query}"
    return query[-MAX_QUERY_CHARS:]


def neutralize_note_tags(text: str) -> str:
    """`<note` and `</note` become `&lt;note` / `&lt;/note`: a passage or a message can neither close the block it
    sits in nor open one that passes for a note of the vault (imported chats and pasted prompts contain them)."""
    return NOTE_TAG.sub(r"&lt;\1", text)


def _attribute(value: str) -> str:
    return value.translate(ATTRIBUTE_ESCAPES)


def note_block(source: Source, text: str) -> str:
    heading = f' heading="{_attribute(source.heading)}"' if source.heading else ""
    body = neutralize_note_tags(text.strip())
    return f'<note number="{source.number}" path="{_attribute(source.note)}"{heading}>\n{body}\n</note>'


def with_notes(messages: list[dict], blocks: list[str], memories: tuple[str, ...] | list[str] = ()) -> list[dict]:
    """The messages with the notes (and the memories, if any) in the system message, appended to the caller's own
    system prompt. The messages' own note tags are neutralized: the caller's system prompt shares the blocks'
    message."""
    from .memory_context import MEMORY_INSTRUCTIONS

    messages = [_neutralized(message) for message in messages]
    parts = []
    if memories:
        parts.append(MEMORY_INSTRUCTIONS + "\n" + "\n".join(memories))
    if blocks or not memories:
        parts.append(INSTRUCTIONS + ("\n\n" + "\n\n".join(blocks) if blocks else ""))
    context = "\n\n".join(parts)
    if messages and messages[0]["role"] in ("system", "developer"):
        first = dict(messages[0], content=f"{messages[0]['content']}\n\n{context}")
        return [first, *messages[1:]]
    return [{"role": "system", "content": context}, *messages]


def _neutralized(message: dict) -> dict:
    content = message.get("content")
    if not isinstance(content, str) or not NOTE_TAG.search(content):
        return message
    return dict(message, content=neutralize_note_tags(content))


def ground(
    messages: list[dict],
    passages: list[Passage],
    count_tokens: Callable[[str], int],
    count_chat_tokens: Callable[[list[dict]], int],
    context_length: int,
    completion_reserve: int,
    share: float,
    required_completion: int | None = None,
    max_notes_tokens: int | None = None,
    min_relevance: float = 0.0,
    memories: list[str] | None = None,
) -> tuple[list[dict], list[Source], int]:
    """Fit the best passages into the prompt, leaving `completion_reserve` tokens for the answer.

    Passages less relevant than `min_relevance` are left out (see `relevant`): when none is left, the messages go
    to the model as they are, with no notes block and no sources. Raises ContextLengthExceeded if the messages
    alone leave less than `required_completion` (default: the reserve) tokens: notes are dropped to make room, the
    user's own messages never are. `memories`: memory blocks (already within their budget) that go in before the
    notes; the third value returned is how many of them the prompt kept (all, or none when they do not fit).
    """
    bare = count_chat_tokens(messages)
    required = completion_reserve if required_completion is None else required_completion
    if bare + required > context_length:
        raise ContextLengthExceeded(context_length, bare, required)
    passages = relevant(passages, min_relevance)
    memories = list(memories or ())
    if memories and count_chat_tokens(with_notes(messages, [], memories)) + required > context_length:
        memories = []  # the user's own messages come first
    if not passages:
        return (with_notes(messages, [], memories), [], len(memories)) if memories else (messages, [], 0)
    base = count_chat_tokens(with_notes(messages, [], memories))
    budget = min(int(share * context_length), context_length - completion_reserve - base)
    if max_notes_tokens is not None:  # an engine that reads prompts slowly (a CPU) gets fewer notes
        budget = min(budget, max_notes_tokens)
    blocks: list[str] = []
    sources: list[Source] = []
    used = 0
    numbers: dict[str, int] = {}  # passages that link to the same place share a footnote
    for passage in passages:
        target = wikilink_target(passage.note, passage.heading)
        number = numbers.setdefault(target, len(numbers) + 1)
        source = Source(number, passage.note, passage.title, passage.heading, passage.score, passage.collection)
        block = note_block(source, passage.text)
        cost = count_tokens(block) + 2  # the blank line between blocks
        if used + cost > budget:
            trimmed = _trim_to(source, passage.text, budget - used - 2, count_tokens)
            if trimmed is not None:
                blocks.append(trimmed)
                sources.append(source)
            break
        blocks.append(block)
        sources.append(source)
        used += cost
    # Counted as a whole: token boundaries between blocks can differ from the sum of the parts.
    while blocks and count_chat_tokens(with_notes(messages, blocks, memories)) + completion_reserve > context_length:
        blocks.pop()
        sources.pop()
    if not blocks and not memories:
        return messages, [], 0
    return with_notes(messages, blocks, memories), sources, len(memories)


def relevant(passages: list[Passage], min_relevance: float) -> list[Passage]:
    """The passages worth offering to the model: fused scores are normalized per query (the best hit of "What is
    the capital of France?" scores as high as a perfect match), so the cut is on each passage's raw dense cosine
    with the question. Calibrated on the eval sets against eval/offtopic-questions.jsonl: relevant notes score
    0.27-0.73 (MiniLM, help vault) and 0.21-0.67 (USE-m3, Russian vault), off-topic questions' best passages
    0.10-0.30. A passage whose relevance is unknown (a bm25-only search) is kept; 0 keeps everything."""
    if min_relevance <= 0:
        return passages
    return [p for p in passages if getattr(p, "relevance", None) is None or p.relevance >= min_relevance]


def _trim_to(source: Source, text: str, tokens: int, count_tokens: Callable[[str], int]) -> str | None:
    """The longest prefix of the passage (cut at a word) whose block fits in `tokens`, if worth keeping."""
    if tokens < MIN_TRIMMED_TOKENS:
        return None
    low, high, best = 0, len(text), None
    while low <= high:  # binary search on characters: token counts grow with length
        middle = (low + high) // 2
        cut = text[:middle].rsplit(" ", 1)[0] if middle < len(text) else text
        block = note_block(source, cut + " …")
        if count_tokens(block) <= tokens:
            best, low = block, middle + 1
        else:
            high = middle - 1
    if best is None or count_tokens(best) < MIN_TRIMMED_TOKENS:
        return None
    return best
