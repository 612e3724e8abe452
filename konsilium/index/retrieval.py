"""Hybrid retrieval: BM25 over our own stems + dense vectors, fused by normalized scores, then a link boost.

Plain reciprocal-rank fusion treats both retrievers as equally reliable; ours are not. MiniLM is English-only,
so on a Russian query its ranking is mostly noise and RRF drags BM25 down (measured: 0.87/0.64 vs BM25's
0.93/0.87). We fuse min-max-normalized scores with a dense weight that follows the script of the query, the
script of each chunk and whether the embedder is multilingual; then a note's other matching chunks add
evidence and links from strong hits add a boost. Tuned and checked with `konsilium eval retrieval`: hybrid is
at least as good as the better single mode on Russian, English and cross-language question sets.
"""

from __future__ import annotations

import math
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..config import RETRIEVAL_MODES
from .embedder import Embedder
from .store import NoteRecord, StoredChunk
from .text import cyrillic_share, query_terms

MODES = RETRIEVAL_MODES
MAX_CHUNKS_PER_NOTE = 3
NOTE_EVIDENCE = 0.2  # weight of a note's other matching chunks in each of its chunks' scores
# BM25 runs while the query is embedded and the vectors searched: Lance and torch release the GIL.
_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="konsilium-search")


@dataclass
class Hit:
    note: str
    heading: str
    score: float
    text: str
    title: str
    note_key: str

    def to_json(self) -> dict:
        return {"note": self.note, "heading": self.heading, "score": round(self.score, 6), "text": self.text}


# How much the fused score trusts the dense side, by the script of the query and of the chunk: the bundled
# embedder is English-only, reliable on English pairs, weak across scripts and noise on Russian queries.
DENSE_WEIGHT = {"en-en": 0.6, "en-ru": 0.25, "ru": 0.1}
# A multilingual embedder (`embedder.multilingual`) shares one space across Russian and English, so the dense
# side stays useful on Russian queries and across scripts.
MULTILINGUAL_DENSE_WEIGHT = {"en-en": 0.6, "en-ru": 0.5, "ru": 0.4}


def dense_weight(query_cyrillic: float, chunk_cyrillic: float, weights: dict[str, float] = DENSE_WEIGHT) -> float:
    english_query = weights["en-en"] - (weights["en-en"] - weights["en-ru"]) * chunk_cyrillic
    return weights["ru"] + (1.0 - query_cyrillic) * (english_query - weights["ru"])


def _normalized(chunks: list[StoredChunk]) -> dict[int, float]:
    if not chunks:
        return {}
    top = max(c.score for c in chunks)
    low = min(c.score for c in chunks)
    span = top - low
    return {i: (c.score - low) / span if span > 1e-9 else 1.0 for i, c in enumerate(chunks)}


class LinkGraph:
    """Note-to-note links (both directions), resolved the way Obsidian does: by path or by name."""

    def __init__(self, notes: list[NoteRecord]):
        by_name: dict[str, list[str]] = defaultdict(list)
        for rec in notes:
            stem = rec.note.rsplit("/", 1)[-1].removesuffix(".md").lower()
            by_name[stem].append(rec.note_key)
            by_name[rec.note.removesuffix(".md").lower()].append(rec.note_key)
            for alias in rec.aliases:
                by_name[alias.lower()].append(rec.note_key)
        self.neighbors: dict[str, set[str]] = defaultdict(set)
        for rec in notes:
            for target in rec.links:
                for key in by_name.get(target, by_name.get(target.rsplit("/", 1)[-1], [])):
                    if key != rec.note_key:
                        self.neighbors[rec.note_key].add(key)
                        self.neighbors[key].add(rec.note_key)

    def degree(self, key: str) -> int:
        return len(self.neighbors.get(key, ()))


class Retriever:
    def __init__(self, store, embedder: Embedder, candidates: int = 60, link_boost: float = 0.15):
        self.store = store
        self.embedder = embedder
        self.candidates = candidates
        self.link_boost = link_boost
        self.note_evidence = NOTE_EVIDENCE
        multilingual = getattr(embedder, "multilingual", False)
        self.dense_weights = dict(MULTILINGUAL_DENSE_WEIGHT if multilingual else DENSE_WEIGHT)
        self._graph: LinkGraph | None = None
        self._vault_of: dict[str, str] = {}

    @property
    def graph(self) -> LinkGraph:
        if self._graph is None:
            self._read_notes()
        return self._graph

    def vault_of(self, note_key: str) -> str | None:
        """The vault root a hit's note lives in (a collection may index several)."""
        if note_key not in self._vault_of:
            self._read_notes()  # indexed since the notes were read
        return self._vault_of.get(note_key)

    def _read_notes(self) -> None:
        """One read of the notes table serves the link graph and the note → vault map."""
        records = list(self.store.notes().values())
        roots: dict[str, str] = {}  # one string per vault, not one per note
        self._vault_of = {r.note_key: roots.setdefault(r.vault, r.vault) for r in records}
        self._graph = LinkGraph(records)

    def search(self, query: str, k: int = 10, mode: str = "hybrid") -> list[Hit]:
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}: allowed modes are {', '.join(MODES)}")
        if not query.strip():
            return []
        pool = max(self.candidates, k)
        bm25_job = _POOL.submit(self.store.search_bm25, query_terms(query), pool) if mode != "dense" else None
        dense = self.store.search_dense(self.embedder.embed([query])[0], pool) if mode != "bm25" else []
        bm25 = bm25_job.result() if bm25_job else []
        if mode == "bm25":
            return self._diverse([(c, c.score) for c in bm25], k)
        if mode == "dense":
            return self._diverse([(c, c.score) for c in dense], k)
        return self._diverse(self._fuse(query, bm25, dense), k)

    def _fuse(self, query: str, bm25: list[StoredChunk], dense: list[StoredChunk]):
        query_cyrillic = cyrillic_share(query)
        parts: dict[tuple[str, int], list[float]] = defaultdict(lambda: [0.0, 0.0])
        chunk_of: dict[tuple[str, int], StoredChunk] = {}
        for side, chunks in ((0, bm25), (1, dense)):
            for i, value in _normalized(chunks).items():
                key = (chunks[i].note_key, chunks[i].ordinal)
                parts[key][side] = value
                chunk_of[key] = chunks[i]
        scores: dict[tuple[str, int], float] = {}
        for key, (lexical, semantic) in parts.items():
            w = dense_weight(query_cyrillic, cyrillic_share(chunk_of[key].text), self.dense_weights)
            scores[key] = (1.0 - w) * lexical + w * semantic
        # A note that matches in several chunks is stronger evidence than one lucky chunk.
        per_note: dict[str, list[float]] = defaultdict(list)
        for (note_key, _), value in scores.items():
            per_note[note_key].append(value)
        extra = {n: self.note_evidence * (sum(v) - max(v)) for n, v in per_note.items()}
        note_best = {n: max(v) + extra[n] for n, v in per_note.items()}
        boost = self._link_boost(note_best)
        return [(chunk_of[key], value + extra[key[0]] + boost.get(key[0], 0.0)) for key, value in scores.items()]

    def _link_boost(self, note_best: dict[str, float]) -> dict[str, float]:
        """Notes linked to or from strong hits gain a little, less when either end is a hub."""
        if self.link_boost <= 0 or not note_best:
            return {}
        boost: dict[str, float] = defaultdict(float)
        strongest = sorted(note_best.items(), key=lambda kv: kv[1], reverse=True)[:10]
        for key, value in strongest:
            neighbors = self.graph.neighbors.get(key, ())
            if not neighbors:
                continue
            for other in neighbors:
                # Normalized by both degrees: an index note linking to 80 steps neither gives nor takes much.
                share = self.link_boost * value / math.sqrt(len(neighbors) * self.graph.degree(other))
                boost[other] = max(boost[other], share)
        return boost

    @staticmethod
    def _diverse(scored: list[tuple[StoredChunk, float]], k: int) -> list[Hit]:
        scored = sorted(scored, key=lambda cs: cs[1], reverse=True)
        per_note: dict[str, int] = defaultdict(int)
        hits: list[Hit] = []
        for chunk, score in scored:
            if per_note[chunk.note_key] >= MAX_CHUNKS_PER_NOTE:
                continue
            per_note[chunk.note_key] += 1
            hits.append(Hit(chunk.note, chunk.heading, score, chunk.text, chunk.title, chunk.note_key))
            if len(hits) == k:
                break
        return hits
