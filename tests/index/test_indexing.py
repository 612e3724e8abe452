"""Indexing real vaults into real LanceDB files: incremental, rename-aware, safe on broken input."""

from __future__ import annotations

from pathlib import Path

import pytest
from shared_data import SAMPLE_VAULT, needs

from konsilium.config import open_home
from konsilium.index.indexer import Indexer, IndexError_
from konsilium.index.retrieval import Retriever

pytestmark = needs(SAMPLE_VAULT)

STEP = "0_chatgpt/AI/2025-06-29 - 1LTM_4/25_под_мою_видеокарта_как.md"
SMALL_STEP = "0_chatgpt/AI/2025-06-29 - 1LTM_4/02_ты_понимаешь_почему_я.md"
MOVED = "0_chatgpt/AI/2025-06-29 - 1LTM_4/01_мы_продолжаем_темы_чатом.md"


# The sample vault but for most of the 85 notes of one long conversation (embedding all 90 notes, ~590 chunks, took
# minutes of a 2-core CI run): every folder, both notes with front matter, the three mojibake notes, the searched
# note among its neighbours on the same subject (those that compete with it for the question) and the small one.
CONVERSATION = STEP.rsplit("/", 1)[0]
KEPT = ("01_", "02_", "07_", "2", "meta_information")


def kept(note: Path) -> bool:
    return note.parent.relative_to(SAMPLE_VAULT).as_posix() != CONVERSATION or note.name.startswith(KEPT)


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, embedder):
    import shutil

    root = tmp_path_factory.mktemp("idx")
    vault = root / "vault"
    for note in filter(kept, SAMPLE_VAULT.rglob("*.md")):
        (vault / note.relative_to(SAMPLE_VAULT)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(note, vault / note.relative_to(SAMPLE_VAULT))
    home = open_home(root / "home")
    indexer = Indexer(home, embedder=embedder)
    report = indexer.run([vault])
    return vault, home, indexer, report


def small_vault(vault_copy) -> Path:
    """Three small notes in two folders (the mojibake and the long analysis notes are the module's, `indexed`):
    enough to edit, delete, move and rename, and quick to embed."""
    import shutil

    vault = vault_copy(limit=2)
    shutil.rmtree(vault / "9_inbox_broken_encoding")
    shutil.rmtree(vault / "1_analysis")
    return vault


def retriever(indexer):
    return Retriever(indexer.store, indexer.embedder)


def test_first_run_indexes_every_note(indexed):
    vault, _, _, report = indexed
    notes = [p for p in vault.rglob("*.md")]
    assert report.added == len(notes) == report.notes
    assert report.chunks >= report.notes
    assert report.updated == report.deleted == report.unchanged == 0
    assert report.embedded_chunks == report.chunks
    # The mojibake notes are repaired, not skipped, and the repair is reported.
    assert any("mojibake" in w["warning"] for w in report.warnings)
    assert report.skipped == []


def test_search_finds_a_russian_question_and_returns_citable_fields(indexed):
    _, _, indexer, _ = indexed
    hits = retriever(indexer).search("Как изменится нагрузка на видеопамять под мою видеокарту?", k=5)
    assert STEP in [h.note for h in hits]
    top = hits[0].to_json()
    assert set(top) == {"note", "heading", "score", "text"}
    assert "/" in STEP and not top["note"].startswith("/")


def test_repaired_mojibake_note_is_searchable_in_russian(indexed):
    _, _, indexer, _ = indexed
    hits = retriever(indexer).search("Как бы ты насироила этот конфиг под AGI", k=5, mode="bm25")
    assert "9_inbox_broken_encoding/33 config for AGI (mojibake).md" in [h.note for h in hits]


def test_rerun_changes_nothing(indexed):
    vault, home, indexer, first = indexed
    report = Indexer(home, embedder=indexer.embedder).run([vault])
    assert report.unchanged == first.notes
    assert report.added == report.updated == report.deleted == report.embedded_chunks == 0
    assert report.chunks == first.chunks


def test_edit_reembeds_only_that_note(tmp_path, vault_copy, embedder):
    vault = small_vault(vault_copy)
    home = open_home(tmp_path / "home")
    first = Indexer(home, embedder=embedder).run([vault])
    note = vault / SMALL_STEP
    note.write_text(note.read_text(encoding="utf-8") + "\n\nДобавлено: квантование зебра-дракон.\n", encoding="utf-8")
    report = Indexer(home, embedder=embedder).run([vault])
    assert report.updated == 1 and report.added == report.deleted == 0
    assert report.unchanged == first.notes - 1
    # Only the edited chunk needs a new vector: unchanged chunks of the note reuse theirs.
    assert 1 <= report.embedded_chunks <= 2
    hits = Retriever(Indexer(home, embedder=embedder).store, embedder).search("зебра-дракон", k=3, mode="bm25")
    assert hits and hits[0].note == SMALL_STEP


def test_delete_move_and_rename_are_reflected(tmp_path, vault_copy, embedder):
    vault = small_vault(vault_copy)
    home = open_home(tmp_path / "home")
    first = Indexer(home, embedder=embedder).run([vault])
    (vault / SMALL_STEP).unlink()
    # A move keeps the title, so every vector is reused; nothing is embedded again.
    (vault / "archive").mkdir()
    (vault / MOVED).rename(vault / "archive" / "01_мы_продолжаем_темы_чатом.md")
    report = Indexer(home, embedder=embedder).run([vault])
    assert report.deleted == 2 and report.added == 1
    assert report.embedded_chunks == 0 and report.reused_vectors > 0
    assert report.notes == first.notes - 1
    # A rename changes the title that is embedded with each chunk, so only that note is embedded again.
    moved = vault / "archive" / "01_мы_продолжаем_темы_чатом.md"
    moved.rename(vault / "archive" / "local models for notes.md")
    renamed = Indexer(home, embedder=embedder).run([vault])
    assert renamed.deleted == 1 and renamed.added == 1 and renamed.unchanged == first.notes - 2
    store = Indexer(home, embedder=embedder).store
    notes = {r.note for r in store.notes().values()}
    assert SMALL_STEP not in notes and "archive/local models for notes.md" in notes
    assert MOVED not in notes and not any(n.startswith("archive/01_") for n in notes)
    hits = Retriever(store, embedder).search("Ты понимаешь почему я это делаю", k=50, mode="bm25")
    assert SMALL_STEP not in {h.note for h in hits}


def test_broken_files_are_skipped_with_reasons_and_the_rest_indexed(tmp_path, embedder):
    vault = tmp_path / "vault"
    vault.mkdir()
    (vault / "good.md").write_text("# Good\nA healthy note about rope scaling.\n", encoding="utf-8")
    (vault / "binary.md").write_bytes(b"\x00\x01\x02PNG" * 100)
    (vault / "empty.md").write_bytes(b"")
    (vault / "bad yaml.md").write_text("---\ntitle: [unclosed\n---\nBody about experts.\n", encoding="utf-8")
    (vault / ".obsidian").mkdir()
    (vault / ".obsidian" / "workspace.md").write_text("not a note", encoding="utf-8")
    report = Indexer(open_home(tmp_path / "home"), embedder=embedder).run([vault])
    skipped = {s["path"]: s["reason"] for s in report.skipped}
    assert set(skipped) == {"binary.md", "empty.md"}
    assert all(reason for reason in skipped.values())
    assert report.notes == 2  # good.md and bad yaml.md (degraded, with a warning)
    assert any(w["path"] == "bad yaml.md" for w in report.warnings)


def test_missing_vault_is_a_clear_error_and_loses_nothing(indexed, tmp_path):
    vault, home, indexer, first = indexed
    with pytest.raises(IndexError_, match="not a directory"):
        Indexer(home, embedder=indexer.embedder).run([vault, tmp_path / "nope"])
    assert Indexer(home, embedder=indexer.embedder).store.chunks.count_rows() == first.chunks


def test_two_vaults_share_a_collection_and_keep_their_own_paths(tmp_path, embedder):
    a, b = tmp_path / "a", tmp_path / "b"
    for root, word in ((a, "alpha"), (b, "beta")):
        root.mkdir()
        (root / "same name.md").write_text(f"# Same\nThe {word} vault note.\n", encoding="utf-8")
    home = open_home(tmp_path / "home")
    Indexer(home, embedder=embedder).run([a])
    report = Indexer(home, embedder=embedder).run([b])
    assert report.notes == 2 and report.deleted == 0
    (b / "same name.md").unlink()
    report = Indexer(home, embedder=embedder).run([b])
    assert report.notes == 1 and report.deleted == 1
    store = Indexer(home, embedder=embedder).store
    assert [r.vault for r in store.notes().values()] == [Path(a).resolve().as_posix()]
