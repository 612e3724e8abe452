"""An indexed vault where every question finds one relevant note: for server tests whose subject is not retrieval."""

from __future__ import annotations

from konsilium.grounding.knowledge import Passage


class OneNoteVault:
    default_collection = "vault"

    def collections(self) -> list[str]:
        return ["vault"]

    def search(self, query, k, *args, **kwargs) -> list[Passage]:
        return [Passage("vault", "travel/Paris.md", "Paris", "Weather", "Paris is mild in spring.", 0.9, 0.8)]
