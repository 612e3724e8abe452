"""What a statement or a question is about: its subject keys ("Where do I work?" → job, "my laptop has 16 GB" →
laptop.ram) from the lexicon (`lexicon.py`), and whether it says something changed, stopped or was replaced.

The extractor keys what it stores with these; recall asks the same of every question and recalled memory, so the
two sides agree on what a subject is.
"""

from __future__ import annotations

import re
from functools import lru_cache

from ..index.text import stem, words
from . import lexicon as lx
from .attribution import OPENERS, is_relation

_NUMBER_UNIT = re.compile(r"(\d)([a-zа-яё]{1,3})\b")


def stems_of(text: str) -> list[str]:
    lowered = _NUMBER_UNIT.sub(r"\1 \2", text.lower())  # "50mg", "16GB": the unit names the subject
    for phrase, meaning in lx.PHRASES.items():
        lowered = lowered.replace(phrase, meaning)
    out = []
    for token in words(lowered):
        if token in _ALIVE:
            continue  # "живая преподавательница" says nothing of where one lives (stem "жив")
        out.append(token if token in lx.UNSTEMMED else stem(token))
        if lx.DRUG_NAME.match(token):
            out.append("препарат")  # "Пью лозартан 50 утром", "started me on ramipril": a medicine, by its name
        if "-" in token and lx.CYRILLIC_LETTER.search(token):  # "бэкенд-разработчик" is a developer; "go-live" no life
            out.extend(stem(part) for part in token.split("-") if len(part) > 2)
    return out


_ALIVE = frozenset("живой живая живое живые живого живому живую живым живыми живых живом".split())


def subject_key(text: str) -> str | None:
    """The subject key a question is about ("Where do I work?" → job), to find the memories that answer it."""
    stems = stems_of(text)
    return preference_key(stems) or main_key(stems)[0]


def subject_keys(text: str) -> set[str]:
    """Every subject a statement touches ("my laptop has 16 GB, phone is a Pixel 7a": laptop.ram and phone)."""
    stems = stems_of(text)
    keys = {key for key, _ in all_keys(stems)}
    preference = preference_key(stems)
    return keys | ({preference} if preference else set())


def key_is_exclusive(key: str) -> bool:
    """Whether one value at a time makes sense for `key` (a job, a city), not a list (foods avoided)."""
    return key.startswith(lx.EXCLUSIVE_PREFIXES)


_STOPS = re.compile(
    r"(?i)\b(?:no\s+longer|not\s+any\s*more|stopped|quit|gave\s+up|больше\s+не|бросил[аи]?|завязал[аи]?|"
    r"перестал[аи]?)\b"
)


def matches_any(stems: list[str], wanted: frozenset[str]) -> bool:
    """A stem equals a lexicon stem, or starts with one of 4+ letters: a Russian one with any ending (they vary),
    an English one of 5+ with one letter more ("weight" / "weigh", "allergi" / "allerg"; not "pushok" / "push",
    "care" / "car"); the
    words kept unstemmed match nothing."""
    wanted, prefixes = _stemmed(wanted)
    return any(
        (s in wanted or (len(s) > 5 and s[:-1] in wanted if s.isascii() else s.startswith(prefixes)))
        and s not in lx.UNSTEMMED
        for s in stems
    )


@lru_cache(maxsize=64)
def _stemmed(entries: frozenset[str]) -> tuple[frozenset[str], tuple[str, ...]]:
    """The lexicon's entries as written and as stemmed ("глютен" is also "глют", as the stemmer makes it), and the
    Russian ones as prefixes (one `startswith` call: recall asks this of every hit)."""
    wanted = entries | frozenset(stem(w.replace("ё", "е")) for w in entries)
    # prefixes: as written, and stemmed where the stem keeps 5 letters: stemming a stem cuts it too short ("веган"
    # → "вега" would start "Вегас")
    written = {w.replace("ё", "е") for w in entries if len(w) >= 4 and not w.isascii()}
    stemmed = {stem(w) for w in written if len(stem(w)) >= 5}
    return wanted, tuple(sorted(written | stemmed))


def mentions_concept(stems: list[str]) -> bool:
    return main_key(stems)[0] is not None


def main_key(stems: list[str]) -> tuple[str | None, str | None]:
    """The statement's main subject: a laptop's RAM when both are named, else the concept named first."""
    found = all_keys(stems)
    if not found:
        return None, None
    for key, kind in found:
        if key == "laptop.ram":
            return key, kind
    if found[0][0] == "medication" and any(k == "allergy" for k, _ in found):
        return next((k, c) for k, c in found if k == "allergy")  # "на пенициллин аллергия": the allergy, not a medicine
    if found[0][0] == "learning:language":  # "learning Russian with a tutor on Thursdays": the lessons' day changes
        return next(((k, c) for k, c in found if k.startswith("schedule:")), found[0])
    if found[0][0] == "job" and "quit" in stems:  # "quit the low-carb thing, doing 16:8 now": the diet he quit
        others = all_keys([s for s in stems if s != "quit"])
        if others and others[0][0] == "diet":  # (not "quit the cafe, doing deliveries on my bike": a job)
            return others[0]
    return found[0]


def all_keys(stems: list[str]) -> list[tuple[str, str]]:
    """Every concept the stems name, in the order of their first mention."""
    found = []
    for position in range(len(stems)):
        key, kind = _concept(stems[: position + 1], stems)
        if key is not None and key not in [k for k, _ in found]:
            found.append((key, kind))
    return found


def _concept(prefix: list[str], stems: list[str]) -> tuple[str | None, str | None]:
    """The first concept (in lexicon order) whose word is the last stem of `prefix` (context: all `stems`)."""
    last = prefix[-1:]
    for key, kind, wanted in lx.CONCEPTS:
        if key == "schedule:":
            activity = activity_of(last)
            if activity in lx.ACTIVITY_ALIASES.get("lessons", ()) + ("lessons",):
                activity = activity_of(stems) or activity  # "women's sessions on Mondays … my climbing schedule"
            if activity and matches_any(stems, lx.DAY_WORDS):
                return f"schedule:{activity}", kind
            continue
        if key == "learning:language":
            if matches_any(last, wanted) and matches_any(stems, lx.LANGUAGES):
                return key, kind
            continue
        if matches_any(last, wanted):
            if key == "home.city" and matches_any(last, lx.MOVE_WORDS) and not _moves_home(prefix, stems):
                continue
            if key == "home.city" and len(prefix) > 1 and is_relation(prefix[-2]):
                continue  # "там мама живёт": the relation's home, said in passing
            if key == "car" and matches_any(last, lx.DRIVE_WORDS) and not _drives_something(prefix, stems):
                continue
            if key == "car" and matches_any(last, lx.DRIVE_WORDS) and matches_any(stems, _BIKE_WORDS):
                continue  # "езжу на своём складном велосипеде": what he rides is a bike
            if key == "laptop.ram" and not matches_any(stems, lx.CONCEPTS[2][2]) and "gb" not in stems:
                continue  # RAM of what? only a laptop's is keyed
            if key.endswith(":"):
                return key + _topic(stems, wanted), kind
            return key, kind
    return None, None


_BIKE_WORDS = lx.concept_words("bike")


def _drives_something(prefix: list[str], stems: list[str]) -> bool:
    """ "driving my Fiesta", "езжу на Ниве", "вожу Largus": a vehicle follows; "driving time" has none."""
    after = [s for s in stems[len(prefix) : len(prefix) + 2] if s not in ("я", "мы", "i", "we")][:1]  # "Езжу я на…"
    return bool(after) and (after[0] in lx.DRIVEN_OBJECT or prefix[-1].startswith("вож"))


def _moves_home(prefix: list[str], stems: list[str]) -> bool:
    """ "Moved to Kazan", "we moved here": the subject moves; "Moved the business account to Tochka" moves a
    thing (an object follows the verb)."""
    after = stems[len(prefix) : len(prefix) + 1]
    return _own_move(prefix) and not (after and after[0] in lx.OBJECT_OPENERS)


def _own_move(prefix: list[str]) -> bool:
    """The move word opens the statement or follows its subject: a first-person word, a relation, a name's
    "'s" ("Ellie's moving"); after any other word something else moved ("Bouldering moved to Sundays")."""
    before = [s for s in prefix[:-1] if s not in _MOVE_FILLERS]
    if not before:
        return True
    subject = before[-1]
    return (
        any(s in lx.FIRST_PERSON for s in before)  # "Мы с Анной переехали"
        or subject.endswith("'s")
        or is_relation(subject)
        or subject in _GIVEN_NAME_STEMS  # "Olya moved to Tbilisi", "Оля переехала"
    )


# Words between a subject and its move that change nothing: "Оля, кстати, всё-таки переехала в Казань".
_MOVE_FILLER_WORDS = (
    "just finally recently also actually eventually недавно наконец ещё кстати всё-таки все-таки все уже тоже таки "
    "итоге ну вот короче крч "  # "ну всё, в итоге переехали на каменную горку"
    + " ".join(lx.MONTHS_RU_IN)  # "в марте переехали"
)
# ("в итоге", "in the end")
_MOVE_FILLERS = frozenset(stem(w) for w in _MOVE_FILLER_WORDS.split()) | {
    "just",
    "finally",
    "recently",
    "also",
    "ещё",
    "в",
    "in",
}
_GIVEN_NAME_STEMS = frozenset(stem(n) for n in lx.GIVEN_NAMES) | lx.GIVEN_NAMES


def activity_of(stems: list[str]) -> str | None:
    found = [
        activity
        for s in stems
        for prefix, activity in lx.ACTIVITIES.items()
        if s == prefix or (len(prefix) >= 4 and s.startswith(prefix))
    ]
    activity = next((a for a in found if a not in lx.GENERIC_ACTIVITIES), found[0] if found else None)
    return lx.ACTIVITY_ALIASES.get(activity, (activity,))[0] if activity else None


def _topic(stems: list[str], skip: frozenset[str]) -> str:
    """The first content stem that is not the key word itself: "deadline:thesis"."""
    for s in stems:
        if len(s) >= 3 and not s.isdigit() and s not in skip and not matches_any([s], lx.UPDATE_WORDS | lx.DAY_WORDS):
            if s not in lx.FIRST_PERSON and s not in {
                "my",
                "мой",
                "is",
                "to",
                "на",
                "по",
                "the",
                "моег",
                "мо",
                "also",
                "our",
                "got",
                "for",
                "of",
                "главн",
                "нужн",
            }:
                return s
    return "general"


def says_change(stems: list[str]) -> bool:
    return matches_any(stems, lx.UPDATE_WORDS)


# "с новым препаратом давление стало 125", "Отпуск на новой работе мне согласовали", "at the new job": the new thing
# named as known. Said when it came, such a statement may still replace what it was said with ("С новым ростером
# вышли на 650 кило в месяц"); read later, it is no news of the thing itself.
_THE_NEW_ONE = re.compile(
    r"(?i)\b(?P<before>(?:с|со|на|при)\s+(?:(?:сво|мо|наш)\w*\s+)?)нов(?:ой|ом|ым|ыми|ых)\b"
    r"|\b(?P<with>(?:with|at|on)\s+(?:my|our|the|his|her)\s+)new\b"
)


def stops_something(text: str) -> bool:
    """ "I no longer go bouldering", "quit the delivery gig", "бросила бокс": an end of something said before."""
    return bool(_STOPS.search(text))


@lru_cache(maxsize=8192)  # asked of every recalled memory, on every question
def replaces_explicitly(text: str) -> bool:
    """ "сменила мне препарат", "switched to espresso", "X instead": the statement says the old value is gone (a
    second allergy "появилась аллергия на морепродукты" adds one)."""
    return _says_replaced(set(words(text)), stems_of(text))


@lru_cache(maxsize=8192)  # asked of every recalled memory, on every question
def replaces_something(text: str) -> bool:
    """Whether a statement says something changed and replaces what was ("So pescatarian now", "Upgraded to a
    4090"), not only adds to it ("Now I also swim on Sundays")."""
    stems = stems_of(text)
    news = stems_of(_THE_NEW_ONE.sub(lambda m: m.group("before") or m.group("with"), text))
    if not (says_change(news) or matches_any(stems, lx.READ_CHANGE_WORDS)):
        return False
    # "Also the deadline got pushed to March 28": a connective opening the statement adds nothing to the subject
    tokens = set(words(OPENERS.sub("", text)))
    # "too" adds at a clause's end ("I swim on Sundays too"), not before an adjective ("the coach was too strict")
    tokens -= {"too"} if not _TOO_ADDS.search(text) else set()
    adds = bool(tokens & lx.ADDITION_WORDS) or "as well" in text.lower()
    return not adds or _says_replaced(tokens, stems)


_TOO_ADDS = re.compile(r"\btoo\b\s*(?:[,.!?;:—–-]|$)", re.IGNORECASE)


def _says_replaced(tokens: set[str], stems: list[str]) -> bool:
    return bool(tokens & lx.REPLACEMENT_WORDS) or matches_any(stems, lx.REPLACEMENT_STEMS)


def preference_key(stems: list[str]) -> str | None:
    """How the user wants answers: "answer in Russian" / "отвечай короче" / "I prefer short answers" /
    "примеры кода давай на Scala"."""
    if matches_any(stems, lx.CODE_WORDS) and matches_any(stems, lx.EXAMPLE_WORDS):
        return "answer.code"
    stems = stems + [part for s in stems if "-" in s for part in s.split("-") if part]  # "по-русски"
    about_answers = matches_any(stems, lx.ANSWER_WORDS)
    # beside lessons, only answering itself is a wish ("…Portuguese lessons…, a short paragraph to write" is none)
    if not about_answers or (matches_any(stems, lx.LESSON_WORDS) and not matches_any(stems, lx.ANSWERING_WORDS)):
        return None
    if matches_any(stems, lx.LANGUAGES) or matches_any(
        stems, frozenset({"русск", "russian", "english", "английск", "русски"})
    ):
        return "answer.language"
    return "answer.style"


def answer_axes(text: str) -> set[str]:
    """The sides of answering a wish is about ("Отвечай коротко, без эмодзи": length and emoji)."""
    stems = stems_of(text)
    return {axis for axis, words_ in lx.ANSWER_AXES.items() if matches_any(stems, words_)}


def likes(stems: list[str]) -> bool:
    return matches_any(
        stems, frozenset({"like", "love", "prefer", "hate", "enjoy", "нрав", "люб", "предпочит", "ненавиж"})
    )
