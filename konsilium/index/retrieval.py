"""Hybrid retrieval: BM25 over our own stems + dense vectors, fused by normalized scores.

Plain reciprocal-rank fusion treats both retrievers as equally reliable; ours are not. MiniLM is English-only,
so on a Russian query its ranking is mostly noise and RRF drags BM25 down (measured: 0.87/0.64 vs BM25's
0.93/0.87). We fuse min-max-normalized scores with a dense weight that follows the script of the query, the
script of each chunk and whether the embedder is multilingual; then a note's other matching chunks add
evidence. Scores are normalized between the best hit and the one at a fixed depth (`candidates`), so asking
for more results never reorders the first ones. A link-graph boost was measured and dropped: it changed no
top 10 on the densely linked Obsidian help vault and only hurt at larger weights (issue 9). Checked with
`python -m konsilium.evaluation.study` on two halves of each question set and a held-out set.
"""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..config import RETRIEVAL_MODES
from .embedder import Embedder
from .scope import Scope
from .store import StoredChunk
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
    # The raw dense cosine of the chunk with the query, before any normalization: comparable across queries, so
    # it can tell a relevant chunk from an irrelevant one (fused scores cannot: the best hit always scores ~1).
    # A chunk outside the dense candidates gets the lowest candidate's cosine (an upper bound); None in bm25 mode.
    relevance: float | None = None

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


def _normalized(chunks: list[StoredChunk], depth: int) -> dict[int, float]:
    """Min-max between the best score and the one at rank `depth` (lower ones count 0): the same scores whether
    the caller asked for 5 results or 100, and whether a scope left 60 candidates or 6."""
    if not chunks:
        return {}
    ranked = sorted((c.score for c in chunks), reverse=True)
    top, low = ranked[0], ranked[min(depth, len(ranked)) - 1]
    span = top - low
    return {i: max(0.0, (c.score - low) / span) if span > 1e-9 else 1.0 for i, c in enumerate(chunks)}


class Retriever:
    def __init__(self, store, embedder: Embedder, candidates: int = 60):
        self.store = store
        self.embedder = embedder
        self.candidates = candidates
        self.note_evidence = NOTE_EVIDENCE
        multilingual = getattr(embedder, "multilingual", False)
        self.dense_weights = dict(MULTILINGUAL_DENSE_WEIGHT if multilingual else DENSE_WEIGHT)
        self._completes = callable(getattr(store, "complete_chunks", None))

    def search(self, query: str, k: int = 10, mode: str = "hybrid", scope: Scope | None = None) -> list[Hit]:
        """The best `k` chunks (at most 3 per note); with `scope`, only from notes in it, filtered before ranking."""
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}: allowed modes are {', '.join(MODES)}")
        if not query.strip():
            return []
        bm25, dense = self._candidates(query, max(self.candidates, k), mode, scope)
        return self._rank(query, bm25, dense, k, mode)

    def _candidates(self, query: str, pool: int, mode: str, scope: Scope | None):
        """Both candidate lists; BM25 runs in the pool while the query is embedded and the vectors searched, so a
        hybrid query waits for the slower side, not for their sum."""
        # A store that can fill display fields later is asked only for what ranking reads (LanceStore: half the
        # random reads); the hits returned are completed in _hits.
        only_ranked = {"complete": False} if self._completes else {}
        bm25_job = (
            _POOL.submit(self.store.search_bm25, query_terms(query), pool, scope, **only_ranked)
            if mode != "dense"
            else None
        )
        if mode != "bm25":
            dense = self.store.search_dense(self.embedder.embed([query])[0], pool, scope, **only_ranked)
        else:
            dense = []
        bm25 = bm25_job.result() if bm25_job else []
        return bm25, dense

    def _rank(self, query: str, bm25: list[StoredChunk], dense: list[StoredChunk], k: int, mode: str) -> list[Hit]:
        if mode == "bm25":
            return self._hits(self._diverse([(c, c.score) for c in bm25], k), None)
        cosine = {(c.note_key, c.ordinal): c.score for c in dense}
        scored = [(c, c.score) for c in dense] if mode == "dense" else self._fuse(query, bm25, dense)
        return self._hits(self._diverse(scored, k), cosine)

    def _fuse(self, query: str, bm25: list[StoredChunk], dense: list[StoredChunk]):
        query_cyrillic = cyrillic_share(query)
        parts: dict[tuple[str, int], list[float]] = defaultdict(lambda: [0.0, 0.0])
        chunk_of: dict[tuple[str, int], StoredChunk] = {}
        for side, chunks in ((0, bm25), (1, dense)):
            for i, value in _normalized(chunks, self.candidates).items():
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
        return [(chunk_of[key], value + extra[key[0]]) for key, value in scores.items()]

    @staticmethod
    def _diverse(scored: list[tuple[StoredChunk, float]], k: int) -> list[tuple[StoredChunk, float]]:
        """The best `k`, at most MAX_CHUNKS_PER_NOTE from one note."""
        per_note: dict[str, int] = defaultdict(int)
        picked: list[tuple[StoredChunk, float]] = []
        for chunk, score in sorted(scored, key=lambda cs: cs[1], reverse=True):
            if per_note[chunk.note_key] >= MAX_CHUNKS_PER_NOTE:
                continue
            per_note[chunk.note_key] += 1
            picked.append((chunk, score))
            if len(picked) == k:
                break
        return picked

    def _hits(self, picked: list[tuple[StoredChunk, float]], cosine: dict[tuple[str, int], float] | None) -> list[Hit]:
        if self._completes:
            self.store.complete_chunks([chunk for chunk, _ in picked])
        floor = min(cosine.values(), default=0.0) if cosine is not None else None
        hits = []
        for chunk, score in picked:
            relevance = None if cosine is None else cosine.get((chunk.note_key, chunk.ordinal), floor)
            hits.append(Hit(chunk.note, chunk.heading, score, chunk.text, chunk.title, chunk.note_key, relevance))
        return hits
