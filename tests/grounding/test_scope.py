"""A role's retrieval scope over a real index: folders and Obsidian tags (nested, frontmatter or inline)."""

from __future__ import annotations

import os
import time

import pytest

from konsilium.config import open_home
from konsilium.grounding import Knowledge
from konsilium.index.indexer import Indexer

NOTES = {
    "Sport/intervals.md": "---\ntags: [training/running]\n---\n# Intervals\nInterval running sessions build speed.",
    "Journal/legs.md": "# Legs day\nSquats and running drills today. #training",
    "Journal/soup.md": "# Soup\nA running joke about the soup recipe. #cooking",
}


@pytest.fixture(scope="module")
def knowledge(tmp_path_factory):
    root = tmp_path_factory.mktemp("scope")
    vault = root / "vault"
    for name, text in NOTES.items():
        (vault / name).parent.mkdir(parents=True, exist_ok=True)
        (vault / name).write_text(text, encoding="utf-8")
    home = open_home(root / "home")
    Indexer(home, roots=[vault]).run([vault])
    return Knowledge(home), vault


def notes(passages) -> set[str]:
    return {p.note for p in passages}


def test_tags_narrow_the_search_and_cover_nested_tags(knowledge):
    k, _ = knowledge
    assert notes(k.search("running", 5)) == set(NOTES)
    assert notes(k.search("running", 5, tags=("training",))) == {"Sport/intervals.md", "Journal/legs.md"}
    assert notes(k.search("running", 5, tags=("#cooking",))) == {"Journal/soup.md"}
    assert notes(k.search("running", 5, tags=("training/running",))) == {"Sport/intervals.md"}
    assert notes(k.search("running", 5, folders=("Journal",), tags=("training",))) == {"Journal/legs.md"}
    assert k.search("running", 5, tags=("nothing-has-this",)) == []


def test_a_retagged_note_counts_at_once_without_a_re_index(knowledge):
    k, vault = knowledge
    soup = vault / "Journal/soup.md"
    soup.write_text(NOTES["Journal/soup.md"].replace("#cooking", "#training"), encoding="utf-8")
    later = time.time() + 5  # a new mtime even on coarse file-system clocks
    os.utime(soup, (later, later))
    assert "Journal/soup.md" in notes(k.search("running", 5, tags=("training",)))
