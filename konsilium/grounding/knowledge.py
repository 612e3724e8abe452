"""The vault's indexed collections as one searchable knowledge source for answers.

Retrievers (a store plus its embedder) open lazily, once per collection, and are shared by all requests: an
embedder takes seconds to load and a Lance table is safe to read from several threads. Every search checks the
collection's meta file: after an `index --rebuild` (a new generation of tables, maybe another embedder) the
retriever is reopened on the new one, while searches already running finish on the old tables.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from ..config import Home


class UnknownCollectionError(ValueError):
    """A request named a collection that has no index."""


@dataclass(frozen=True)
class Passage:
    collection: str
    note: str
    title: str
    heading: str
    text: str
    score: float
    relevance: float | None = None  # the raw dense cosine with the query (Hit.relevance); None: not known


class Knowledge:
    def __init__(self, home: Home, wrap_embedder=None):
        """`wrap_embedder`: applied to each embedder when it is made (the CLI's search has a running server
        embed its questions)."""
        self.home = home
        self._wrap_embedder = wrap_embedder
        self._retrievers: dict[str, tuple[tuple, object]] = {}  # collection -> (generation, retriever)
        self._embedders: dict[str, object] = {}
        self._lock = threading.Lock()

    @property
    def min_relevance(self) -> float:
        """Passages whose relevance is below this are not offered to the model (`retrieval.min_relevance`)."""
        return self.home.config.retrieval.min_relevance

    @property
    def default_collection(self) -> str:
        return self.home.config.index.collection

    def collections(self) -> list[str]:
        from ..index.indexer import list_collections

        return list_collections(self.home)

    def search(
        self,
        query: str,
        k: int,
        collections: list[str] | None = None,
        mode: str | None = None,
        folders: tuple[str, ...] = (),
        tags: tuple[str, ...] = (),
    ) -> list:
        """The best `k` passages over `collections` (default: the configured one, if it has been indexed),
        optionally only from notes under `folders` (vault-relative) and carrying one of `tags` (as indexed; the
        scope is applied inside the index before ranking, so a narrow scope still yields `k` passages)."""
        from ..index.scope import Scope

        mode = mode or self.home.config.retrieval.mode
        available = self.collections()
        if collections is None:
            names = [self.default_collection] if self.default_collection in available else []
        else:
            unknown = [name for name in collections if name not in available]
            if unknown:
                known = ", ".join(available) or "none yet: run `konsilium index PATH`"
                raise UnknownCollectionError(f"unknown collection(s) {', '.join(unknown)}; indexed: {known}")
            names = list(dict.fromkeys(collections))
        scope = Scope.of(folders, tags)
        passages: list[Passage] = []
        for name in names:
            for hit in self.retriever(name).search(query, k, mode, scope):
                passages.append(Passage(name, hit.note, hit.title, hit.heading, hit.text, hit.score, hit.relevance))
        passages.sort(key=lambda p: p.score, reverse=True)
        return passages[:k]

    def retriever(self, collection: str):
        from ..index.indexer import generation

        with self._lock:
            current = generation(self.home, collection)
            cached = self._retrievers.get(collection)
            if cached is None or cached[0] != current:
                from ..index.indexer import open_store, resolve_model
                from ..index.retrieval import Retriever

                embedder = self._embedder_for(resolve_model(self.home, collection))
                store, embedder = open_store(self.home, collection, embedder)
                retriever = Retriever(store, embedder, self.home.config.retrieval.candidates)
                self._retrievers[collection] = (current, retriever)
            return self._retrievers[collection][1]

    def embedder(self, collection: str | None = None):
        """The embedder of a collection (default: the configured one), for /v1/embeddings."""
        from ..index.indexer import resolve_model

        with self._lock:
            return self._embedder_for(resolve_model(self.home, collection or self.default_collection))

    def _embedder_for(self, model: str):
        if model not in self._embedders:
            from ..index.embedder import make_embedder

            embedder = make_embedder(self.home.config, model)
            self._embedders[model] = self._wrap_embedder(embedder) if self._wrap_embedder else embedder
        return self._embedders[model]
