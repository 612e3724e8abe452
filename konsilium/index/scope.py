"""A retrieval scope (folders and Obsidian tags) and the tag form the index stores.

Tags are stored per chunk as one string, `|a|b/c|` (lowercased, without `#`), so a store can filter on them
before ranking: the scope tag `b` matches `|b|` or `|b/` (Obsidian's nesting), never `|bc|`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

SEPARATOR = "|"


def normalize_tag(tag: str) -> str:
    """`#Sport/Running/` → `sport/running`; Obsidian tags are case-insensitive."""
    return tag.strip().lstrip("#").strip("/").lower().replace(SEPARATOR, "")


def tags_field(tags: Iterable[str]) -> str:
    """The stored form of a note's tags: `|a|b/c|`, or `|` for none (never NULL, which marks "not read")."""
    names = sorted({t for t in (normalize_tag(tag) for tag in tags) if t})
    return SEPARATOR + "".join(name + SEPARATOR for name in names)


def stored_tags(field: str | None) -> list[str]:
    return [t for t in (field or "").split(SEPARATOR) if t]


@dataclass(frozen=True)
class Scope:
    """Notes under any of `folders` (vault-relative) and, when given, carrying any of `tags` (nested)."""

    folders: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    @classmethod
    def of(cls, folders: Iterable[str] = (), tags: Iterable[str] = ()) -> Scope | None:
        """A normalized scope, or None when it narrows nothing (empty names are ignored)."""
        clean_folders = tuple(dict.fromkeys(f.strip("/") for f in folders if f.strip("/")))
        clean_tags = tuple(dict.fromkeys(t for t in (normalize_tag(tag) for tag in tags) if t))
        return cls(clean_folders, clean_tags) if clean_folders or clean_tags else None

    def admits_tags(self, tags: Iterable[str]) -> bool:
        """Whether a note with `tags` passes the tag part of the scope (nested: `sport` admits `sport/running`)."""
        if not self.tags:
            return True
        field = tags_field(tags)
        return any(f"{SEPARATOR}{tag}{SEPARATOR}" in field or f"{SEPARATOR}{tag}/" in field for tag in self.tags)
