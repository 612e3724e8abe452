"""A home is private: `konsilium.yaml` may hold API keys, the conversation log holds every exchange.

Folders are 0700 and files 0600, whatever the umask. A home made by an older konsilium (0755 / 0644) is
tightened the next time it is opened, with a one-line notice on stderr saying what changed.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600

# Relative to the home. The log's names mirror memory/log.py (DB_NAME) plus SQLite's WAL companions, which
# SQLite creates with the main file's mode.
PRIVATE_DIRS = ("index", "memory")
PRIVATE_FILES = (
    "konsilium.yaml",
    "roles.yaml",
    "memory/conversations.sqlite3",
    "memory/conversations.sqlite3-wal",
    "memory/conversations.sqlite3-shm",
)


def create_private_file(path: Path) -> None:
    """Create `path` empty with mode 0600 if it does not exist (so SQLite, or a later write, keeps that mode)."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE))
    except FileExistsError:
        pass


def write_private_text(path: Path, text: str) -> None:
    """Write `text` to `path` atomically (temp file + rename), readable by its owner only."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, PRIVATE_FILE)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        os.fchmod(fh.fileno(), PRIVATE_FILE)  # an old tmp file kept its mode
        fh.write(text)
    os.replace(tmp, path)


def make_private(root: Path) -> list[str]:
    """Tighten the home folder, its state folders and its state files; return what was worth telling."""
    changed: list[str] = []
    if _may_tighten_root(root) and _tighten(root, PRIVATE_DIR):
        changed.append(f"{root}/")
    for name in PRIVATE_DIRS:
        # Made by the indexer or the log with the umask's mode; inside a private home that hid nothing,
        # so this is not worth a notice.
        _tighten(root / name, PRIVATE_DIR)
    for name in PRIVATE_FILES:
        if _tighten(root / name, PRIVATE_FILE):
            changed.append(name)
    return changed


def tell(root: Path, changed: list[str]) -> None:
    if changed:
        sys.stderr.write(
            f"konsilium: {root} was readable by other users of this machine; made it private "
            f"(folders 700, files 600): {', '.join(changed)}\n"
        )
        sys.stderr.flush()


def _may_tighten_root(root: Path) -> bool:
    # `--home /tmp` or `--home ~` is a mistake, but locking other users out of /tmp (sticky, shared) or changing
    # the user's own home folder would be a worse one: only the files konsilium owns are tightened there.
    try:
        info = root.stat()
    except OSError:
        return False
    if info.st_mode & stat.S_ISVTX or info.st_uid != os.getuid():
        return False
    try:
        return root.resolve() != Path.home().resolve()
    except (OSError, RuntimeError):
        return True


def _tighten(path: Path, mode: int) -> bool:
    """chmod `path` to `mode` when others or the group may read it; a symlink or a file we do not own is left."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    if stat.S_ISLNK(info.st_mode) or info.st_uid != os.getuid() or not info.st_mode & 0o077:
        return False
    try:
        os.chmod(path, stat.S_IMODE(info.st_mode) & mode)
    except OSError:
        return False
    return True
