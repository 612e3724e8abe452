"""The vault's indexed collections as one searchable knowledge source for answers.

Retrievers (a store plus its embedder) open lazily, once per collection, and are shared by all requests: an
embedder takes seconds to load and a Lance table is safe to read from several threads.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

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


class Knowledge:
    def __init__(self, home: Home):
        self.home = home
        self._retrievers: dict[str, object] = {}
        self._embedders: dict[str, object] = {}
        self._lock = threading.Lock()
        self._tags: dict[Path, tuple[int, set[str]]] = {}  # note file -> (mtime, tags)

    @property
    def default_collection(self) -> str:
        return self.home.get("index.collection")

    def collections(self) -> list[str]:
        from ..index.lance_store import list_collections

        return list_collections(self.home.index_dir)

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
        optionally only from notes under `folders` (vault-relative) or carrying one of `tags`."""
        mode = mode or self.home.get("retrieval.mode")
        available = self.collections()
        if collections is None:
            names = [self.default_collection] if self.default_collection in available else []
        else:
            unknown = [name for name in collections if name not in available]
            if unknown:
                known = ", ".join(available) or "none yet: run `konsilium index PATH`"
                raise UnknownCollectionError(f"unknown collection(s) {', '.join(unknown)}; indexed: {known}")
            names = list(dict.fromkeys(collections))
        prefixes = tuple(folder.strip("/") + "/" for folder in folders if folder.strip("/"))
        wanted_tags = {tag.lstrip("#").lower() for tag in tags if tag.lstrip("#")}
        wanted = k * 8 if prefixes or wanted_tags else k  # filtered after ranking: ask for more so k survive
        passages: list[Passage] = []
        for name in names:
            for hit in self.retriever(name).search(query, wanted, mode):
                if prefixes and not hit.note.startswith(prefixes):
                    continue
                if wanted_tags and not _tagged(self._note_tags(name, hit), wanted_tags):
                    continue
                passages.append(Passage(name, hit.note, hit.title, hit.heading, hit.text, hit.score))
        passages.sort(key=lambda p: p.score, reverse=True)
        return passages[:k]

    def _note_tags(self, collection: str, hit) -> set[str]:
        """A note's tags as the vault has them now (read from the file, cached until it changes): the index
        keeps no tags, and a role's scope should follow the user's latest tagging without a re-index."""
        from ..vault.walker import read_note

        vault = self.retriever(collection).vault_of(hit.note_key)
        if vault is None:
            return set()
        path = Path(vault) / hit.note
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:  # deleted since indexing
            return set()
        cached = self._tags.get(path)
        if cached is None or cached[0] != stamp:
            parsed = read_note(Path(vault), hit.note)
            cached = self._tags[path] = (stamp, {tag.lower() for tag in getattr(parsed, "tags", ())})
        return cached[1]

    def retriever(self, collection: str):
        with self._lock:
            if collection not in self._retrievers:
                from ..index.indexer import open_store, resolve_model
                from ..index.retrieval import Retriever

                embedder = self._embedder_for(resolve_model(self.home, collection))
                store, embedder = open_store(self.home, collection, embedder)
                self._retrievers[collection] = Retriever(
                    store, embedder, self.home.get("retrieval.candidates"), self.home.get("retrieval.link_boost")
                )
            return self._retrievers[collection]

    def embedder(self, collection: str | None = None):
        """The embedder of a collection (default: the configured one), for /v1/embeddings."""
        from ..index.indexer import resolve_model

        with self._lock:
            return self._embedder_for(resolve_model(self.home, collection or self.default_collection))

    def _embedder_for(self, model: str):
        if model not in self._embedders:
            from ..index.embedder import make_embedder

            self._embedders[model] = make_embedder(self.home.settings, model)
        return self._embedders[model]


def _tagged(note_tags: set[str], wanted: set[str]) -> bool:
    """Obsidian's nesting: a scope tag `sport` covers the note tags `sport` and `sport/running`."""
    return any(tag == want or tag.startswith(want + "/") for tag in note_tags for want in wanted)
