"""Benchmark provenance on a real git repository: the commit, a clean or dirty tree (results files excluded),
the command and machine; and every benchmark script records it in its results JSON."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from benchmarks.provenance import ROOT, provenance


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def make_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "benchmarks" / "results").mkdir(parents=True)
    (repo / "konsilium.py").write_text("x = 1\n")
    (repo / "benchmarks" / "results" / "old.json").write_text("{}\n")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "first")
    return repo


def test_a_clean_checkout_names_its_commit(tmp_path):
    repo = make_repo(tmp_path)
    facts = provenance(repo)
    assert facts["git_commit"] == git(repo, "rev-parse", "HEAD").strip()
    assert facts["git_dirty"] is False and facts["dirty_paths"] == []
    assert facts["cpu_count"] >= 1 and re.match(r"\d{4}-\d\d-\d\dT", facts["time"]) and facts["command"]


def test_uncommitted_source_is_dirty_but_a_previous_result_is_not(tmp_path):
    repo = make_repo(tmp_path)
    (repo / "benchmarks" / "results" / "old.json").write_text('{"rerun": true}\n')
    (repo / "benchmarks" / "results" / "new.json").write_text("{}\n")
    assert provenance(repo)["git_dirty"] is False
    (repo / "konsilium.py").write_text("x = 2\n")
    (repo / "new_module.py").write_text("")
    facts = provenance(repo)
    assert facts["git_dirty"] is True and sorted(facts["dirty_paths"]) == ["konsilium.py", "new_module.py"]


def test_outside_a_checkout_the_commit_is_unknown_not_invented(tmp_path):
    facts = provenance(tmp_path)
    assert facts["git_commit"] is None and facts["git_dirty"] is None


def test_every_benchmark_script_records_provenance():
    scripts = sorted(p for p in (ROOT / "benchmarks").glob("*.py") if p.name != "provenance.py")
    assert {p.name for p in scripts} >= {"adapters.py", "engine_batching.py", "retrieval_scale.py", "server_load.py"}
    for script in scripts:
        text = script.read_text(encoding="utf-8")
        assert "from benchmarks.provenance import provenance" in text, script.name
        assert re.search(r'"provenance": (provenance\(\)|started)', text), script.name
