"""Obsidian-style citations: `[[note title]]` links and `[^n]: [[path/to/note#heading]]` footnotes.

The footnotes are numbered as the notes were shown to the model, so a `[^2]` the model writes points at the
second note it was given. Turn labels ("User", "Assistant") are our chunker's pseudo-headings for chat notes,
not headings Obsidian can link to, so they are dropped from the link.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TURN_LABELS = {"user", "assistant"}
# Characters Obsidian does not allow in a link target.
_UNLINKABLE = re.compile(r"[#|^\[\]]")


@dataclass(frozen=True)
class Source:
    """One retrieved passage offered to the model: a note, the heading it sits under and its score."""

    number: int
    note: str  # path relative to its vault, with ".md"
    title: str
    heading: str  # our heading path, "H1 > H2"
    score: float
    collection: str = ""

    def link_target(self) -> str:
        return wikilink_target(self.note, self.heading)

    def to_json(self) -> dict:
        return {"note": self.note, "heading": self.heading, "score": round(self.score, 6), "title": self.title}


def linkable_heading(heading: str) -> str:
    """The last real heading of a heading path ("Assistant > Setup > GPU" -> "GPU"), "" if none."""
    parts = [p.strip() for p in heading.split(" > ") if p.strip()]
    parts = [p for p in parts if p.lower() not in TURN_LABELS]
    return _UNLINKABLE.sub(" ", parts[-1]).strip() if parts else ""


def wikilink_target(note: str, heading: str = "") -> str:
    path = note.removesuffix(".md")
    anchor = linkable_heading(heading)
    return f"{path}#{anchor}" if anchor else path


def render_sources(sources: list[Source]) -> str:
    """The tail appended to a grounded answer: a line of `[[title]]` links, then one footnote per passage."""
    if not sources:
        return ""
    titles: list[str] = []
    for source in sources:
        # Obsidian resolves `[[name]]` by file name (a note's title in Obsidian is its file name).
        title = _UNLINKABLE.sub(" ", source.note.removesuffix(".md").rsplit("/", 1)[-1]).strip()
        if title not in titles:
            titles.append(title)
    lines = ["", "", "---", "Sources: " + " · ".join(f"[[{title}]]" for title in titles), ""]
    footnotes = {source.number: source.link_target() for source in sources}  # one per number, in order
    lines += [f"[^{number}]: [[{target}]]" for number, target in sorted(footnotes.items())]
    return "\n".join(lines) + "\n"


_SOURCES_TAIL = re.compile(r"\n*---\nSources: [^\n]*\n(?:\n?\[\^\d+\]: [^\n]*\n?)*\s*\Z")


def strip_sources(answer: str) -> str:
    """The answer without the tail `render_sources` appended (what the model itself wrote)."""
    return _SOURCES_TAIL.sub("", answer).rstrip()
