"""`konsilium serve --watch` wiring: the watcher runs while the server runs and stops with it; without a vault
the command says so in one line. (The server itself is stubbed: the engine is not what is tested here.)"""

from __future__ import annotations

import time
from types import SimpleNamespace

from typer.testing import CliRunner

from konsilium.cli import serve_cmd
from konsilium.cli.main import app
from konsilium.config import open_home
from konsilium.grounding import Knowledge


def test_serve_watch_indexes_the_configured_vault_while_serving(tmp_path, monkeypatch):
    vault = tmp_path / "vault"
    vault.mkdir()
    (vault / "otter.md").write_text("# Otter\nThe otter floats on its back cracking shells.", encoding="utf-8")
    home = tmp_path / "home"
    home.mkdir()
    (home / "konsilium.yaml").write_text(f"vault:\n  paths: [{vault}]\nembedder:\n  model: default\n")
    seen: list = []

    def serve_until_indexed(_app, _host, _port, on_stop=None):
        knowledge = Knowledge(open_home(home))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if [p.note for p in knowledge.search("otter shells", 1, mode="bm25")] == ["otter.md"]:
                seen.append("indexed while serving")
                return
            time.sleep(0.2)

    fake_app = SimpleNamespace(state=SimpleNamespace(pipeline=SimpleNamespace(knowledge=None)))
    monkeypatch.setattr(serve_cmd, "build_app", lambda *a, **kw: fake_app)
    monkeypatch.setattr(serve_cmd, "run_until_stopped", serve_until_indexed)
    result = CliRunner().invoke(app, ["--home", str(home), "serve", "--watch"])
    assert result.exit_code == 0, result.output
    assert seen == ["indexed while serving"]


def test_serve_watch_without_a_vault_fails_in_one_line(tmp_path, monkeypatch):
    fake_app = SimpleNamespace(state=SimpleNamespace(pipeline=SimpleNamespace(knowledge=None)))
    monkeypatch.setattr(serve_cmd, "build_app", lambda *a, **kw: fake_app)
    monkeypatch.setattr(serve_cmd, "run_until_stopped", lambda *a, **kw: None)
    result = CliRunner().invoke(app, ["--home", str(tmp_path / "home"), "serve", "--watch"])
    assert result.exit_code == 1
    assert "--watch needs a vault: set vault.paths in konsilium.yaml" in result.output
