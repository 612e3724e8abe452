"""What looks like a note but is not read must show up with its reason, never vanish silently."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from konsilium.vault.walker import Skipped, iter_vault_files, read_note


@pytest.fixture
def odd_vault(tmp_path):
    vault = tmp_path / "vault"
    (vault / "notes").mkdir(parents=True)
    (vault / "notes" / "real.md").write_text("# Real\nA note.\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text("# Secret\nNot part of the vault.\n")
    os.symlink(outside / "secret.md", vault / "notes" / "escape.md")
    os.symlink(outside, vault / "linked-out")
    os.symlink(vault / "notes" / "real.md", vault / "alias.md")  # inside the vault: used
    os.symlink(tmp_path / "gone.md", vault / "dangling.md")
    os.mkfifo(vault / "notes" / "pipe.md")
    return vault


def test_symlinks_out_of_the_vault_and_fifos_are_reported_with_reasons(odd_vault):
    skipped: list[Skipped] = []
    found = list(iter_vault_files(odd_vault, skipped=skipped))
    assert found == ["alias.md", "notes/real.md"]
    reasons = {s.path: s.reason for s in skipped}
    assert set(reasons) == {"notes/escape.md", "linked-out/", "dangling.md", "notes/pipe.md"}
    assert "outside the vault" in reasons["notes/escape.md"]
    assert "outside the vault" in reasons["linked-out/"]
    assert "broken symlink" in reasons["dangling.md"]
    assert reasons["notes/pipe.md"] == "not a regular file (a FIFO)"


def test_excluded_paths_are_not_reported(odd_vault):
    skipped: list[Skipped] = []
    list(iter_vault_files(odd_vault, exclude=["notes/**", "linked-out", "dangling.md"], skipped=skipped))
    assert skipped == []


@pytest.mark.timeout(30)  # the defect was a read that blocks forever
def test_reading_a_fifo_returns_a_reason_instead_of_blocking(odd_vault):
    assert read_note(odd_vault, "notes/pipe.md") == Skipped("notes/pipe.md", "not a regular file (a FIFO)")


def _can_drop_to_nobody() -> bool:
    return hasattr(os, "setuid") and os.geteuid() == 0


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="needs POSIX permissions to make a folder unreadable")
def test_an_unreadable_folder_is_reported():
    # As root, chmod 000 does not stop reading; the walk then runs as `nobody` in a child process, for whom it does.
    with tempfile.TemporaryDirectory() as scratch:
        vault = Path(scratch) / "vault"
        (vault / "private").mkdir(parents=True)
        (vault / "private" / "hidden.md").write_text("# Hidden\n")
        (vault / "open.md").write_text("# Open\n")
        os.chmod(scratch, 0o755)
        os.chmod(vault, 0o755)
        os.chmod(vault / "private", 0o000)
        # Imports first: root's Python files need not be readable for `nobody`.
        script = (
            "import os, sys\n"
            "from konsilium.vault.walker import iter_vault_files\n"
            + ("os.setgid(65534); os.setuid(65534)\n" if _can_drop_to_nobody() else "")
            + "skipped = []\n"
            "print(list(iter_vault_files(sys.argv[1], skipped=skipped)))\n"
            "print([(s.path, s.reason) for s in skipped])\n"
        )
        import konsilium

        env = {**os.environ, "PYTHONPATH": str(Path(konsilium.__file__).parents[1])}
        proc = subprocess.run(
            [sys.executable, "-c", script, str(vault)], capture_output=True, text=True, env=env, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        found, skipped = proc.stdout.splitlines()
        assert found == "['open.md']"
        assert skipped == "[('private/', 'folder not readable (Permission denied)')]"
