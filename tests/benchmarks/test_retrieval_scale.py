"""benchmarks/retrieval_scale.py on a tiny corpus: a kept store is measured again with --reuse (no rebuild, the
build figures carried over), and the report says where a hybrid query's time goes, stage by stage."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--chunks", "1200", "--queries", "6", "--recall-queries", "3", "--no-embedder", "--no-verify"]


def _run(tmp_path: Path, out: Path, *extra: str) -> dict:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "retrieval_scale.py"), *TINY]
        + ["--workdir", str(tmp_path / "work"), "--json-out", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(out.read_text())["sizes"][0]


def test_a_kept_store_is_measured_again_without_a_rebuild(tmp_path):
    built = _run(tmp_path, tmp_path / "built.json", "--keep")
    store_files = sorted((tmp_path / "work" / "chunks-1200").rglob("*"))
    again = _run(tmp_path, tmp_path / "again.json", "--reuse", str(tmp_path / "built.json"))

    assert sorted((tmp_path / "work" / "chunks-1200").rglob("*")) == store_files  # nothing rewritten or removed
    for key in ("chunks", "notes", "write_s", "finish_s", "finish_phases", "bytes", "disk_bytes_per_chunk"):
        assert again[key] == built[key], key
    assert again["build_from"] == str(tmp_path / "built.json")
    assert built["finish_phases"]["fts_index_s"] > 0 and "vector_index_s" not in built["finish_phases"]  # < 20k rows

    stages = again["hybrid_stages"]
    assert set(stages) == {
        "total",
        "bm25",
        "embed",
        "dense",
        "candidates",
        "overlap_saved",
        "fusion",
        "display_fields",
        "other",
    }
    assert all(stages[k]["n"] == 6 for k in stages)
    assert stages["candidates"]["p50_ms"] <= stages["total"]["p50_ms"]
    assert again["dense_recall_at_10"] == 1.0  # under the vector index threshold the search is exact
