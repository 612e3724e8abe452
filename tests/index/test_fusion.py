"""Hybrid fusion on a real index: the first results do not depend on how many were asked for."""

from __future__ import annotations

import pytest

from konsilium.config import open_home
from konsilium.index.indexer import Indexer
from konsilium.index.retrieval import Retriever

ANIMALS = ["zebra", "horse", "lion", "tiger", "giraffe", "okapi", "hyena", "rhino", "hippo", "buffalo", "eland"]


@pytest.fixture(scope="module")
def indexer(tmp_path_factory, embedder):
    root = tmp_path_factory.mktemp("fusion")
    vault = root / "vault"
    vault.mkdir()
    for i, animal in enumerate(ANIMALS):
        stripes = "stripes " * (len(ANIMALS) - i)  # a graded lexical match
        (vault / f"{animal}.md").write_text(f"# {animal.title()}\nThe {animal} coat: {stripes}and patterns.\n")
    indexer = Indexer(open_home(root / "home"), embedder=embedder)
    indexer.run([vault])
    return indexer


@pytest.mark.parametrize("mode", ["hybrid", "bm25", "dense"])
def test_asking_for_more_results_never_reorders_or_rescores_the_first_ones(indexer, mode):
    retriever = Retriever(indexer.store, indexer.embedder, candidates=4)  # fewer candidates than asked for
    few = retriever.search("zebra coat stripes", k=3, mode=mode)
    many = retriever.search("zebra coat stripes", k=len(ANIMALS), mode=mode)
    assert len(few) == 3 and len(many) == len(ANIMALS)
    assert [(h.note, round(h.score, 9)) for h in many[:3]] == [(h.note, round(h.score, 9)) for h in few]
    assert few[0].note == "zebra.md"
