"""One concept's words in English and Russian (glossary.tsv, kept as data): what lets "мой вид на жительство"
name "my residence permit renewal", "ink" name "a wolf tattoo" and "Who is my family doctor?" find "Мой
семейный врач — доктор Шульц" when the sentence encoder scores the two languages too far apart."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path

from ..index.text import analyze

GLOSSARY = Path(__file__).with_name("glossary.tsv")
# A one-word phrase names its concept when its stem is long enough to mean one thing: English from 3 letters
# ("ink", "son"), Russian from 4 ("лет", "дом", "род" are parts of too many words), but for the people and
# things whose short stems are their own ("жен", "муж", "сын"; "кур" of "курить", rarely "куры").
SHORT_RUSSIAN = frozenset(
    {"жен", "муж", "сын", "доч", "дед", "внж", "дач", "бег", "вес", "виз", "зуб", "кот", "пес", "кур", "кг", "евр"}
)


VERB_SECTION = "verbs"  # the glossary's section of verbs of change and state ("move", "переехать")


@lru_cache(maxsize=1)
def _index() -> tuple[dict[str, list[tuple[int, tuple[str, ...]]]], list[frozenset[str]], frozenset[int]]:
    """First stem of each phrase → (concept, the phrase's stems); each concept's stems; the verbs' concepts."""
    by_first: dict[str, list[tuple[int, tuple[str, ...]]]] = defaultdict(list)
    stems_of: list[frozenset[str]] = []
    verbs: set[int] = set()
    for section, phrases in phrase_rows(GLOSSARY):
        concept = len(stems_of)
        if section.startswith(VERB_SECTION):
            verbs.add(concept)
        phrases = [p for p in phrases if p and (len(p) > 1 or _names_one_thing(p[0]))]
        for phrase in phrases:
            by_first[phrase[0]].append((concept, phrase))
        stems_of.append(frozenset(s for p in phrases for s in p))
    return dict(by_first), stems_of, frozenset(verbs)


def phrase_rows(path: Path) -> Iterator[tuple[str, list[tuple[str, ...]]]]:
    """Each row of an English–Russian table (`english | other <TAB> русский | другой`, "# section" lines between):
    the section it is in and each of its phrases as stems. The glossary and the places list (places.py) are such."""
    section = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            section = line.lstrip("# ").strip()
        if not line.strip() or line.startswith("#") or "\t" not in line:
            continue
        yield section, [tuple(analyze(p.strip())) for side in line.split("\t")[:2] for p in side.split("|")]


def _names_one_thing(stem: str) -> bool:
    if stem.isascii():
        return len(stem) >= 3 or stem in ("ex", "kg")  # "my ex" is "мой бывший"
    return len(stem) >= 4 or stem in SHORT_RUSSIAN


def concepts(stems: Iterable[str]) -> frozenset[int]:
    """The concepts whose phrases `stems` (a text's `analyze` output) hold whole."""
    return frozenset(naming(stems))


def naming(stems: Iterable[str]) -> dict[int, frozenset[str]]:
    """Each concept whose phrases `stems` hold whole → the stems that name it ("вид на жительство": вид,
    жительств → residence permit)."""
    by_first, _, _ = _index()
    have = set(stems)
    found: dict[int, frozenset[str]] = {}
    for stem in have:
        for concept, phrase in by_first.get(stem, ()):
            if len(phrase) == 1 or all(p in have for p in phrase):
                found[concept] = found.get(concept, frozenset()) | frozenset(phrase)
    return found


def things(stems: Iterable[str]) -> frozenset[int]:
    """`concepts` less the verbs of change and state and the words of change anywhere ("moving", "переезд"):
    what a statement is about, not what happened to it ("переезжаем на GitHub Actions" and "переехали в Панков"
    share a verb, no subject)."""
    _, _, verbs = _index()
    changing = changes()
    return frozenset(c for c in naming(stems) if c not in verbs and c not in changing)


@lru_cache(maxsize=1)
def changes() -> frozenset[int]:
    """The concepts of change: moving, switching, selling ("переезд", "moved", "сменил")."""
    from . import lexicon as lx

    words = {w for w in lx.UPDATE_WORDS | lx.READ_CHANGE_WORDS | lx.MOVE_WORDS if len(w) >= 4}
    _, stems_of, _ = _index()
    return frozenset(
        concept for concept, stems in enumerate(stems_of) if any(s.startswith(w) for s in stems for w in words)
    )


def equivalents(stems: Iterable[str]) -> set[str]:
    """The stems of every phrase of the concepts `stems` name, in both languages, less `stems` themselves."""
    _, stems_of, _ = _index()
    have = set(stems)
    return {s for concept in concepts(have) for s in stems_of[concept]} - have
