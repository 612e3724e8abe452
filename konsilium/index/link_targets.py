"""Which indexed note an Obsidian link names, as Obsidian resolves it: the exact path (with or without `.md`), a
path's end (`[[Note]]` is any `…/Note.md`, `[[sub/Note]]` any `…/sub/Note.md`; of several, the shortest path, as
Obsidian picks), then, where no file matches, the note's title and its front-matter aliases. Names compare
case-insensitively and in NFC (macOS writes file names decomposed). Shared by both stores (index/store.py)."""

from __future__ import annotations

import re
import unicodedata

from .store import NoteRecord

MAX_CANDIDATES = 20
# What a wikilink target cannot hold: the Sources line of an answer writes spaces instead (grounding/citations.py).
_UNLINKABLE = re.compile(r"[#|^\[\]]")


def link_key(name: str) -> str:
    """A name as links compare it: NFC, case-folded, `/` separators, no `.md`, unlinkable characters as spaces."""
    name = unicodedata.normalize("NFC", str(name)).replace("\\", "/").strip().casefold()
    name = name.removesuffix(".md")
    return " ".join(_UNLINKABLE.sub(" ", name).split()).strip("/ ")


def _order(record: NoteRecord) -> tuple:
    return (len(record.note), record.note, record.vault)  # the shortest path first, then stably


def rank_link_targets(link: str, records) -> list[NoteRecord]:
    """The notes `link` (a link target without `#heading` or `|alias`) names, best first; empty: none. A path
    match comes before the other notes of its file name, which follow as candidates."""
    wanted = link_key(link)
    if not wanted:
        return []
    records = list(records)
    raw = unicodedata.normalize("NFC", link.strip()).removesuffix(".md")
    tail = "/" + wanted
    tiers = (
        lambda r: unicodedata.normalize("NFC", r.note).removesuffix(".md") == raw,  # the very path, in its case
        lambda r: link_key(r.note) == wanted,
        lambda r: ("/" + link_key(r.note)).endswith(tail),  # the file name, or a path's last folders
    )
    found: dict[str, NoteRecord] = {}
    for matches in tiers:
        for record in sorted((r for r in records if matches(r)), key=_order):
            found.setdefault(record.note_key, record)
    if not found:  # no file of that name: the note's title, then its aliases
        for matches in (
            lambda r: link_key(r.title or "") == wanted,
            lambda r: any(link_key(alias) == wanted for alias in r.aliases or []),
        ):
            found = {r.note_key: r for r in sorted((r for r in records if matches(r)), key=_order)}
            if found:
                break
    return list(found.values())[:MAX_CANDIDATES]
