"""`embedder.model: auto`: a collection gets the embedder that suits its vault, once, and keeps it."""

from __future__ import annotations

import pytest

from konsilium.config import open_home
from konsilium.index.indexer import Indexer, open_store, vault_cyrillic_share
from konsilium.index.lance_store import StoreError


def _vault(root, text: str):
    root.mkdir()
    for n in range(3):
        (root / f"note {n}.md").write_text(f"# Note {n}\n{text}\n", encoding="utf-8")
    return root


def test_language_of_a_vault(tmp_path):
    russian = _vault(tmp_path / "ru", "Сколько видеопамяти нужно для контекста в 32 тысячи токенов?")
    english = _vault(tmp_path / "en", "How much VRAM does a 32k context need?")
    assert vault_cyrillic_share([russian]) > 0.8
    assert vault_cyrillic_share([english]) == 0.0
    assert vault_cyrillic_share([tmp_path / "missing"]) == 0.0


def test_auto_picks_per_vault_language_and_remembers_it(tmp_path):
    russian = _vault(tmp_path / "ru", "Сколько видеопамяти нужно для контекста в 32 тысячи токенов?")
    english = _vault(tmp_path / "en", "How much VRAM does a 32k context need?")
    ru_home, en_home = open_home(tmp_path / "ru_home"), open_home(tmp_path / "en_home")
    ru_indexer = Indexer(ru_home, roots=[russian])
    en_indexer = Indexer(en_home, roots=[english])
    assert ru_indexer.embedder.multilingual and ru_indexer.embedder.name == "use-multilingual-v3"
    assert not en_indexer.embedder.multilingual and en_indexer.embedder.name == "all-MiniLM-L6-v2"
    ru_indexer.run([russian])
    # Searching later (no vault at hand) and indexing an English vault into the same collection keep the choice.
    store, embedder = open_store(ru_home)
    assert embedder.name == "use-multilingual-v3"
    assert Indexer(ru_home, roots=[english]).embedder.name == "use-multilingual-v3"


def test_switching_embedders_on_a_built_collection_is_refused_with_a_way_out(tmp_path):
    vault = _vault(tmp_path / "en", "How much VRAM does a 32k context need?")
    home = open_home(tmp_path / "home")
    Indexer(home, roots=[vault]).run([vault])
    (home.config_path).write_text("embedder:\n  model: use-m3\n", encoding="utf-8")
    with pytest.raises(StoreError, match="re-index with --rebuild"):
        Indexer(open_home(home.root), roots=[vault])


def test_a_search_before_the_first_index_does_not_fix_the_embedder(tmp_path):
    russian = _vault(tmp_path / "ru", "Сколько видеопамяти нужно для контекста в 32 тысячи токенов?")
    home = open_home(tmp_path / "home")
    store, embedder = open_store(home)  # what `konsilium search` / `stats` do on an empty home
    assert embedder.name == "all-MiniLM-L6-v2" and store.chunks.count_rows() == 0
    indexer = Indexer(home, roots=[russian])
    assert indexer.embedder.name == "use-multilingual-v3"
    report = indexer.run([russian])
    assert report.notes == 3 and open_store(home)[1].name == "use-multilingual-v3"


def test_a_vault_with_a_minority_of_russian_notes_keeps_the_multilingual_embedder(tmp_path):
    """Imported English chat exports (sorted first, filling whole folders) next to a fifth of Russian notes."""
    vault = tmp_path / "mixed"
    english = "How much VRAM does a 32k context need with a mixture of experts model? " * 8
    russian = "Сколько видеопамяти нужно для контекста в тридцать две тысячи токенов? " * 8
    for n in range(400):
        (vault / "0_chatgpt" / f"chat {n:03}.md").parent.mkdir(parents=True, exist_ok=True)
        (vault / "0_chatgpt" / f"chat {n:03}.md").write_text(f"# Chat {n}\n{english}\n", encoding="utf-8")
    for n in range(100):
        (vault / "Заметки" / f"заметка {n:03}.md").parent.mkdir(parents=True, exist_ok=True)
        (vault / "Заметки" / f"заметка {n:03}.md").write_text(f"# Заметка {n}\n{russian}\n", encoding="utf-8")
    assert 0.1 < vault_cyrillic_share([vault]) < 0.3
    assert Indexer(open_home(tmp_path / "home"), roots=[vault]).embedder.name == "use-multilingual-v3"
