"""`konsilium stats` and `konsilium plan storage --from-index` describe one index with one computation."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from konsilium.cli.main import app
from konsilium.config import open_home
from konsilium.index.indexer import Indexer


def cli(*args: str) -> dict:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_stats_and_plan_storage_give_the_same_size_for_a_million_pages(tmp_path, embedder):
    vault = tmp_path / "vault"
    vault.mkdir()
    for n in range(6):
        (vault / f"note {n}.md").write_text(f"# Note {n}\n" + f"Paragraph {n} about rivers and herons. " * 80)
    home = open_home(tmp_path / "home")
    Indexer(home, embedder=embedder).run([vault])
    Indexer(home, embedder=embedder, rebuild=True).run([vault])  # old versions and a retired generation on disk
    stats = cli("--home", str(home.root), "stats", "--json")
    plan = cli("plan", "storage", "--pages", "1000000", "--from-index", "--home", str(home.root), "--json")
    assert stats["bytes_per_million_pages"] == plan["bytes"]["on_disk"]
    assert stats["bytes"]["on_disk"] >= stats["bytes"]["on_disk_latest_version"] > 0
    half = cli("--home", str(home.root), "stats", "--page-chars", "1000", "--json")
    assert half["bytes_per_million_pages"] == round(plan["bytes"]["on_disk"] / 2)
