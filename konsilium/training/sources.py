"""Where training samples come from, and what is dropped on the way (with the reason, for the preview).

- Notes: continued pre-training on note text, chunked by the note's structure (sections, then paragraphs), each
  piece headed by the note's title and heading path. Conversation notes (imported chats) become chat samples.
- The conversation log: each exchange as a chat sample (its Sources tail removed: the model should not learn to
  invent citations), filtered by role, time, words and the user's rating.
- JSONL files in the common chat format (`samples.py`).
Every sample of one note shares the note's split, so held-out notes are never seen in training.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..grounding.citations import strip_sources
from ..memory.log import fold
from ..vault.chunker import chunk_note
from ..vault.encoding import looks_mojibake
from ..vault.model import Note
from ..vault.walker import Skipped, iter_vault_files, read_note
from .samples import Sample, hold_out, read_samples, split_for

_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Limits:
    """What a usable sample looks like; defaults come from the `training` settings."""

    chunk_chars: int = 2400
    min_chars: int = 40
    max_chars: int = 100_000
    eval_fraction: float = 0.1

    @classmethod
    def from_settings(cls, settings, eval_fraction: float | None = None) -> Limits:
        """From the `training` settings; `eval_fraction` (0: measure every note) overrides the setting."""
        share = settings.eval_fraction if eval_fraction is None else eval_fraction
        return cls(settings.chunk_chars, settings.min_chars, settings.max_chars, share)


@dataclass
class Collected:
    samples: list[Sample] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)  # reason -> count
    dropped_examples: dict[str, list[str]] = field(default_factory=dict)  # reason -> a few sources
    skipped_files: list[Skipped] = field(default_factory=list)

    def drop(self, reason: str, source: str) -> None:
        self.dropped[reason] += 1
        examples = self.dropped_examples.setdefault(reason, [])
        if len(examples) < 5:
            examples.append(source)


def note_text_samples(note: Note, limits: Limits) -> list[Sample]:
    """A plain note as text pieces of about `chunk_chars` characters, cut along its structure (no overlap: a
    perplexity over these counts every token once)."""
    pieces = []
    for chunk in chunk_note(note, max_chars=limits.chunk_chars, overlap_chars=0):
        head = f"# {note.title}\n" + (f"## {chunk.heading}\n" if chunk.heading else "")
        pieces.append(Sample(text=f"{head}\n{chunk.text}", source=note.path))
    return pieces


def note_chat_samples(note: Note, limits: Limits) -> list[Sample]:
    """A conversation note as chat samples of consecutive turns up to about twice `chunk_chars` each; every
    sample starts with a user turn and ends with an assistant turn (that is what gets learned)."""
    samples, current, size = [], [], 0
    budget = 2 * limits.chunk_chars
    for turn in note.turns:
        if turn.role not in ("user", "assistant") or not turn.text.strip():
            continue
        if turn.role == "user" and current and current[-1]["role"] == "assistant" and size >= budget:
            samples.append(Sample(messages=tuple(current), source=note.path))
            current, size = [], 0
        if current and current[-1]["role"] == turn.role:  # two turns of one speaker in a row: one message
            current[-1] = {"role": turn.role, "content": current[-1]["content"] + "\n\n" + turn.text}
        elif current or turn.role == "user":
            current.append({"role": turn.role, "content": turn.text})
        size += len(turn.text)
    while current and current[-1]["role"] != "assistant":
        current.pop()
    if current:
        samples.append(Sample(messages=tuple(current), source=note.path))
    return samples


def collect_notes(
    root: Path, limits: Limits, into: Collected, progress: Callable | None = None, tags: tuple[str, ...] = ()
) -> None:
    """Every note under `root` (with any of `tags` when given: Obsidian's nesting, `sport` takes `#sport/run`)."""
    from ..index.scope import Scope

    scope = Scope.of(tags=tags)
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder of notes")
    paths = list(iter_vault_files(root, skipped=into.skipped_files))
    found: list[Sample] = []
    for done, rel in enumerate(paths, 1):
        note = read_note(root, rel)
        if isinstance(note, Skipped):
            into.skipped_files.append(note)
        elif scope is not None and not scope.admits_tags(note.tags):
            into.drop("without the tags asked for", rel)
        else:
            found.extend(note_chat_samples(note, limits) if note.turns else note_text_samples(note, limits))
        if progress:
            progress(done, len(paths), rel)
    into.samples.extend(hold_out(found, limits.eval_fraction))  # each folder holds out its own share


def notes_samples(root: Path, limits: Limits) -> list[Sample]:
    """The samples of a folder of notes exactly as `dataset build --notes` makes them (what perplexity reads)."""
    collected = Collected()
    collect_notes(root, limits, collected)
    return clean(collected, limits).samples


def collect_jsonl(path: Path, limits: Limits, into: Collected) -> None:
    into.samples.extend(read_samples(path, limits.eval_fraction))


def collect_exchanges(exchanges: Iterable, limits: Limits, into: Collected) -> None:
    """Logged exchanges (`memory.log.Exchange`) as chat samples: the request's messages and the answer."""
    for exchange in exchanges:
        if exchange.status != "ok" or not (exchange.response or "").strip():
            into.drop("exchange without an answer (error or cancelled)", exchange.id)
            continue
        if getattr(exchange, "output", "text") != "text" or any(
            isinstance(m, dict) and (m.get("role") == "tool" or m.get("tool_calls")) for m in exchange.messages or []
        ):
            into.drop("a tool-calling or JSON exchange (not a chat to learn from)", exchange.id)
            continue
        messages = [
            {"role": "system" if m.get("role") == "developer" else m.get("role"), "content": m.get("content")}
            for m in exchange.messages or []
            if isinstance(m, dict) and isinstance(m.get("content"), str)
        ]
        messages = [m for m in messages if m["role"] in ("system", "user", "assistant")]
        messages.append({"role": "assistant", "content": strip_sources(exchange.response)})
        source = f"log:{exchange.id}"
        into.samples.append(
            Sample(messages=tuple(messages), source=source, split=split_for(source, limits.eval_fraction))
        )


def _body(sample: Sample) -> str:
    """What makes two samples the same: a note piece without its title/heading lines, so a copy of a note under
    another name is a duplicate."""
    content = sample.content()
    if sample.messages is None and content.startswith("# "):
        head, _, rest = content.partition("\n\n")
        if all(line.startswith("#") for line in head.split("\n")):
            return rest
    return content


def clean(collected: Collected, limits: Limits) -> Collected:
    """Drop what should not be learned: empty or tiny, huge, broken encoding, duplicates (the first is kept)."""
    kept: list[Sample] = []
    seen: set[str] = set()
    for sample in collected.samples:
        content = sample.content()
        words = _SPACES.sub(" ", fold(_body(sample))).strip()
        source = sample.source or content[:60]
        if len(words) < limits.min_chars:
            collected.drop(f"too short (under {limits.min_chars} characters)", source)
        elif len(content) > limits.max_chars:
            collected.drop(f"too large (over {limits.max_chars} characters)", source)
        elif looks_mojibake(content):
            collected.drop("broken encoding (mojibake)", source)
        else:
            key = hashlib.sha256(words.encode("utf-8")).hexdigest()
            if key in seen:
                collected.drop("duplicate of an earlier sample", source)
            else:
                seen.add(key)
                kept.append(sample)
    collected.samples = kept
    return collected
