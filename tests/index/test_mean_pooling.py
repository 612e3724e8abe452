"""The bundled MiniLM run with transformers alone gives sentence-transformers' vectors, without importing
sentence-transformers (seconds of every `search` start); folders of another shape still go to sentence-transformers."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from konsilium.config import EmbedderSettings
from konsilium.index.embedder import (
    MeanPoolingEmbedder,
    SentenceTransformerEmbedder,
    bundled_model_dir,
    make_embedder,
)

TEXTS = [
    "How much VRAM does a 32k context need?",
    "Сколько видеопамяти нужно под контекст 32k?",
    "",
    "🦦 otters 🦦",
    "word " * 600,  # longer than the model's 256 tokens: truncated the same way
    "# Heading\n\n- a list item with `code` and [[wikilink]]",
    "short",
    "Квантование — это хранение весов с меньшей точностью, например 4 бита вместо 16. " * 5,
]


def test_the_default_embedder_is_sentence_transformers_vectors_without_it():
    light = make_embedder(EmbedderSettings(batch_size=3), "default")
    assert isinstance(light, MeanPoolingEmbedder)
    assert light.name == "all-MiniLM-L6-v2" and light.dim == 384 and light._model is None  # dim without loading
    reference = SentenceTransformerEmbedder(batch_size=3).embed(TEXTS)
    ours = light.embed(TEXTS)
    assert ours.shape == reference.shape == (len(TEXTS), 384) and ours.dtype == np.float32
    assert np.allclose(ours, reference, atol=1e-5), np.abs(ours - reference).max()
    assert np.allclose(light.embed(TEXTS[:1]), reference[:1], atol=1e-5)  # alone as in a batch


def test_a_search_process_never_imports_sentence_transformers():
    code = (
        "import sys; from konsilium.config import EmbedderSettings; "
        "from konsilium.index.embedder import make_embedder; "
        "v = make_embedder(EmbedderSettings(), 'default').embed(['otters']); "
        "print(v.shape, 'sentence_transformers' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.stdout.split() == ["(1,", "384)", "False"], done.stderr


@pytest.mark.parametrize("pooling", ["pooling_mode_cls_token", "pooling_mode_max_tokens"])
def test_another_pooling_goes_to_sentence_transformers(tmp_path, pooling):
    source = bundled_model_dir()
    folder = tmp_path / "other-model"
    folder.mkdir()
    for item in source.iterdir():
        if item.name != "1_Pooling":
            (folder / item.name).symlink_to(item)
    (folder / "1_Pooling").mkdir()
    config = json.loads((source / "1_Pooling" / "config.json").read_text())
    config.update({"pooling_mode_mean_tokens": False, pooling: True})
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(config))
    chosen = make_embedder(EmbedderSettings(), str(folder))
    assert isinstance(chosen, SentenceTransformerEmbedder) and chosen.name == "other-model"
