"""Who a memory is about, comparable across languages and grammatical cases: "friend Dima", "Дима" and "друга
Димы" are one person; "сестра Ира" and "sister Ira" too. A person is a relation (in English) and a name (in Latin
letters); two people match on their names when both have one, else on their relations."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from . import lexicon as lx
from . import morph
from .records import UNKNOWN, USER

_TRANSLIT = lx.CYRILLIC_TO_LATIN
_RELATION_EN = {
    "сестра": "sister", "брат": "brother", "друг": "friend", "подруга": "friend", "жена": "wife", "муж": "husband",
    "мама": "mother", "мать": "mother", "mom": "mother", "mum": "mother", "папа": "father", "отец": "father",
    "dad": "father",
    "сын": "son", "дочь": "daughter", "начальник": "boss", "коллега": "colleague", "партнёр": "partner",
    "девушка": "girlfriend", "парень": "boyfriend", "сосед": "neighbor", "neighbour": "neighbor",
    "бабушка": "grandmother", "grandma": "grandmother", "дедушка": "grandfather", "grandpa": "grandfather",
    "тётя": "aunt", "дядя": "uncle", "тренер": "coach", "репетитор": "tutor", "ребёнок": "child", "kid": "child",
    "собака": "dog", "пёс": "dog", "щенок": "dog", "puppy": "dog", "кошка": "cat", "кот": "cat", "kitten": "cat",
    "питомец": "pet", "внук": "grandson", "внучка": "granddaughter", "бывший": "ex",
    "родители": "parents", "племянник": "nephew", "помощник": "assistant", "flatmate": "roommate",
    "housemate": "roommate",
}  # fmt: skip
_CYRILLIC = re.compile(r"[а-яё]")
CAPITALIZED_WORD = re.compile(r"\b[A-ZА-ЯЁ][a-zа-яё]+\b")  # a word that can be a name (also extract, decide)
WORD = re.compile(r"[a-zа-яё]+", re.IGNORECASE)  # a word in either script (also recall)
_POSSESSIVE = {
    "у",
    "of",
    "about",
    "для",
    "про",
    "my",
    "мой",
    "моя",
    "мое",
    "моё",
    "мои",
    "моего",
    "моей",
    "моему",
    "мою",
    "моим",
    "моих",
    "моими",
}
_NOT_NAMES = {"I", "My", "The", "What", "Where", "When", "How", "Who", "Which", "Is", "Are", "Do", "Does", "Did"}


@dataclass(frozen=True)
class Person:
    relation: str | None  # in English: "sister"
    name: str | None  # in Latin letters, lower case: "ira"

    def matches(self, other: Person) -> bool:
        if self.name and other.name:
            return same_name(self.name, other.name)
        return bool(self.relation and other.relation and self.relation == other.relation)


def person(about: str) -> Person | None:
    """The person a memory's `about` names (None: the user)."""
    if not about or about.casefold() == USER:
        return None
    relation, name = None, None
    for word in WORD.findall(about):
        found = _relation(word.lower())
        if found and relation is None:
            relation = found
        elif word[:1].isupper() or relation is not None and name is None:  # "roommate karl": a name written small
            name = latin(word)
    if relation is None and name is None:
        name = latin(about.split()[0])
    return Person(relation, name)


def mentioned(text: str) -> list[Person]:
    """The people a question names: relation words after a possessive ("моего друга", "my sister") and
    capitalized names after the first word."""
    tokens = [w.lower() for w in WORD.findall(text.replace("'s ", " "))]  # "my dog's name"
    relations = [_relation(word) for before, word in zip(["", *tokens], tokens, strict=False) if before in _POSSESSIVE]
    relation = next((r for r in relations if r), None)
    found = CAPITALIZED_WORD.finditer(text)
    names = [latin(m.group(0)) for m in found if m.start() > 0 and m.group(0) not in _NOT_NAMES]
    # "что любит собака лизы?": a name written small, in any case
    small = [w for w in WORD.findall(text) if w[:1].islower() and len(w) > 2 and morph.given_name(w)]
    names += [latin(morph.nominative(w)) for w in small]
    if names:
        return [Person(relation, name) for name in names]
    return [Person(relation, None)] if relation else []


def names_a_relation(text: str) -> bool:
    """Whether any word of `text` is a relation, with or without a possessive ("Где сейчас живёт свекровь?")."""
    return any(_relation(w.lower()) for w in WORD.findall(text))


_RELATION_THEN_WORD = re.compile(
    r"(?<![\w-])((?i:"
    + "|".join(sorted(lx.RELATIONS_EN, key=len, reverse=True))
    + r")|(?i:"
    + "|".join(sorted(lx.RELATIONS_RU, key=len, reverse=True))
    + r")[а-яё]*)\s+([A-Za-zА-ЯЁа-яё]+)"
)


def introduced(text: str) -> list[Person]:
    """The people a statement names with their relation to the user: "Мы с женой Олей переезжаем…" (wife Оля),
    "my teamlead marko", "I'm going with my brother Gleb"."""
    found = []
    for match in _RELATION_THEN_WORD.finditer(text):  # one regex pass: thousands of memories are read at once
        word, following = match.group(1), match.group(2)
        relation = _relation(word.lower())
        if relation and (following[:1].isupper() and following not in _NOT_NAMES or morph.given_name(following)):
            found.append(Person(relation, name_key(following)))
    return found


def relation_words(relations: set[str]) -> list[str]:
    """The full-text terms of relations given in English ("wife" → wife, жен): the lexicon's words and stems."""
    from ..index.text import stem

    english = [w for w in lx.RELATIONS_EN if _RELATION_EN.get(w, w) in relations]
    russian = [prefix for prefix, nominative in lx.RELATIONS_RU.items() if _RELATION_EN.get(nominative) in relations]
    return sorted({stem(w) for w in english} | set(russian) | {stem(n) for n in relations})


def name_key(word: str) -> str:
    """A name in any grammatical case as the start all its forms share, in Latin letters: Олей / Оля → "ol"."""
    from ..index.text import stem

    lowered = word.lower().replace("ё", "е")
    return latin(stem(lowered)) if _CYRILLIC.search(lowered) else lowered


def same_given_name(key: str, name: str) -> bool:
    """Whether `name` ("olya", from "Оля") is the person a `name_key` ("ol", from "с женой Олей") names."""
    return same_name(key, name) or len(key) >= 2 and name.startswith(key) and len(name) - len(key) <= 2


def same_person(a: str, b: str) -> bool:
    """Whether two `about` values name the same person (or both the user). "someone" (a pronoun nobody was
    named for) is no one in particular: never the same as another."""
    if UNKNOWN in (a, b):
        return False
    first, second = person(a), person(b)
    if first is None or second is None:
        return first is None and second is None
    return first.matches(second)


def _relation(word: str) -> str | None:
    if word in lx.RELATIONS_EN:
        return _RELATION_EN.get(word, word)
    for prefix, nominative in lx.RELATIONS_RU.items():
        if word.startswith(prefix):
            return _RELATION_EN.get(nominative, nominative)
    return None


def latin(word: str) -> str:
    return word.lower().translate(_TRANSLIT)


def same_name(a: str, b: str) -> bool:
    """Names in different cases share their stem: dima / dimy (Димы), alina / alinu; short names need two letters.
    Transliterations of ё and е differ: Artyom / Артём (artem)."""
    a, b = (_GLIDE.sub("", n.replace("yo", "e").replace("ye", "e")) for n in (a, b))
    shorter, longer = sorted((len(a), len(b)))
    if longer - shorter > MAX_ENDING:
        return False  # "Stas" is no "Starting": a case ending adds a few letters, not a word's worth
    return common_start(a, b) >= max(2, min(shorter - 1, 4)) if shorter > 2 else a == b


# "y" / "i" before a vowel inside a name is written either way: Yulia / Юля (yulya), Natalia / Наталья, Mariya
_GLIDE = re.compile(r"(?<=\w)[yi]+(?=[aeiou])")
MAX_ENDING = 3  # Стас → Стасом (+2), Стасику (+3); Alina → Alinoy


def common_start(a: str, b: str) -> int:
    """How many letters two words share from their start."""
    return len(os.path.commonprefix([a, b]))
