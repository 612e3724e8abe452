"""An interactive `konsilium search` left open while `konsilium index --rebuild` runs reads the new index for the
next question (a rebuild writes a new generation of the tables; the old one is only kept for a while)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from typer.testing import CliRunner

from konsilium.cli.main import app


def index(home, vault, *extra: str) -> None:
    result = CliRunner().invoke(app, ["--home", str(home), "index", str(vault), "--json", *extra])
    assert result.exit_code == 0, result.output


def test_an_open_search_answers_from_the_rebuilt_index(tmp_path):
    vault, home = tmp_path / "vault", tmp_path / "home"
    vault.mkdir()
    home.mkdir()
    (home / "konsilium.yaml").write_text("embedder:\n  model: default\n", encoding="utf-8")
    (vault / "otter.md").write_text("# Otters\nThe otter floats on its back cracking shells.\n", encoding="utf-8")
    index(home, vault)
    search = subprocess.Popen(
        [sys.executable, "-m", "konsilium.cli.main", "--home", str(home), "search", "--json", "--mode", "bm25"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "KONSILIUM_HOME": str(home)},
    )

    def ask(question: str) -> list[str]:
        search.stdin.write(question + "\n")
        search.stdin.flush()
        lines = []
        while not lines or lines[-1].strip() not in ("]", "[]"):
            line = search.stdout.readline()
            assert line, search.stderr.read()
            lines.append(line)
        return [hit["note"] for hit in json.loads("".join(lines))]

    try:
        assert ask("otter shells") == ["otter.md"]
        (vault / "badger.md").write_text("# Badgers\nThe badger digs burrows called setts.\n", encoding="utf-8")
        index(home, vault, "--rebuild")
        assert ask("badger setts") == ["badger.md"]
    finally:
        search.stdin.close()
        search.wait(timeout=30)
    assert search.returncode == 0
