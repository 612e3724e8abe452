"""`konsilium index` says why symlinks out of the vault and FIFOs were not indexed; `konsilium search` shows
note text and paths as text (citations intact, control characters visible)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from konsilium.cli.main import app


def run(home: Path, *args: str) -> Result:
    """`konsilium ARGS --home HOME` in this process (a process start costs seconds of imports); its stdout and
    stderr are pipes here too, not a terminal."""
    result = CliRunner().invoke(app, [*args, "--home", str(home)], env={"COLUMNS": "80"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    root = tmp_path_factory.mktemp("odd")
    vault, outside = root / "vault", root / "outside"
    (vault / "Projects").mkdir(parents=True)
    outside.mkdir()
    (vault / "Projects" / "gpu plan.md").write_text(
        "# GPU plan\n\n## Memory budget\nThe zeppelin budget for VRAM is 24 GB.\x1b]2;owned\x07\x1b[2J Done.\n"
    )
    (outside / "private.md").write_text("# Private\nzeppelin secrets outside the vault\n")
    os.symlink(outside / "private.md", vault / "Projects" / "leak.md")
    os.mkfifo(vault / "Projects" / "pipe.md")
    home = root / "home"
    proc = run(home, "index", str(vault))  # stderr is a pipe here: progress comes as lines
    return home, proc.stderr


def test_the_index_report_lists_what_was_not_read_and_why(indexed):
    _, stderr = indexed
    skipped = sorted(line for line in stderr.splitlines() if line.startswith("skipped "))
    assert skipped == [
        "skipped Projects/leak.md: symlink points outside the vault (not read)",
        "skipped Projects/pipe.md: not a regular file (a FIFO)",
    ]


def test_search_prints_citations_whole_and_control_characters_visibly(indexed):
    home, _ = indexed
    shown = run(home, "search", "zeppelin budget", "--mode", "bm25").stdout
    assert "[[Projects/gpu plan#GPU plan > Memory budget]]" in shown
    assert "\x1b" not in shown and "\x07" not in shown
    assert "\\x1b]2;owned\\x07\\x1b[2J" in shown
    assert "secrets" not in shown


def test_progress_goes_to_stderr_as_lines_when_it_is_not_a_terminal(indexed):
    _, stderr = indexed
    assert "indexing: 1/1 notes (100%)" in stderr.splitlines()
