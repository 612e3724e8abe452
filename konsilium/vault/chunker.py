"""Note → retrievable chunks that follow the note's structure.

- One chunk per section when it fits; a long section is split at paragraphs, then lines, then sentences,
  then words, with a little overlap so a fact cut in two is still found whole in one of the pieces.
- Tiny neighbouring sections under the same parent are merged (a heading with two lines under it makes a
  poor chunk on its own); the merged chunk keeps their sub-headings as lines of text.
- Conversation notes: the user's question is what people later search for, but the answer holds the
  content. So every answer chunk starts with a short form of the question it answers ("User: …"), and the
  question gets a chunk of its own only when it is too long to be carried whole in that prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..config import IndexSettings
from .model import Chunk, Note, Section

QUESTION_PREFIX = "User: "
DEFAULTS = IndexSettings()  # chunk size defaults live in the settings schema
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+(?=\S)")
_SPACES = re.compile(r"\s+")


@dataclass
class _Group:
    """Adjacent sections that end up in the same chunk(s)."""

    sections: list[Section] = field(default_factory=list)

    @property
    def role(self) -> str | None:
        return self.sections[0].role

    @property
    def turn(self) -> int | None:
        return self.sections[0].turn

    @property
    def path(self) -> list[str]:
        return _common_prefix([s.heading_path for s in self.sections])

    def text(self) -> str:
        """Members' texts; a member below the group's heading gets its own sub-heading as a line."""
        base = len(self.path)
        parts = []
        for s in self.sections:
            label = " > ".join(s.heading_path[base:])
            parts.append(f"{label}\n{s.text}" if label else s.text)
        return "\n\n".join(parts)

    def size(self) -> int:
        return len(self.text())


def chunk_note(
    note: Note, max_chars: int = DEFAULTS.chunk_chars, overlap_chars: int = DEFAULTS.chunk_overlap
) -> list[Chunk]:
    """Split a parsed note into chunks of at most about `max_chars` characters (see module doc)."""
    max_chars = max(max_chars, 200)
    overlap = max(0, min(overlap_chars, max_chars // 4))
    question_cap = min(200, max_chars // 4)
    # Space kept free in every answer chunk for the "User: <question>" prefix.
    reserve = len(QUESTION_PREFIX) + question_cap + 2 if note.turns else 0
    groups = _group(note.sections, max_chars - reserve)

    out: list[tuple[str, str]] = []  # (heading, text)
    question: str | None = None
    for i, group in enumerate(groups):
        heading = " > ".join(group.path)
        text = group.text()
        if group.role == "user":
            question = _shorten(text, question_cap)
            answered = i + 1 < len(groups) and groups[i + 1].role != "user"
            if answered and _flat(text) == question:
                continue  # carried whole by the prefix of the answer's chunks
            out.extend((heading, piece) for piece in _split(text, max_chars, overlap))
            continue
        prefix = f"{QUESTION_PREFIX}{question}\n\n" if question else ""
        for piece in _split(text, max_chars - len(prefix), overlap):
            out.append((heading, prefix + piece))

    chunks = [(h, t.strip()) for h, t in out if t.strip()]
    return [Chunk(note=note.path, title=note.title, heading=h, text=t, ordinal=n) for n, (h, t) in enumerate(chunks)]


# --- grouping ---------------------------------------------------------------------------------------------


def _common_prefix(paths: list[list[str]]) -> list[str]:
    out: list[str] = []
    for parts in zip(*paths, strict=False):
        if any(p != parts[0] for p in parts):
            break
        out.append(parts[0])
    return out


def _group(sections: list[Section], budget: int) -> list[_Group]:
    """Merge a tiny section into its neighbour when both sit under the same parent and the result fits."""
    small = budget // 4
    groups: list[_Group] = []
    for s in sections:
        if not s.text.strip():
            continue
        cur = groups[-1] if groups else None
        if cur is not None and _can_merge(cur, s, small, budget):
            cur.sections.append(s)
        else:
            groups.append(_Group([s]))
    return groups


def _can_merge(group: _Group, s: Section, small: int, budget: int) -> bool:
    if s.role != group.role or s.turn != group.turn:
        return False  # never mix two messages, or a question with its answer
    path = group.path
    shared = len(_common_prefix([path, s.heading_path]))
    if shared < len(s.heading_path) - 1 or shared < len(path) - 1:
        return False  # not siblings / parent and child
    if group.size() >= small and len(s.text) >= small:
        return False  # both can stand alone
    # Measured, not estimated: lifting the group's heading adds sub-heading lines to earlier members too.
    return _Group([*group.sections, s]).size() <= budget


# --- splitting --------------------------------------------------------------------------------------------


def _split(text: str, budget: int, overlap: int) -> list[str]:
    """Split text longer than `budget` at the most natural boundaries, with `overlap` chars carried over."""
    text = text.strip()
    if len(text) <= budget:
        return [text] if text else []
    size = max(budget - overlap - 1, budget // 2)
    pieces = _pack(text, size, 0)
    out = [pieces[0]]
    for prev, piece in zip(pieces, pieces[1:], strict=False):
        tail = _tail(prev, budget - len(piece) - 1, overlap)
        out.append(f"{tail}\n{piece}" if tail else piece)
    return out


_LEVELS = ("\n\n", "\n", "sentence", " ")


def _pack(text: str, size: int, level: int) -> list[str]:
    """Greedy packing of paragraphs (then lines, sentences, words) into pieces of at most `size` chars."""
    if len(text) <= size:
        return [text]
    if level >= len(_LEVELS):
        return [text[i : i + size] for i in range(0, len(text), size)]  # one enormous word
    sep = _LEVELS[level]
    parts = _SENTENCE_END.split(text) if sep == "sentence" else text.split(sep)
    joiner = " " if sep == "sentence" else sep
    out: list[str] = []
    cur = ""
    for part in parts:
        if not part.strip():
            continue
        for sub in _pack(part, size, level + 1) if len(part) > size else [part]:
            if cur and len(cur) + len(joiner) + len(sub) <= size:
                cur += joiner + sub
            else:
                if cur:
                    out.append(cur)
                cur = sub
    if cur:
        out.append(cur)
    return out


def _tail(text: str, room: int, overlap: int) -> str:
    """The end of the previous piece, starting at a word (ideally a sentence) boundary."""
    n = min(overlap, room)
    if n <= 0:
        return ""
    tail = text[-n:]
    if len(text) > n:
        m = _SENTENCE_END.search(tail)
        if m and m.end() < len(tail):
            tail = tail[m.end() :]
        else:
            cut = re.search(r"\s", tail)
            tail = tail[cut.end() :] if cut else ""
    return tail.strip()


def _flat(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def _shorten(text: str, cap: int) -> str:
    """The question on one line, cut at a word boundary to at most `cap` characters."""
    flat = _flat(text)
    if len(flat) <= cap:
        return flat
    cut = flat[: cap - 1]
    if " " in cut:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,.;:") + "…"
