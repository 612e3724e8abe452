"""Memories as Markdown notes in a folder the user chooses (his vault), so he can read them in Obsidian — and the
notes of memories he later forgets are deleted there too, so they cannot come back through the vault's index."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

MARKER = "konsilium_memory: "  # the front-matter line that says a note is a memory konsilium wrote
_UNSAFE = re.compile(r"[\\/:*?\"<>|#^\[\]\n\r\t]+")


def note_path(folder: Path, memory) -> Path:
    title = _UNSAFE.sub(" ", memory.text)[:60].strip() or memory.id
    return folder / f"{title} ({memory.id}).md"


def write_notes(memories, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("* (mem-*).md"):  # a memory edited since the last export has a new title
        if _written_by_us(old):
            old.unlink()
    written = []
    for memory in memories:
        path = note_path(folder, memory)
        front = [
            "---",
            f"{MARKER}{memory.id}",
            f"about: {_yaml_string(memory.about)}",
            f"kind: {memory.kind}",
            f"pinned: {'true' if memory.pinned else 'false'}",
            f"said: {datetime.fromtimestamp(memory.created).astimezone().isoformat(timespec='seconds')}",
            "tags: [konsilium/memory]",
            "---",
            "",
            memory.text,
            "",
        ]
        path.write_text("\n".join(front), encoding="utf-8")
        written.append(path)
    return written


def remove_notes(folders: list[str], memory_ids: list[str]) -> list[Path]:
    """Delete the exported notes of these memories (only files konsilium wrote: checked by their front matter)."""
    removed = []
    for folder in folders:
        for memory_id in memory_ids:
            for path in Path(folder).glob(f"* ({memory_id}).md"):
                if _written_by_us(path, memory_id):
                    path.unlink()
                    removed.append(path)
    return removed


def _written_by_us(path: Path, memory_id: str | None = None) -> bool:
    try:
        head = path.read_text(encoding="utf-8")[:400]
    except (OSError, UnicodeDecodeError):
        return False
    wanted = f"\n{MARKER}{memory_id}\n" if memory_id else f"\n{MARKER}mem-"
    return head.startswith("---\n") and wanted in head


def _yaml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
