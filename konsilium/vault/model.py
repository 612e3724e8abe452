"""Plain data passed from `vault/` to `index/`: notes, conversation turns and chunks."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Link:
    """A `[[target#heading^block|alias]]` or `![[embed]]` inside a note."""

    target: str  # note name or path as written, without .md
    heading: str | None = None
    block: str | None = None
    alias: str | None = None
    embed: bool = False


@dataclass(frozen=True)
class Turn:
    """One message of a nexus-ai-chat-importer conversation note."""

    role: str  # "user" | "assistant"
    text: str
    timestamp: str | None = None  # as written in the note, e.g. "30.06.2025 at 2:53"
    uid: str | None = None


@dataclass
class Section:
    """A run of body text under one heading path (or one conversation turn)."""

    heading_path: list[str]
    text: str
    role: str | None = None  # set for conversation turns
    turn: int | None = None  # index into Note.turns, so chunks never mix two messages


@dataclass
class Note:
    """A parsed Markdown note. `path` is relative to the vault root, with forward slashes."""

    path: str
    title: str
    properties: dict = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    # Problems that were repaired or degraded on the way (e.g. "mojibake repaired", "invalid YAML").
    warnings: list[str] = field(default_factory=list)


@dataclass
class Chunk:
    """A retrievable piece of a note with the context needed to cite it."""

    note: str  # note path relative to the vault root
    title: str
    heading: str  # heading path joined with " > ", "" at the top of the note
    text: str
    ordinal: int  # position of the chunk inside its note
