"""Retrieval settings compared on two halves of each question set, so a change tuned on one half is judged on
the other: `python -m konsilium.evaluation.study --vault DIR --questions F [--questions F2] --home DIR`.

Every question set is split by line (even lines: half A, odd lines: half B). Store searches and query vectors
are cached, so trying several fusion settings costs one pass of searches.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .retrieval import Question, evaluate, load_questions

# name -> (mode, Retriever attributes to override)
SETTINGS: dict[str, tuple[str, dict]] = {
    "hybrid": ("hybrid", {}),
    "bm25": ("bm25", {}),
    "dense": ("dense", {}),
}


def halves(questions: list[Question]) -> tuple[list[Question], list[Question]]:
    return questions[0::2], questions[1::2]


class CachedStore:
    """The same answers as `store` for repeated searches (the fusion under study never changes them)."""

    def __init__(self, store):
        self.store = store
        self._found: dict[tuple, list] = {}

    def _cached(self, key: tuple, search) -> list:
        if key not in self._found:
            self._found[key] = search()
        return self._found[key]

    def search_bm25(self, terms: str, limit: int, scope=None):
        return self._cached(("bm25", terms, limit, scope), lambda: self.store.search_bm25(terms, limit, scope))

    def search_dense(self, vector, limit: int, scope=None):
        key = ("dense", vector.tobytes(), limit, scope)
        return self._cached(key, lambda: self.store.search_dense(vector, limit, scope))

    def notes(self):
        return self.store.notes()


class CachedEmbedder:
    def __init__(self, embedder):
        self.embedder = embedder
        self.multilingual = getattr(embedder, "multilingual", False)
        self._cache: dict[str, object] = {}

    def embed(self, texts: list[str]):
        missing = [t for t in texts if t not in self._cache]
        if missing:
            for text, vector in zip(missing, self.embedder.embed(missing), strict=True):
                self._cache[text] = vector
        return [self._cache[t] for t in texts]


def study(retriever_for, sets: dict[str, list[Question]], k: int = 5, settings=SETTINGS) -> dict:
    """{setting: {part: {"hit", "mrr"}}} with parts A, B and all, each pooled over every question set."""
    parts = {"A": [], "B": [], "all": []}
    for questions in sets.values():
        first, second = halves(questions)
        parts["A"] += first
        parts["B"] += second
        parts["all"] += questions
    result: dict = {}
    for name, (mode, overrides) in settings.items():
        retriever = retriever_for(overrides)
        result[name] = {part: evaluate(retriever, qs, k=k, modes=[mode])["modes"][mode] for part, qs in parts.items()}
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vault", type=Path, required=True)
    parser.add_argument("--questions", type=Path, action="append", required=True)
    parser.add_argument("--home", type=Path, required=True, help="reused between runs: indexing is incremental")
    parser.add_argument("--k", type=int, default=5)
    args = parser.parse_args(argv)

    from ..config import open_home
    from ..index.indexer import Indexer
    from ..index.retrieval import Retriever

    home = open_home(args.home)
    indexer = Indexer(home, roots=[args.vault])
    indexer.run([args.vault])
    store = CachedStore(indexer.store)
    embedder = CachedEmbedder(indexer.embedder)

    def retriever_for(overrides: dict) -> Retriever:
        retriever = Retriever(store, embedder, home.config.retrieval.candidates)
        for name, value in overrides.items():
            setattr(retriever, name, value)
        return retriever

    sets = {str(path): load_questions(path) for path in args.questions}
    result = study(retriever_for, sets, k=args.k)
    print(json.dumps({"vault": str(args.vault), "questions": {n: len(q) for n, q in sets.items()}, **result}))
    for name, parts in result.items():
        cells = "  ".join(f"{p} {v['hit']:.2f}/{v['mrr']:.2f}" for p, v in parts.items())
        print(f"{name:24} {cells}")


if __name__ == "__main__":
    main()
