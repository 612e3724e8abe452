"""`konsilium eval retrieval` keeps its index of a vault between runs: an unchanged vault is not re-embedded."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from konsilium.cli.main import app

NOTES = {
    "zebra.md": "# Zebra\nThe zebra herd grazes near the river every morning.",
    "heron.md": "# Heron\nA grey heron fishes in the shallow water.",
}


def test_a_second_eval_on_an_unchanged_vault_reuses_the_embeddings(tmp_path):
    vault = tmp_path / "vault"
    vault.mkdir()
    for name, text in NOTES.items():
        (vault / name).write_text(text, encoding="utf-8")
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"question": "grey heron", "expected": ["heron.md"]}) + "\n", encoding="utf-8")
    args = ["--home", str(tmp_path / "home"), "eval", "retrieval", "--vault", str(vault)]
    args += ["--questions", str(questions), "--mode", "bm25", "--json"]

    def run() -> dict:
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    first, second = run(), run()
    assert first["index"]["embedded_chunks"] == 2 and first["modes"]["bm25"]["hit"] == 1.0
    assert second["index"]["embedded_chunks"] == 0 and second["index"]["unchanged"] == 2
    assert second["modes"] == first["modes"]
    assert first["index"]["home"].startswith(str(tmp_path / "home" / "cache" / "eval"))
    (vault / "otter.md").write_text("# Otter\nThe otter cracks shells.", encoding="utf-8")
    assert run()["index"]["embedded_chunks"] == 1  # incremental: only the new note
