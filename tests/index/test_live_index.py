"""The index while something reads it: a running server's Knowledge keeps answering through `index --rebuild`
and follows every committed index run (new notes, new generations)."""

from __future__ import annotations

import threading
import time

import pytest

from konsilium.config import open_home
from konsilium.grounding import Knowledge
from konsilium.index import lance_store
from konsilium.index.indexer import Indexer

NOTES = {
    "zoo/zebra.md": "# Zebra\nThe zebra herd grazes near the river every morning.",
    "zoo/heron.md": "# Heron\nA grey heron fishes in the shallow water.",
    "garden/roses.md": "# Roses\nPrune the roses in early spring before new growth.",
}


def write_vault(root, notes):
    for name, text in notes.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")


@pytest.fixture
def indexed(tmp_path, embedder):
    vault = tmp_path / "vault"
    write_vault(vault, NOTES)
    home = open_home(tmp_path / "home")
    Indexer(home, embedder=embedder).run([vault])
    return home, vault


def found(knowledge, query, mode="hybrid"):
    return {p.note for p in knowledge.search(query, 3, mode=mode)}


def test_a_rebuild_never_interrupts_a_reader_and_the_reader_then_sees_the_new_index(indexed, embedder):
    home, vault = indexed
    knowledge = Knowledge(home)
    assert "zoo/zebra.md" in found(knowledge, "zebra herd")  # opened before the rebuild
    errors: list[Exception] = []
    answered = 0
    stop = threading.Event()

    def read_all_the_time():
        nonlocal answered
        while not stop.is_set():
            try:
                assert found(knowledge, "zebra herd river") or found(knowledge, "giraffe savanna")
                answered += 1
            except Exception as exc:  # noqa: BLE001 - every failure is the finding
                errors.append(exc)

    reader = threading.Thread(target=read_all_the_time)
    reader.start()
    try:
        (vault / "zoo/zebra.md").unlink()
        write_vault(vault, {"zoo/giraffe.md": "# Giraffe\nThe giraffe browses acacia leaves on the savanna."})
        Indexer(home, embedder=embedder, rebuild=True).run([vault])
        time.sleep(0.3)
    finally:
        stop.set()
        reader.join()
    assert errors == [] and answered > 0
    assert found(knowledge, "giraffe savanna", "bm25") == {"zoo/giraffe.md"}
    assert "zoo/zebra.md" not in found(knowledge, "zebra herd river")


def test_a_replaced_generation_is_dropped_by_a_later_run_once_no_reader_needs_it(indexed, embedder, monkeypatch):
    home, vault = indexed
    knowledge = Knowledge(home)
    assert found(knowledge, "heron")
    Indexer(home, embedder=embedder, rebuild=True).run([vault])
    tables = {p.name for p in home.index_dir.glob("*.lance")}
    assert len(tables) == 4  # the old generation stays for readers that still have it open
    monkeypatch.setattr(lance_store, "RETIRED_KEEP_S", 0)
    report = Indexer(home, embedder=embedder).run([vault])  # an ordinary run after the rebuild
    assert report.unchanged == len(NOTES) and report.embedded_chunks == 0  # it wrote to the new generation
    assert len({p.name for p in home.index_dir.glob("*.lance")}) == 2
    assert "zoo/heron.md" in found(knowledge, "grey heron")


def test_a_killed_rebuild_leaves_the_old_index_live(indexed, embedder, monkeypatch):
    home, vault = indexed
    knowledge = Knowledge(home)
    indexer = Indexer(home, embedder=embedder, rebuild=True)
    monkeypatch.setattr(indexer.store, "finish", lambda: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        indexer.run([vault])
    assert "zoo/zebra.md" in found(knowledge, "zebra herd")
    assert Indexer(home, embedder=embedder).run([vault]).unchanged == len(NOTES)


def test_an_open_knowledge_finds_what_a_later_index_run_adds_edits_and_deletes(indexed, embedder):
    home, vault = indexed
    knowledge = Knowledge(home)
    assert found(knowledge, "otter", "bm25") == set()
    write_vault(vault, {"zoo/otter.md": "# Otter\nThe otter floats on its back cracking shells."})
    write_vault(vault, {"garden/roses.md": "# Roses\nRoses need a sunny spot and mulch against frost."})
    (vault / "zoo/heron.md").unlink()
    report = Indexer(home, embedder=embedder).run([vault])
    assert (report.added, report.updated, report.deleted) == (1, 1, 1)
    assert found(knowledge, "otter shells", "bm25") == {"zoo/otter.md"}
    assert found(knowledge, "mulch frost", "bm25") == {"garden/roses.md"}
    assert found(knowledge, "grey heron fishes", "bm25") == set()


def test_a_running_watcher_indexes_new_edited_and_deleted_notes(tmp_path, embedder):
    from konsilium.index.watch import start_watching

    vault = tmp_path / "vault"
    write_vault(vault, NOTES)
    home = open_home(tmp_path / "home")
    runs: list = []
    stop = start_watching(home, [vault], embedder=embedder, debounce_s=0.2, on_run=runs.append)
    knowledge = Knowledge(home)
    try:
        wait_for(lambda: "zoo/heron.md" in found(knowledge, "grey heron", "bm25"))  # the catch-up run at start
        write_vault(vault, {"zoo/otter.md": "# Otter\nThe otter floats on its back cracking shells."})
        wait_for(lambda: found(knowledge, "otter shells", "bm25") == {"zoo/otter.md"})
        write_vault(vault, {"garden/roses.md": "# Roses\nRoses need a sunny spot and mulch against frost."})
        wait_for(lambda: found(knowledge, "mulch frost", "bm25") == {"garden/roses.md"})
        (vault / "zoo/heron.md").unlink()
        wait_for(lambda: found(knowledge, "grey heron fishes", "bm25") == set())
        wait_for(lambda: runs[-1].deleted == 1)  # that run has ended
        (vault / ".obsidian").mkdir()
        before = len(runs)
        (vault / ".obsidian" / "workspace.json").write_text("{}")  # Obsidian's own saves start no run
        time.sleep(1.0)
        assert len(runs) == before
    finally:
        stop()
    assert all(not isinstance(run, Exception) for run in runs)


def test_a_failing_run_is_reported_and_the_watcher_keeps_going(tmp_path, embedder):
    from konsilium.index.indexer import index_lock
    from konsilium.index.watch import start_watching

    vault = tmp_path / "vault"
    write_vault(vault, NOTES)
    home = open_home(tmp_path / "home")
    runs: list = []
    with index_lock(home.index_dir):  # a `konsilium index` in another process holds the index
        stop = start_watching(home, [vault], embedder=embedder, debounce_s=0.2, on_run=runs.append)
        wait_for(lambda: runs)
    try:
        assert "another `konsilium index`" in str(runs[0])
        write_vault(vault, {"zoo/otter.md": "# Otter\nThe otter floats on its back."})
        wait_for(lambda: found(Knowledge(home), "otter", "bm25") == {"zoo/otter.md"})
    finally:
        stop()


def wait_for(condition, timeout: float = 90.0) -> None:  # generous: a loaded CI machine (tests run in parallel)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except Exception:  # noqa: BLE001 - not indexed yet (no collection): keep waiting
            pass
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_a_note_saved_while_the_watcher_catches_up_at_start_is_indexed_too(tmp_path, embedder):
    """The start-up run indexes what changed while the server was off; a save during that run (before watching
    began, so it raised no event) must not wait for the next unrelated save."""
    from konsilium.index.watch import start_watching

    vault = tmp_path / "vault"
    write_vault(vault, NOTES)
    home = open_home(tmp_path / "home")

    class SavesDuringTheFirstRun:
        """The real embedder; while it embeds the first batch, the user saves a new note."""

        def __init__(self, inner):
            self.inner, self.saved = inner, False

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def embed(self, texts):
            if not self.saved:
                self.saved = True
                write_vault(vault, {"zoo/otter.md": "# Otter\nThe otter floats on its back cracking shells."})
            return self.inner.embed(texts)

    stop = start_watching(home, [vault], embedder=SavesDuringTheFirstRun(embedder), debounce_s=0.2)
    try:
        wait_for(lambda: found(Knowledge(home), "otter shells", "bm25") == {"zoo/otter.md"}, timeout=30)
    finally:
        stop()
