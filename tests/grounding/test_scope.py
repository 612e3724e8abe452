"""A role's retrieval scope over a real index: folders and Obsidian tags (nested, frontmatter or inline), stored
at index time and applied before ranking."""

from __future__ import annotations

import pytest

from konsilium.config import open_home
from konsilium.grounding import Knowledge
from konsilium.index.indexer import Indexer

NOTES = {
    "Sport/intervals.md": "---\ntags: [training/running]\n---\n# Intervals\nInterval running sessions build speed.",
    "Journal/legs.md": "# Legs day\nSquats and running drills today. #training",
    "Journal/soup.md": "# Soup\nA running joke about the soup recipe. #cooking",
}
# Notes that match "running" far better than the scoped ones: a scope must not lose its notes to them.
CROWD = {
    f"Runs/run {i}.md": f"# Running log {i}\nRunning, running and more running: a {5 + i} km running session."
    for i in range(30)
}
QUIET = {"Sports/aside.md": "# Aside\nA long note about chess openings, with one remark on running. #chess_club"}


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, embedder):
    root = tmp_path_factory.mktemp("scope")
    vault = root / "vault"
    for name, text in {**NOTES, **CROWD, **QUIET}.items():
        (vault / name).parent.mkdir(parents=True, exist_ok=True)
        (vault / name).write_text(text, encoding="utf-8")
    home = open_home(root / "home")
    Indexer(home, embedder=embedder).run([vault])
    return Knowledge(home), home, vault


def notes(passages) -> set[str]:
    return {p.note for p in passages}


def test_tags_narrow_the_search_and_cover_nested_tags(indexed):
    k, _, _ = indexed
    assert notes(k.search("running", 40)) >= set(NOTES)
    assert notes(k.search("running", 5, tags=("training",))) == {"Sport/intervals.md", "Journal/legs.md"}
    assert notes(k.search("running", 5, tags=("#cooking",))) == {"Journal/soup.md"}
    assert notes(k.search("running", 5, tags=("training/running",))) == {"Sport/intervals.md"}
    assert notes(k.search("running", 5, folders=("Journal",), tags=("training",))) == {"Journal/legs.md"}
    assert k.search("running", 5, tags=("nothing-has-this",)) == []


@pytest.mark.parametrize("mode", ["hybrid", "bm25", "dense"])
def test_a_scope_of_one_note_among_many_better_matches_still_returns_it_at_k_1(indexed, mode):
    k, _, _ = indexed
    assert "Sports/aside.md" not in notes(k.search("running", 10, mode=mode))  # crowded out without a scope
    assert notes(k.search("running", 1, mode=mode, folders=("Sports",))) == {"Sports/aside.md"}
    assert notes(k.search("running", 1, mode=mode, tags=("chess_club",))) == {"Sports/aside.md"}
    assert notes(k.search("running", 1, mode=mode, folders=("Sport",))) == {"Sport/intervals.md"}  # not Sports/


def test_a_retagged_note_counts_after_the_next_incremental_index(indexed, embedder):
    k, home, vault = indexed
    soup = vault / "Journal/soup.md"
    soup.write_text(NOTES["Journal/soup.md"].replace("#cooking", "#training/kitchen"), encoding="utf-8")
    report = Indexer(home, embedder=embedder).run([vault])
    assert report.updated == 1 and report.embedded_chunks <= 1  # only that note is re-read
    assert "Journal/soup.md" in notes(k.search("running", 5, tags=("training",)))
    assert k.search("running", 5, tags=("cooking",)) == []
