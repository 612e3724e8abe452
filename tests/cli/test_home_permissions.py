"""The home is private to its owner: folders 700, konsilium.yaml and the conversation log 600."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from konsilium.memory.log import ConversationLog, Exchange

KONSILIUM = [sys.executable, "-m", "konsilium.cli.main"]


def run(home: Path, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([*KONSILIUM, "--home", str(home), *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def record_one(home: Path) -> Path:
    db = home / "memory" / "conversations.sqlite3"
    with ConversationLog(db) as log:
        log.record(Exchange("chatcmpl-1", 1.0, "chat.completions", "konsilium", None, [], "hi", "stop", []))
    return db


def test_a_new_home_is_private_even_with_a_permissive_umask(tmp_path):
    home = tmp_path / "home"
    old = os.umask(0o022)
    try:
        proc = run(home, "config", "show", "--json")
        db = record_one(home)
        db_files = [db, Path(f"{db}-wal"), Path(f"{db}-shm")]
        with ConversationLog(db):  # open: the WAL companions exist while a connection does
            assert all(p.exists() for p in db_files)
            assert {p.name: mode(p) for p in db_files} == {p.name: 0o600 for p in db_files}
    finally:
        os.umask(old)
    assert mode(home) == 0o700
    assert mode(home / "konsilium.yaml") == 0o600
    assert mode(home / "memory") == 0o700
    assert "private" not in proc.stderr  # nothing to tell about a home made just now


def test_an_old_readable_home_is_tightened_with_a_notice(tmp_path):
    home = tmp_path / "home"
    run(home, "config", "show")
    db = record_one(home)
    (home / "roles.yaml").write_text("roles: {}\nadapters: {}\n")
    (home / "index").mkdir()
    # As konsilium before this fix left it: everything readable by every local user.
    for path in (home, home / "memory", home / "index"):
        os.chmod(path, 0o755)
    for path in (home / "konsilium.yaml", home / "roles.yaml", db):
        os.chmod(path, 0o644)

    proc = run(home, "config", "show", "--json")
    notice = proc.stderr.strip()
    assert notice.startswith(f"konsilium: {home} was readable by other users")
    for name in ("konsilium.yaml", "roles.yaml", "memory/conversations.sqlite3"):
        assert name in notice
    assert "\n" not in notice
    assert proc.stdout.lstrip().startswith("{")  # --json stays clean: the notice is on stderr
    assert mode(home) == mode(home / "memory") == mode(home / "index") == 0o700
    assert mode(home / "konsilium.yaml") == mode(home / "roles.yaml") == mode(db) == 0o600

    assert run(home, "config", "show", "--json").stderr == ""  # said once: now there is nothing to fix


def test_a_shared_folder_given_as_home_is_not_locked(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # like /tmp: others must keep using it
    run(shared, "config", "show")
    assert mode(shared) == 0o1777
    assert mode(shared / "konsilium.yaml") == 0o600
