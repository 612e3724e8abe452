"""The Qdrant store (embedded, real files) against LanceDB on the same notes: the same top notes, scopes filtered
before ranking, incremental re-indexing, and `konsilium index migrate` both ways."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from cli_runner import run_with_home
from shared_data import SAMPLE_VAULT

from konsilium.config import Home, open_home
from konsilium.errors import StoreError
from konsilium.grounding import Knowledge
from konsilium.index.indexer import Indexer, open_store
from konsilium.index.retrieval import Retriever
from konsilium.index.scope import Scope
from konsilium.index.store import ChunkRecord, NoteRecord

pytest.importorskip("qdrant_client")
from konsilium.index import qdrant_store  # noqa: E402

QUESTIONS = [
    "Как изменится нагрузка на видеопамять под мою видеокарту?",
    "How does the number of active experts affect quality and speed?",
    "контекст беседы",
]


def _copy_vault(target, per_folder: int = 4, max_bytes: int = 12_000):
    """The smallest notes of each folder of the sample vault (embedding costs time): 7 notes, 35 KB."""
    for folder in sorted({p.parent for p in SAMPLE_VAULT.rglob("*.md")}):
        smallest = sorted(folder.glob("*.md"), key=lambda p: p.stat().st_size)[:per_folder]
        for note in (n for n in smallest if n.stat().st_size < max_bytes):
            dest = target / note.relative_to(SAMPLE_VAULT)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(note, dest)
    return target


class _Remembering:
    """The real embedder, each text embedded once: the two stores get the same vectors for half the time."""

    def __init__(self, embedder):
        self.inner, self.seen = embedder, {}
        self.name, self.multilingual = embedder.name, getattr(embedder, "multilingual", False)

    @property
    def dim(self):
        return self.inner.dim

    def embed(self, texts):
        todo = [t for t in dict.fromkeys(texts) if t not in self.seen]
        if todo:
            self.seen.update(zip(todo, self.inner.embed(todo), strict=True))
        return np.stack([self.seen[t] for t in texts])


@pytest.fixture(scope="module")
def remembering(embedder):
    return _Remembering(embedder)


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, remembering):
    """A few notes of the sample vault indexed into LanceDB and into embedded Qdrant in one home."""
    if not SAMPLE_VAULT.exists():
        pytest.skip(f"{SAMPLE_VAULT} is not here")
    root = tmp_path_factory.mktemp("qdrant")
    vault = _copy_vault(root / "vault")
    home = open_home(root / "home")
    reports = {kind: Indexer(home, embedder=remembering, store=kind).run([vault]) for kind in ("lance", "qdrant")}
    return home, vault, reports


def _retriever(home, embedder, kind: str) -> Retriever:
    store, _ = open_store(home, embedder=embedder, store=kind)
    return Retriever(store, embedder, home.config.retrieval.candidates)


def _top(retriever, mode: str, k: int = 5) -> list[str]:
    return [[h.note for h in retriever.search(q, k, mode)] for q in QUESTIONS]


def test_qdrant_finds_the_same_top_notes_as_lancedb(indexed, remembering):
    home, _, reports = indexed
    assert reports["qdrant"].chunks == reports["lance"].chunks > 0
    lance, qdrant = _retriever(home, remembering, "lance"), _retriever(home, remembering, "qdrant")
    for mode in ("dense", "bm25", "hybrid"):
        assert _top(qdrant, mode) == _top(lance, mode), mode
    # The same BM25 formula and statistics: the scores agree, not only the order.
    lance_scores = [h.score for h in lance.store.search_bm25("видеокарт памят", 5)]
    qdrant_scores = [h.score for h in qdrant.store.search_bm25("видеокарт памят", 5)]
    assert np.allclose(qdrant_scores, lance_scores, rtol=1e-3)


def test_a_second_run_reuses_everything(indexed, remembering):
    home, vault, _ = indexed
    report = Indexer(home, embedder=remembering, store="qdrant").run([vault])
    assert (report.added, report.updated, report.deleted, report.embedded_chunks) == (0, 0, 0, 0)


# -- scopes, on a synthetic store (as tests/index/test_scope_filter.py does for LanceDB) ---------------------------
DIM = 32
SCOPED = {"Sport/run.md": ["sport/running"], "Sport/lift.md": ["Sport"], "Sports/chess.md": ["sportsmanship"]}


@pytest.fixture(scope="module")
def scoped(tmp_path_factory):
    client = qdrant_store.client_for(None, tmp_path_factory.mktemp("scoped"))
    store = qdrant_store.QdrantStore(client, "s", "test-embedder", DIM)
    rng = np.random.default_rng(3)
    notes, chunks = [], []
    for path in [f"Journal/n{i}.md" for i in range(100)] + list(SCOPED):
        vector = rng.standard_normal(DIM).astype(np.float32)
        terms = "alpha beta" if path in SCOPED else "alpha alpha alpha"  # scoped notes rank last globally
        notes.append(NoteRecord(f"/v::{path}", "/v", path, "h", path))
        vector /= np.linalg.norm(vector)
        chunks.append(ChunkRecord(f"/v::{path}", path, path, "", terms, terms, path, 0, vector, SCOPED.get(path, [])))
    store.replace_notes(notes, chunks)
    store.finish()
    store.query = chunks[0].vector
    return store


@pytest.mark.parametrize("side", ["bm25", "dense"])
def test_scopes_filter_before_ranking(scoped, side):
    def found(k: int, **scope) -> set[str]:
        s = Scope.of(**scope)
        hits = scoped.search_bm25("alpha", k, s) if side == "bm25" else scoped.search_dense(scoped.query, k, s)
        return {h.note for h in hits}

    assert found(1, folders=["Sports"]) == {"Sports/chess.md"}  # one note in a hundred still fills k=1
    assert found(10, folders=["Sport"]) == {"Sport/run.md", "Sport/lift.md"}  # `Sport` never covers `Sports/`
    assert found(10, tags=["sport"]) == {"Sport/run.md", "Sport/lift.md"}  # nested tags, not `sportsmanship`
    assert found(10, tags=["#Sport/Running"]) == {"Sport/run.md"}
    assert found(10, tags=["running"]) == set()
    assert found(10, folders=["Sport"], tags=["sport/running"]) == {"Sport/run.md"}


# -- incremental re-indexing --------------------------------------------------------------------------------------
def test_edits_and_deletions_reach_the_qdrant_index(tmp_path, remembering):
    vault = tmp_path / "vault"
    vault.mkdir()
    (vault / "a.md").write_text("# Garden\nTomatoes need sun and water.\n", encoding="utf-8")
    (vault / "b.md").write_text("# Bikes\nChain lubrication every month.\n", encoding="utf-8")
    home = open_home(tmp_path / "home")
    assert Indexer(home, embedder=remembering, store="qdrant").run([vault]).added == 2
    (vault / "a.md").write_text("# Garden\nCucumbers climb a trellis.\n", encoding="utf-8")
    (vault / "b.md").unlink()
    report = Indexer(home, embedder=remembering, store="qdrant").run([vault])
    assert (report.updated, report.deleted, report.notes) == (1, 1, 1)
    store, _ = open_store(home, embedder=remembering, store="qdrant")
    assert [h.text for h in store.search_bm25("cucumb trelli", 5)] == ["Cucumbers climb a trellis."]
    assert store.search_bm25("tomato", 5) == [] and store.search_bm25("chain", 5) == []
    assert set(store.notes()) == {f"{vault.resolve().as_posix()}::a.md"}
    # BM25's average chunk length is kept up to date through edits and deletions without reading every chunk.
    lengths = [len(p.payload["terms"].split()) for p in store._scroll_chunks(None, ["terms"])]
    assert (store._meta["dl_total"], store._meta["dl_chunks"]) == (sum(lengths), len(lengths))


# -- migration ----------------------------------------------------------------------------------------------------
def test_migrate_both_ways_keeps_counts_and_results(indexed, remembering, tmp_path):
    source_home, _, reports = indexed
    home = tmp_path / "home"
    shutil.copytree(source_home.index_dir, home / "index")  # the LanceDB index only
    shutil.copy2(source_home.config_path, home / source_home.config_path.name)
    h = open_home(home)
    expected = {m: _top(_retriever(h, remembering, "lance"), m) for m in ("bm25", "hybrid")}

    moved = json.loads(run_with_home(home, "index", "migrate", "--to", "qdrant", "--json").stdout)
    lance = reports["lance"]
    assert (moved["from"], moved["notes"], moved["chunks"]) == ("lance", lance.notes, lance.chunks)
    for mode, tops in expected.items():
        assert _top(_retriever(h, remembering, "qdrant"), mode) == tops, mode

    shutil.rmtree(home / "index")  # back into an empty LanceDB home: only Qdrant holds the notes now
    back = json.loads(run_with_home(home, "index", "migrate", "--to", "lance", "--json").stdout)
    assert (back["notes"], back["chunks"]) == (moved["notes"], moved["chunks"])
    for mode, tops in expected.items():
        assert _top(_retriever(h, remembering, "lance"), mode) == tops, mode


def test_with_index_store_qdrant_the_answers_search_qdrant_within_a_scope(indexed, remembering):
    home, _, _ = indexed
    index = home.config.index.model_copy(update={"store": "qdrant"})
    settings = home.config.model_copy(update={"index": index})
    knowledge = Knowledge(Home(home.root, settings), wrap_embedder=lambda _: remembering)
    assert knowledge.collections() == ["vault"]
    folder = "0_chatgpt"
    passages = knowledge.search(QUESTIONS[0], 5, folders=(folder,))
    assert passages and all(p.note.startswith(folder + "/") for p in passages)
    lance = Knowledge(home, wrap_embedder=lambda _: remembering).search(QUESTIONS[0], 5, folders=(folder,))
    assert [(p.note, p.heading) for p in passages] == [(p.note, p.heading) for p in lance]


def test_embedded_qdrant_open_elsewhere_is_a_clear_error(tmp_path):
    from qdrant_client import QdrantClient

    holder = QdrantClient(path=str(tmp_path))  # as another process's lock would (the lock is per open file)
    try:
        with pytest.raises(StoreError, match="index.qdrant_url"):
            qdrant_store.client_for(None, tmp_path)
    finally:
        holder.close()


def test_index_and_eval_retrieval_take_store_qdrant(tmp_path, remembering, monkeypatch):
    monkeypatch.setattr("konsilium.index.indexer.make_embedder", lambda config, model: remembering)
    vault = tmp_path / "vault"
    (vault / "Garden").mkdir(parents=True)
    (vault / "Garden" / "tomatoes.md").write_text("# Tomatoes\nThey need sun and water.\n", encoding="utf-8")
    (vault / "bikes.md").write_text("# Bikes\nLubricate the chain every month.\n", encoding="utf-8")
    home = tmp_path / "home"
    indexed = json.loads(run_with_home(home, "index", str(vault), "--store", "qdrant", "--json").stdout)
    assert (indexed["notes"], indexed["chunks"]) == (2, 2)
    assert (home / "qdrant").is_dir() and not list((home / "index").glob("*.lance"))  # nothing went to LanceDB
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"question": "chain lubrication", "expected": ["bikes.md"]}) + "\n")
    args = ["eval", "retrieval", "--vault", str(vault), "--questions", str(questions), "--home", str(home)]
    result = json.loads(run_with_home(home, *args, "--store", "qdrant", "--json").stdout)
    assert result["index"]["unchanged"] == 2  # the index written by `konsilium index --store qdrant`
    assert {mode: scores["hit"] for mode, scores in result["modes"].items()} == {"hybrid": 1, "dense": 1, "bm25": 1}


def test_a_rebuild_replaces_the_live_collections_only_when_it_finishes(tmp_path):
    client = qdrant_store.client_for(None, tmp_path)
    vector = np.ones(DIM, dtype=np.float32) / np.sqrt(DIM)

    def write(store, name: str) -> None:
        chunk = ChunkRecord(f"/v::{name}", name, name, "", "w", "w", name, 0, vector)
        store.replace_notes([NoteRecord(f"/v::{name}", "/v", name, "h", name)], [chunk])

    live = qdrant_store.QdrantStore(client, "r", "test-embedder", DIM)
    write(live, "old.md")
    live.finish()
    rebuild = qdrant_store.QdrantStore(client, "r", "test-embedder", DIM, rebuild=True)
    write(rebuild, "new.md")
    assert [h.note for h in live.search_bm25("w", 5)] == ["old.md"]  # readers keep the live index meanwhile
    rebuild.finish()
    assert live.follow() and [h.note for h in live.search_bm25("w", 5)] == ["new.md"]
    names = {c.name for c in client.get_collections().collections}
    assert names == {qdrant_store.META, rebuild.chunks_name, rebuild.notes_name}  # the old ones are gone
    with pytest.raises(StoreError, match="--rebuild"):
        qdrant_store.QdrantStore(client, "r", "other-embedder", DIM)
