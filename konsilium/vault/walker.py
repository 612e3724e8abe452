"""Finding and reading the notes of a vault, without ever raising on a bad file.

A vault is a folder the user keeps editing while we index it: files vanish, some are huge or binary,
some are symlinks pointing anywhere. Every such case becomes a `Skipped` with a reason the CLI can show.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .encoding import decode_text, has_bom
from .markdown import parse_note
from .model import Note

BINARY_SNIFF_BYTES = 8192
MAX_LINE_CHARS = 100_000


@dataclass(frozen=True)
class Skipped:
    """A file that was not turned into a note, and why (shown to the user, so in plain words)."""

    path: str
    reason: str


def iter_vault_files(root: Path, include: list[str] | None = None, exclude: list[str] | None = None) -> Iterator[str]:
    """Yield vault-relative POSIX paths of `.md` notes, sorted.

    Dot-folders and dot-files (`.obsidian/`, `.trash/`, `.git/`) are skipped. Folder symlinks are never
    followed (that rules out loops and escapes); a file symlink is used only if it resolves to a file
    inside the vault. `include`/`exclude` are glob patterns on the relative path (see `matches`).
    """
    root = Path(root)
    real_root = os.path.realpath(root)
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False, onerror=lambda _e: None):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and not os.path.islink(os.path.join(dirpath, d))]
        for name in filenames:
            if name.startswith(".") or not name.lower().endswith(".md"):
                continue
            full = os.path.join(dirpath, name)
            if os.path.islink(full) and not _inside(os.path.realpath(full), real_root):
                continue
            if not os.path.isfile(full):  # broken link, fifo, ...
                continue
            rel = Path(os.path.relpath(full, root)).as_posix()
            if include and not any(matches(rel, p) for p in include):
                continue
            if exclude and any(matches(rel, p) for p in exclude):
                continue
            found.append(rel)
    yield from sorted(found)


def _inside(path: str, real_root: str) -> bool:
    return path == real_root or path.startswith(real_root.rstrip(os.sep) + os.sep)


@lru_cache(maxsize=256)
def _glob_regex(pattern: str) -> re.Pattern:
    """Glob → regex: `*` and `?` stay within one folder, `**` crosses folders (`a/**/b`, `**/*.md`)."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[" and (j := pattern.find("]", i + 2)) > 0:
            body = pattern[i + 1 : j]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body).replace("\\", "\\\\") + "]")
            i = j + 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out))


def matches(rel: str, pattern: str) -> bool:
    """Does a vault-relative path match a glob?

    A pattern with a `/` is matched against the whole path or one of its folders (`Archive/**`,
    `0_chatgpt/AI`); one without a `/` against any single name in the path (`*.excalidraw.md`, `drafts`).
    """
    pattern = pattern.strip().strip("/")
    if not pattern:
        return False
    rx = _glob_regex(pattern)
    parts = rel.split("/")
    if "/" not in pattern:
        return any(rx.fullmatch(p) for p in parts)
    return any(rx.fullmatch("/".join(parts[:n])) for n in range(len(parts), 0, -1))


def read_note(root: Path, rel: str, max_bytes: int = 5_000_000) -> Note | Skipped:
    """Read and parse one note; every problem becomes a `Skipped` (or a warning on the note)."""
    root = Path(root)
    full = root / rel
    try:
        if not _inside(os.path.realpath(full), os.path.realpath(root)):
            return Skipped(rel, "points outside the vault")
        size = full.stat().st_size
        if size > max_bytes:
            return Skipped(rel, f"too large ({size} bytes > {max_bytes})")
        with open(full, "rb") as fh:
            data = fh.read(max_bytes + 1)  # the file may grow between stat() and read()
    except FileNotFoundError:
        return Skipped(rel, "file vanished while indexing")
    except PermissionError:
        return Skipped(rel, "permission denied")
    except IsADirectoryError:
        return Skipped(rel, "is a directory")
    except OSError as exc:
        return Skipped(rel, f"unreadable ({exc.strerror or exc})")
    if len(data) > max_bytes:
        return Skipped(rel, f"too large (> {max_bytes} bytes)")
    if not data.strip():
        return Skipped(rel, "empty file")
    if b"\x00" in data[:BINARY_SNIFF_BYTES] and not has_bom(data):  # UTF-16 text is full of NULs
        return Skipped(rel, "binary file (NUL bytes)")
    try:
        text, warnings = decode_text(data)
        if not text.strip():
            return Skipped(rel, "empty file")
        text, cut = _truncate_long_lines(text)
        if cut:
            warnings.append(f"{cut} line(s) longer than {MAX_LINE_CHARS} characters truncated")
        note = parse_note(rel, text)
    except Exception as exc:  # a parser bug must not stop a whole vault from indexing
        return Skipped(rel, f"could not parse ({type(exc).__name__}: {exc})")
    note.warnings[:0] = warnings
    return note


def _truncate_long_lines(text: str) -> tuple[str, int]:
    """Minified blobs pasted into a note would flood the index; keep their start only."""
    if len(text) <= MAX_LINE_CHARS or all(len(line) <= MAX_LINE_CHARS for line in text.split("\n")):
        return text, 0
    lines = text.split("\n")
    cut = sum(1 for line in lines if len(line) > MAX_LINE_CHARS)
    return "\n".join(line[:MAX_LINE_CHARS] for line in lines), cut
