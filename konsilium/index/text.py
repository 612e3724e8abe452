"""Full-text analysis: the same tokenizer and stemmers for indexed chunks and for queries.

We stem ourselves (Snowball via PyStemmer, Russian for Cyrillic words, English for Latin ones) and hand
LanceDB a whitespace-separated string of stems, because its built-in analyzers stem one language per index
and our user's notes mix Russian prose with English technical terms.
"""

from __future__ import annotations

import re
from functools import lru_cache

import Stemmer

# Words: letters (any script) and digits, with inner hyphens/dots/underscores kept ("qwen3-30b", "rope_theta").
_WORD = re.compile(r"[^\W_]+(?:[-_.'’][^\W_]+)*", re.UNICODE)
_CYRILLIC = re.compile(r"[\u0400-\u04FF]")
_SPLIT_PARTS = re.compile(r"[-_.'’]")

_RU_STOP = set(
    """и в во не что он на я с со как а то все она так его но да ты к у же вы за бы по только ее мне было вот от
    меня еще нет о из ему теперь когда даже ну вдруг ли если уже или ни быть был него до вас нибудь опять уж вам
    ведь там потом себя ничего ей может они тут где есть надо ней для мы тебя их чем была сам чтоб без будто чего
    раз тоже себе под будет ж тогда кто этот того потому этого какой совсем ним здесь этом один почти мой тем чтобы
    нее сейчас были куда зачем всех никогда можно при наконец два об другой хоть после над больше тот через эти
    нас про всего них какая много разве три эту моя впрочем хорошо свою этой перед иногда лучше чуть том нельзя
    такой им более всегда конечно всю между это эта эти мою твой твоя твои свой свои своя
    другая другое другую другие других другого другим""".split()  # forms of "другой" (other), not "друг" (friend)
)
_EN_STOP = (
    set(
        """a an and are as at be but by for if in into is it no not of on or such that the their then there these they
    this to was will with what which who whom how do does did i you he she we me my your our its can could would
    should from than so about""".split()
    )
    | {  # contractions and their parts ("I'm in therapy" names therapy, not "i'm" or "m")
        f"{pronoun}{apostrophe}{rest}"
        for pronoun in ("i", "you", "we", "they", "he", "she", "it", "that")
        for apostrophe in ("'", "’")
        for rest in ("m", "ve", "ll", "d", "re", "s")
    }
    | {"m", "s", "t", "d", "ll", "ve", "re", "im", "ive"}
)
_EN_STOP |= {f"{verb}n{a}t" for verb in ("do", "does", "did", "is", "are", "was", "have") for a in ("'", "’")}
_EN_STOP |= {"don", "doesn", "didn", "isn", "aren", "wasn", "haven"}
# French function words, so that "mon poids" names weight; not those that are English words too ("son", "car", "ton",
# "ai").
_FR_STOP = set(
    """le la les un une des du de d l j je tu il elle nous vous ils elles mon ma mes ta tes sa ses notre nos votre vos
    leur leurs ce cet cette ces que qu qui quoi et ou où est sont suis es avons avez ont était été être avoir pour dans
    sur avec par pas ne n plus au aux en y très aussi mais donc c ça cela ceci comme chez j'ai c'est n'est qu'il
    qu'elle j'étais c'était""".split()
)
STOP_WORDS = _RU_STOP | _EN_STOP | _FR_STOP

_ru = Stemmer.Stemmer("russian")
_en = Stemmer.Stemmer("english")


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """Stem one lower-cased word with the stemmer of its script."""
    if _CYRILLIC.search(word):
        return _ru.stemWord(word)
    if word.isascii() and word.isalpha():
        return _en.stemWord(word)
    return word


def words(text: str) -> list[str]:
    # 'ё' folds to 'е' as Russian readers do; most texts write 'е' for both.
    return [m.group(0).lower().replace("ё", "е") for m in _WORD.finditer(text)]


def analyze(text: str) -> list[str]:
    """Stems of every content word; compound tokens also yield their parts ("qwen3-30b" → qwen3-30b, qwen3, 30b)."""
    out: list[str] = []
    for word in words(text):
        if word in STOP_WORDS:
            continue
        out.append(stem(word))
        if _SPLIT_PARTS.search(word):
            out.extend(stem(p) for p in _SPLIT_PARTS.split(word) if p and p not in STOP_WORDS)
    return out


_CYR_TO_LAT = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
        "a b v g d e e zh z i i k l m n o p r s t u f h s ch sh sch - i - e yu ya".split(),
        strict=True,
    )
)
_LATIN_RULES = [
    (re.compile(r"qu"), "kv"),
    (re.compile(r"ph"), "f"),
    (re.compile(r"th"), "t"),
    (re.compile(r"ck"), "k"),
    (re.compile(r"x"), "ks"),
    (re.compile(r"c(?=[eiy])"), "s"),
    (re.compile(r"[cq]"), "k"),
    (re.compile(r"w"), "v"),
    (re.compile(r"(?<=[bdfgklmnprstvz])yo"), "e"),  # Seryozha / Серёжа, Artyom / Артём: ё is read as е
    (re.compile(r"[yj]"), "i"),
]
_DOUBLE = re.compile(r"(.)\1+")
KEY_CHARS = 5


def sound_key(word: str) -> str | None:
    """A rough Latin spelling of a word's start, equal for many Russian loanwords and their English source.

    контекст/context → "konte", эксперт/expert → "ekspe", квантование/quantization → "kvant": this lets an
    English question find Russian notes (and back) without a translation model. None for short words.
    """
    if len(word) < 4 or not word.isalpha():
        return None
    if _CYRILLIC.search(word):
        latin = "".join(_CYR_TO_LAT.get(ch, ch) for ch in word).replace("-", "")
        script = "r"
    elif word.isascii():
        latin = word
        for pattern, replacement in _LATIN_RULES:
            latin = pattern.sub(replacement, latin)
        script = "l"
    else:
        return None
    latin = _DOUBLE.sub(r"\1", latin)
    if len(latin) < KEY_CHARS:
        return None
    return f"{script}_{latin[:KEY_CHARS]}"


def _cross_script(key: str) -> str:
    return ("l" if key[0] == "r" else "r") + key[1:]


def terms_string(text: str) -> str:
    """The string stored in the full-text column (whitespace tokenized by LanceDB): stems and sound keys."""
    found = words(text)
    keys = {k for w in found if w not in STOP_WORDS and (k := sound_key(w))}
    return " ".join(analyze(text) + sorted(keys))


def query_terms(text: str) -> str:
    """Stems of the query plus the sound keys its words would have in the other script."""
    keys = {_cross_script(k) for w in words(text) if w not in STOP_WORDS and (k := sound_key(w))}
    return " ".join(analyze(text) + sorted(keys))


_ASCII_LETTERS = bytes(range(65, 91)) + bytes(range(97, 123))
_CYRILLIC_LEAD_BYTES = (b"\xd0", b"\xd1", b"\xd2", b"\xd3")  # UTF-8 lead bytes of U+0400..U+04FF


def cyrillic_share(text: str) -> float:
    """Share of Cyrillic among Cyrillic and Latin letters, counted on UTF-8 bytes at C speed: this runs for
    every fused candidate (a regex over 120 chunks cost ~18 ms per query; this ~1 ms)."""
    data = text.encode("utf-8")
    cyrillic = sum(data.count(lead) for lead in _CYRILLIC_LEAD_BYTES)
    latin = len(data) - len(data.translate(None, _ASCII_LETTERS))
    total = cyrillic + latin
    return cyrillic / total if total else 0.0
