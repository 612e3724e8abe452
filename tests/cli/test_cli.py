"""The `konsilium` command: JSON shapes scripts rely on, clear errors, crash safety. Most commands run in this
process through the real typer app (a process start costs ~10 s of imports); the real process where it is what is
tested: exit status and stderr of the installed entry point, and a kill -9 mid-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_runner import run
from shared_data import HELP_VAULT, SAMPLE_VAULT, needs

KONSILIUM = [sys.executable, "-m", "konsilium.cli.main"]


def run_process(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "KONSILIUM_HOME": str(home)}
    proc = subprocess.run([*KONSILIUM, *args], capture_output=True, text=True, env=env, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"konsilium {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def small_home(tmp_path_factory):
    """A home with a few real sample notes indexed through the CLI."""
    import shutil

    root = tmp_path_factory.mktemp("cli")
    vault = root / "vault"
    step_dir = SAMPLE_VAULT / "0_chatgpt" / "AI" / "2025-06-29 - 1LTM_4"
    for name in ("25_под_мою_видеокарта_как.md", "27_контекст_беседы_самой_какой.md", "08_поищи_это_про_n8n.md"):
        target = vault / "steps" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(step_dir / name, target)
    (vault / "english.md").write_text("# GPUs\nA note about [[25_под_мою_видеокарта_как]] and VRAM.\n")
    home = root / "home"
    report = json.loads(run(home, "index", str(vault), "--json").stdout)
    return home, vault, report


@needs(SAMPLE_VAULT)
def test_index_json_has_the_documented_keys(small_home):
    _, _, report = small_home
    for key in ("notes", "chunks", "added", "updated", "deleted", "unchanged", "skipped", "seconds"):
        assert key in report
    assert report["notes"] == report["added"] == 4
    assert report["skipped"] == []


@needs(SAMPLE_VAULT)
def test_search_json_is_a_list_of_cited_chunks(small_home):
    home, _, _ = small_home
    hits = json.loads(run(home, "search", "нагрузка на видеопамять", "--k", "3", "--json").stdout)
    assert 1 <= len(hits) <= 3
    assert all(set(h) == {"note", "heading", "score", "text"} for h in hits)
    assert hits[0]["note"] == "steps/25_под_мою_видеокарта_как.md"
    for mode in ("dense", "bm25"):
        assert json.loads(run(home, "search", "VRAM", "--mode", mode, "--json").stdout)


@needs(SAMPLE_VAULT)
def test_search_takes_k_and_mode_from_the_settings_unless_given(small_home, tmp_path):
    import shutil

    home, _, _ = small_home
    configured = tmp_path / "home"
    shutil.copytree(home / "index", configured / "index")
    (configured / "konsilium.yaml").write_text("retrieval:\n  k: 2\n  mode: bm25\n")
    assert len(json.loads(run(configured, "search", "VRAM", "--mode", "dense", "--json").stdout)) == 2
    assert len(json.loads(run(configured, "search", "VRAM", "--mode", "dense", "--k", "3", "--json").stdout)) == 3
    # bm25 (the configured mode) finds nothing for a word no note has; dense would still return neighbours.
    assert json.loads(run(configured, "search", "qwzxv", "--json").stdout) == []


@needs(SAMPLE_VAULT)
def test_stats_reports_bytes_per_part_and_per_page(small_home):
    home, _, report = small_home
    stats = json.loads(run(home, "stats", "--json").stdout)
    assert stats["notes"] == report["notes"] and stats["chunks"] == report["chunks"]
    assert set(stats["bytes"]) >= {"text", "vectors", "fulltext_index", "on_disk"}
    assert stats["bytes"]["vectors"] == stats["chunks"] * stats["dim"] * 4
    assert stats["bytes"]["on_disk"] > stats["bytes"]["text"] > 0
    assert stats["bytes_per_page"] > 0 and stats["bytes_per_million_pages"] == round(stats["bytes_per_page"] * 1e6)


@needs(SAMPLE_VAULT)
def test_eval_retrieval_scores_every_mode(small_home, tmp_path):
    _, vault, _ = small_home
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        json.dumps(
            {"question": "Сколько займёт контекст беседы?", "expected": ["steps/27_контекст_беседы_самой_какой.md"]}
        )
        + "\n"
        + json.dumps({"question": "n8n agents", "expected": ["steps/08_поищи_это_про_n8n.md"]})
        + "\n",
        encoding="utf-8",
    )
    result = json.loads(
        run(
            tmp_path / "evalhome",
            "eval",
            "retrieval",
            "--vault",
            str(vault),
            "--questions",
            str(questions),
            "--k",
            "2",
            "--json",
        ).stdout
    )
    assert result["k"] == 2 and result["questions"] == 2
    assert set(result["modes"]) == {"hybrid", "dense", "bm25"}
    assert result["modes"]["bm25"]["hit"] == 1.0
    assert all(0 <= m["mrr"] <= 1 for m in result["modes"].values())


def test_bad_input_gets_one_clear_line_and_a_nonzero_exit(tmp_path):
    home = tmp_path / "home"
    proc = run_process(home, "index", str(tmp_path / "missing"), check=False)  # the entry point's own exit status
    assert proc.returncode == 1 and "not a directory" in proc.stderr and "Traceback" not in proc.stderr
    proc = run(home, "search", "anything", "--json", check=False)
    assert proc.returncode == 1 and json.loads(proc.stdout)["error"]["message"].startswith("the index is empty")
    (home / "konsilium.yaml").write_text("retrieval:\n  mode: psychic\n")
    proc = run(home, "config", "show", check=False)
    assert proc.returncode == 1
    assert "retrieval.mode: 'psychic' is not allowed; allowed values: hybrid, dense, bm25" in proc.stderr
    questions = tmp_path / "bad.jsonl"
    questions.write_text('{"question": 1}\n')
    proc = run(home, "eval", "retrieval", "--vault", str(tmp_path), "--questions", str(questions), check=False)
    assert proc.returncode == 1 and "bad.jsonl:1" in proc.stderr


def test_config_show_json_prints_the_settings_in_force(tmp_path):
    (tmp_path / "konsilium.yaml").write_text("retrieval:\n  k: 4\n")
    shown = json.loads(run(tmp_path, "config", "show", "--json").stdout)
    assert shown["settings"]["retrieval"]["k"] == 4
    assert shown["settings"]["embedder"]["model"] == "auto"


@needs(HELP_VAULT)
def test_kill_9_mid_index_leaves_a_usable_index_and_the_next_run_completes(tmp_path, vault_copy):
    import lancedb

    vault = vault_copy(HELP_VAULT, name="help", limit=1)  # ~20 notes, ~150 chunks: a run of ~5 committed batches
    home = tmp_path / "home"
    home.mkdir()
    (home / "konsilium.yaml").write_text("index:\n  commit_chunks: 32\n", encoding="utf-8")
    env = {**os.environ, "KONSILIUM_HOME": str(home)}
    proc = subprocess.Popen(
        [*KONSILIUM, "index", str(vault), "--json"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    committed = 0
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            committed = lancedb.connect(str(home / "index")).open_table("notes__vault").count_rows()
        except Exception:  # the tables do not exist yet
            committed = 0
        if committed:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the index run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert committed > 0
    # What was committed is searchable right away.
    hits = json.loads(run(home, "search", "internal links", "--mode", "bm25", "--json").stdout)
    assert hits
    # The next run completes the rest and re-embeds nothing that was already committed.
    report = json.loads(run(home, "index", str(vault), "--json").stdout)
    total = len(list(vault.rglob("*.md")))
    assert report["notes"] == total
    assert report["unchanged"] >= committed
    assert report["added"] + report["unchanged"] + report["updated"] == total


def test_rebuild_recovers_from_an_embedder_switch(tmp_path):
    vault = tmp_path / "vault"
    vault.mkdir()
    (vault / "a.md").write_text("# A\nHow much VRAM does a 32k context need?\n", encoding="utf-8")
    home = tmp_path / "home"
    run(home, "index", str(vault))
    (home / "konsilium.yaml").write_text("embedder:\n  model: use-m3\n", encoding="utf-8")
    refused = run(home, "index", str(vault), check=False)
    assert refused.returncode == 1 and "--rebuild" in refused.stderr
    report = json.loads(run(home, "index", str(vault), "--rebuild", "--json").stdout)
    assert report["added"] == 1 and report["notes"] == 1
    assert json.loads(run(home, "stats", "--json").stdout)["embedder"] == "use-multilingual-v3"


@needs(SAMPLE_VAULT)
def test_plan_storage_uses_this_machines_index(small_home):
    home, _, report = small_home
    plan = json.loads(run(home, "plan", "storage", "--pages", "1000", "--from-index", "--json").stdout)
    assert plan["source"].startswith("measured on this machine's index")
    stats = json.loads(run(home, "stats", "--json").stdout)
    assert plan["assumptions"]["dim"] == stats["dim"]
    assert plan["bytes"]["vectors"] == pytest.approx(plan["chunks"] * stats["dim"] * 4, rel=0.01)


def test_an_error_keeps_its_square_brackets_as_written(tmp_path):
    """`konsilium[vllm]` in an error is text to copy, not terminal markup to swallow."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "konsilium.yaml").write_text("engine: {kind: vllm, model: /nowhere}\n", encoding="utf-8")
    proc = run(home, "serve", check=False)
    assert proc.returncode == 1 and "pip install 'konsilium[vllm]'" in proc.stderr
