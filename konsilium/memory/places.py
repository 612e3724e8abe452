"""Place names in English and Russian (places.tsv, kept as data: ~1,300 countries, cities and districts written
by a helper from general knowledge): what tells "Я, кстати, в Новосибирске" (where he lives) from "Я в Яндексе"
(where he works), and two statements naming two different places from one restating the same."""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache
from pathlib import Path

from ..index.text import analyze
from .glossary import phrase_rows

PLACES = Path(__file__).with_name("places.tsv")
MIN_STEM = 3  # a one-word name shorter than this stems into too many other words ("ош", "уфа" stays: 3)


@lru_cache(maxsize=1)
def _index() -> dict[str, list[tuple[int, tuple[str, ...]]]]:
    """First stem of each name → (place, the name's stems); every spelling of one place shares its number."""
    by_first: dict[str, list[tuple[int, tuple[str, ...]]]] = defaultdict(list)
    for place, (_, names) in enumerate(phrase_rows(PLACES)):
        for name in set(names):
            if name and (len(name) > 1 or len(name[0]) >= MIN_STEM):
                by_first[name[0]].append((place, name))
    return dict(by_first)


@lru_cache(maxsize=8192)
def places(text: str) -> frozenset[int]:
    """The places a text names, in any case and either language ("в Казани", "Kazan", "Нижнем Новгороде")."""
    index, stems = _index(), analyze(text)
    return frozenset(
        place
        for i, first in enumerate(stems)
        for place, name in index.get(first, ())
        if tuple(stems[i : i + len(name)]) == name
    )
