"""Russian morphology from OpenCorpora's dictionary (pymorphy3, installed with the package, read offline): whether
a word can be someone's first name in any case ("Рустама", "лизы", "Тимуру") or is a word of another kind that no
one is called ("Сегодня", "Взяли", "Купить"). The lexicon's list of names knows a few hundred; the dictionary
knows tens of thousands of words and their forms."""

from __future__ import annotations

import re
from functools import lru_cache

from . import lexicon as lx

_CYRILLIC_WORD = re.compile(r"^[а-яё-]+$", re.IGNORECASE)
_NAME_TAGS = frozenset({"Name"})  # not "Surn": "Горелов позвонил, сдачу перенесли" is still the user's deadline
NAME_SHARE = 0.5  # of the word's parses (weighted by pymorphy's scores): "Лизы" 0.8 a name, "Вера" 0.3 (faith)


@lru_cache(maxsize=1)
def _analyzer():
    import pymorphy3

    return pymorphy3.MorphAnalyzer()


@lru_cache(maxsize=65536)
def _parses(word: str) -> tuple:
    """The dictionary's readings of a Russian word; none for a word in another script."""
    return tuple(_analyzer().parse(word.lower())) if _CYRILLIC_WORD.match(word) else ()


def name_share(word: str) -> float:
    """How much of a Russian word's reading is a person's name (0 for any other word and any other script)."""
    return sum((p.score for p in _parses(word) if p.tag.grammemes & _NAME_TAGS and "sing" in p.tag), 0.0)


def given_name(word: str) -> bool:
    """A first name, in whatever case and however written: the lexicon's list, or mostly a name to the dictionary."""
    lowered = word.lower()
    return lowered in lx.GIVEN_NAMES or lowered.replace("ё", "е") in lx.GIVEN_NAMES or name_share(word) >= NAME_SHARE


def never_a_name(word: str) -> bool:
    """A Russian word the dictionary knows only as something no one is called: an adverb, a verb, a particle, an
    adjective, a place, a thing ("Сегодня мой др" is about the user; "Взяли ей свинку" is no one named Взяли)."""
    parses = _parses(word)
    if not parses or not all(p.is_known for p in parses) or any(p.tag.grammemes & _NAME_TAGS for p in parses):
        return False
    # a place or a thing is no one either: "А у меня квартира в Казани", "Вес 94 кг, она ругается"
    nouns = [p for p in parses if "NOUN" in p.tag]
    return not nouns or all("Geox" in p.tag or "inan" in p.tag for p in nouns)


def nominative(word: str) -> str:
    """A Russian first name in the nominative ("рустама" → "Рустам", "Тимуру" → "Тимур"); any other word as said:
    whose a memory is should not depend on the case the name was said in."""
    # (said where a name stands, a name however rare its reading: "У Кости др" is Kostya's, not the bones')
    names = [p for p in _parses(word) if p.tag.grammemes & _NAME_TAGS and "sing" in p.tag]
    if not names:
        return word
    best = max(names, key=lambda p: p.score)
    return best.normal_form[:1].upper() + best.normal_form[1:]


def nominative_noun(word: str) -> bool:
    """A Russian noun in the nominative: the subject ("Муж работает…"), not whom something is for ("Мужу
    подарила…")."""
    return any("NOUN" in p.tag and "nomn" in p.tag for p in _parses(word))


def may_be_subject(word: str) -> bool:
    """A name that can be the subject where it stands: any word but a Russian one the dictionary reads only in
    another case ("с Денисом", "Маше")."""
    if not _CYRILLIC_WORD.match(word):
        return True
    parses = _parses(word)
    return not all(p.is_known for p in parses) or any("nomn" in p.tag for p in parses)


def perfective_imperative(word: str) -> bool:
    """ "накидай", "напиши", "сделай": asks for one thing once ("пиши", "отвечай" ask for a habit; "давай
    поменяем" is no order)."""
    return any("VERB" in p.tag and "impr" in p.tag and "perf" in p.tag and "excl" in p.tag for p in _parses(word))


def third_person_present(word: str) -> bool:
    """ "Сидит", "работает": a verb whose subject is someone else (the past, "Уехала", may be the user's own)."""
    parses = _parses(word)
    return bool(parses) and all("VERB" in p.tag and "3per" in p.tag for p in parses)


def past_verb(word: str) -> bool:
    """ "ответил", "писала": a Russian verb in the past tense (what was done, not a wish)."""
    parses = _parses(word)
    return bool(parses) and all("VERB" in p.tag and "past" in p.tag for p in parses)


def common_noun(word: str) -> bool:
    """ "Пончик" (a doughnut, a pet's name), not "Казань" or an unknown word ("Мигалово"): every parse a known noun
    that names no place."""
    parses = _parses(word)
    return bool(parses) and all(p.is_known and "NOUN" in p.tag and "Geox" not in p.tag for p in parses)


def first_person_verb(word: str) -> bool:
    """ "Беру", "Покупаю": most likely a Russian verb in the first person singular (a rare name's case aside)."""
    parses = _parses(word)
    return sum(p.score for p in parses if "VERB" in p.tag and "1per" in p.tag) > 0.5


def first_person_plural(word: str) -> bool:
    """ "Откладываем", "копим": as likely a verb of "we" as anything else (a short participle ties with it)."""
    return sum(p.score for p in _parses(word) if "VERB" in p.tag and "1per" in p.tag and "plur" in p.tag) >= 0.5


def dative(word: str) -> bool:
    """ "брату", "сестре", "маме": a noun the dictionary reads as a dative (to whom)."""
    return any("NOUN" in p.tag and "datv" in p.tag for p in _parses(word))


def done_or_owned_by_speaker(word: str) -> bool:
    """ "купила", "беру", "подарю": a verb whose subject may be the user (the past, the first person), not
    "нравится", "исполняется"."""
    return any("VERB" in p.tag and ("past" in p.tag or "1per" in p.tag or "futr" in p.tag) for p in _parses(word))


def destination(word: str) -> bool:
    """ "дачу", "работу", "иртыш" after "на": a place one goes to (the accusative), not what one rides in ("Ниве",
    "автобусе": the prepositional)."""
    parses = _parses(word)
    cases = {case for p in parses for case in ("accs", "loct", "loc2") if case in p.tag}
    return "accs" in cases and not cases & {"loct", "loc2"}


def adverb(word: str) -> bool:
    """A Russian word the dictionary reads mostly as an adverb ("Обратно", "Вчера", "Потом")."""
    return sum(p.score for p in _parses(word) if p.is_known and "ADVB" in p.tag) >= ADVERB_SHARE


ADVERB_SHARE = 0.9  # "обратно" 0.96 (a short adjective too), "потом" 0.99


def infinitive(word: str) -> bool:
    """A Russian infinitive ("пить", "принимать", "сдать")."""
    return any(p.is_known and "INFN" in p.tag and p.score >= 0.5 for p in _parses(word))


def name_gender(word: str) -> str | None:
    """ "m" or "f" for a Russian first name ("Артём", "Алину"), None for any other word."""
    names = [p for p in _parses(word) if p.tag.grammemes & _NAME_TAGS]
    if not names:
        return None
    best = max(names, key=lambda p: p.score)
    return "m" if "masc" in best.tag else "f" if "femn" in best.tag else None
