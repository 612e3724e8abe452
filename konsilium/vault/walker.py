"""Finding and reading the notes of a vault, without ever raising on a bad file.

A vault is a folder the user keeps editing while we index it: files vanish, some are huge or binary,
some are symlinks pointing anywhere. Every such case becomes a `Skipped` with a reason the CLI can show.
"""

from __future__ import annotations

import os
import re
import stat
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


def iter_vault_files(
    root: Path,
    include: list[str] | None = None,
    exclude: list[str] | None = None,
    skipped: list[Skipped] | None = None,
) -> Iterator[str]:
    """Yield vault-relative POSIX paths of `.md` notes, sorted.

    Dot-folders and dot-files (`.obsidian/`, `.trash/`, `.git/`) are skipped. Folder symlinks are never
    followed (that rules out loops and escapes); a file symlink is used only if it resolves to a file
    inside the vault. `include`/`exclude` are glob patterns on the relative path (see `matches`).
    What looks like a note but is not read (a symlink leaving the vault, a broken link, a FIFO, an unreadable
    folder) is appended to `skipped` with its reason, so the user learns why it is missing.
    """
    root = Path(root)
    real_root = os.path.realpath(root)
    found: list[str] = []
    problems: list[Skipped] = []

    def wanted(rel: str) -> bool:
        if include and not any(matches(rel, p) for p in include):
            return False
        return not (exclude and any(matches(rel, p) for p in exclude))

    def unreadable(exc: OSError) -> None:
        rel = Path(os.path.relpath(exc.filename or root, root)).as_posix()
        if not exclude or not any(matches(rel, p) for p in exclude):
            problems.append(Skipped(rel + "/", f"folder not readable ({exc.strerror or exc})"))

    for dirpath, dirnames, filenames in os.walk(root, followlinks=False, onerror=unreadable):
        kept = []
        for name in dirnames:
            if name.startswith("."):
                continue
            full = os.path.join(dirpath, name)
            if not os.path.islink(full):
                kept.append(name)
                continue
            rel = Path(os.path.relpath(full, root)).as_posix()
            target = os.path.realpath(full)
            # One inside the vault is indexed where it really lives; one leaving it is never read.
            if not _inside(target, real_root) and (not exclude or not any(matches(rel, p) for p in exclude)):
                problems.append(Skipped(rel + "/", "symlinked folder points outside the vault (not followed)"))
        dirnames[:] = kept
        for name in filenames:
            if name.startswith(".") or not name.lower().endswith(".md"):
                continue
            full = os.path.join(dirpath, name)
            rel = Path(os.path.relpath(full, root)).as_posix()
            if not wanted(rel):
                continue
            reason = _not_a_note(full, real_root)
            if reason:
                problems.append(Skipped(rel, reason))
                continue
            found.append(rel)
    if skipped is not None:
        skipped.extend(sorted(problems, key=lambda s: s.path))
    yield from sorted(found)


def _not_a_note(full: str, real_root: str) -> str | None:
    """Why a `.md` entry is not read as a note, or None when it is a regular file inside the vault."""
    if os.path.islink(full):
        if not os.path.exists(full):
            return "broken symlink (its target does not exist)"
        if not _inside(os.path.realpath(full), real_root):
            return "symlink points outside the vault (not read)"
    try:
        mode = os.stat(full).st_mode
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    if not stat.S_ISREG(mode):
        return f"not a regular file ({_file_kind(mode)})"
    return None


def _file_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


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
        info = full.stat()
        if not stat.S_ISREG(info.st_mode):  # opening a FIFO would block the whole run
            return Skipped(rel, f"not a regular file ({_file_kind(info.st_mode)})")
        size = info.st_size
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
