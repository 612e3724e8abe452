"""Tags for an index built before they were stored: read from each note as the vault has it now."""

from __future__ import annotations

from pathlib import Path

from .store import NoteRecord


def current_tags(records: list[NoteRecord]) -> dict[str, list[str]]:
    """note_key → the note's tags (frontmatter and inline), for the notes that can be read now; the others are
    left out, so they stay unknown and are tried again (or removed by the next `konsilium index`)."""
    from ..vault.walker import Skipped, read_note

    found: dict[str, list[str]] = {}
    for record in records:
        parsed = read_note(Path(record.vault), record.note)
        if not isinstance(parsed, Skipped):
            found[record.note_key] = list(parsed.tags)
    return found
