"""A correction of what the user has just said: "а не, сорян, не во вторник, в четверг. перепутал", "ой, простите,
перепутала — по четвергам, в 19:00", "oh wait scratch the £80, its more like £95 now", "sorry, I meant Thursday".

A correction names a new value of one kind (a weekday, a time of day, an amount, a date) and either the old value
("не во вторник", "scratch the £80", "not Tuesday") or a word that says the last thing was wrong ("перепутала",
"I meant", "точнее"). The statement it corrects is the last one said with a value of that kind (the old value where
it is named); it is said again with the new value. Without a statement to correct, the sentence is read as any other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DAYS = (
    ("понедельник", "monday", "mon"),
    ("вторник", "tuesday", "tue", "tues"),
    ("сред", "wednesday", "wed", "weds"),
    ("четверг", "thursday", "thu", "thur", "thurs"),
    ("пятниц", "friday", "fri"),
    ("суббот", "saturday", "sat"),
    ("воскресень", "sunday", "sun"),
)
_DAY_WORD = (
    r"понедельник\w*|вторник\w*|сред[аеуы]\w*|четверг\w*|пятниц\w*|суббот\w*|воскресень\w*"
    r"|mondays?|tuesdays?|wednesdays?|weds|thursdays?|thurs|fridays?|saturdays?|sundays?"
)
_MONTH_WORD = (
    r"январ\w*|феврал\w*|март\w*|апрел\w*|ма[яйе]|июн\w*|июл\w*|август\w*|сентябр\w*|октябр\w*|ноябр\w*|декабр\w*"
    r"|jan(?:uary)?|feb(?:ruary)?|march|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|oct(?:ober)?"
    r"|nov(?:ember)?|dec(?:ember)?"
)
_UNIT = r"тыс\w*|руб\w*|₽|евро|€|\$|£|mg|мг|mcg|мкг|ме|iu|kg|кг|lbs?|ml|мл|km|км|%|k|к|pounds?|quid|dollars?|euros?"
_NUMBER = r"(?:\d{1,3}(?:[\s,.]\d{3})+|\d+(?:[.,]\d+)?)"  # "3 600", "1,350", "12.5"
_PREPOSITION = r"(?:(?:в|во|по|на|к|до|с|со|on|at|by|every|from|to|till|until)\s+)"
# Each kind of value with what may stand before it ("во вторник", "по четвергам", "at 5.15").
_VALUES = {
    "day": re.compile(rf"(?i)(?<!\w){_PREPOSITION}?(?P<value>{_DAY_WORD})(?!\w)"),
    "date": re.compile(
        rf"(?i)(?<!\w){_PREPOSITION}?(?P<value>\d{{1,2}}(?:st|nd|rd|th|-?го|-?е)?\s+(?:of\s+)?(?:{_MONTH_WORD})"
        rf"|(?:{_MONTH_WORD})\s+\d{{1,2}}(?:st|nd|rd|th)?)(?!\w)"
    ),
    "time": re.compile(
        rf"(?i)(?<![\w.,]){_PREPOSITION}?(?P<value>\d{{1,2}}[:.]\d{{2}})(?![\w.,]?\d)(?!\s*(?:{_UNIT}))"
    ),
    "amount": re.compile(rf"(?i)(?<![\w.,])(?P<value>[£$€]\s?{_NUMBER}|{_NUMBER}(?:\s?(?:{_UNIT}))?)(?!\w)"),
}
_DAY_NAMES = [set(names) for names in _DAYS]
# A word that says what was just said was wrong: a new value after it corrects the last one of its kind.
_MISTAKE = re.compile(
    r"(?i)(?<!\w)(?:перепутал\w*|ошибл\w*|опечатал\w*|оговорил\w*|поправ(?:ка|люсь)|точнее|вернее|"
    r"i\s+meant?|i\s+got\s+(?:it|that)\s+wrong|correction|scratch\s+that|make\s+(?:that|it)|or\s+rather|"
    r"my\s+bad|typo|(?:а|ой|oh|no|wait),?\s+(?:нет|no|wait))(?!\w)"
)
# The old value named: "не во вторник", "not Tuesday", "scratch the £80", "instead of 2000" (its value follows).
_OLD_BEFORE = re.compile(r"(?i)(?:(?<!\w)(?:не|not|isn'?t|wasn'?t|scratch(?:\s+the)?|instead\s+of)\s+)$")
_CHUNK = re.compile(r"\s*(?:[,;]|\s[—–-]\s|\.\.\.|…)\s*")
MAX_WORDS_AROUND = 3  # a value said after a mistake word stands (nearly) alone in its part of the sentence


@dataclass(frozen=True)
class Value:
    kind: str
    phrase: str  # as said, with the preposition before it: "по четвергам", "£95"
    value: str  # the value itself: "четвергам"
    start: int
    end: int

    def same_as(self, other: Value) -> bool:
        return self.kind == other.kind and _identity(self) == _identity(other)


@dataclass(frozen=True)
class Correction:
    new: tuple[Value, ...]
    old: Value | None  # the old value named in the sentence, if it is
    rest: str  # what the sentence says after the correction, read as any other sentence


def correction(sentence: str) -> Correction | None:
    """The correction `sentence` makes, or None where it makes none."""
    values = _values(sentence)
    for i, value in enumerate(values):
        if _OLD_BEFORE.search(sentence[: value.start]):
            new = next((v for v in values[i + 1 :] if v.kind == value.kind and not v.same_as(value)), None)
            if new is not None:
                return Correction((new,), value, _rest(sentence, new.end))
    mistake = _MISTAKE.search(sentence)
    if mistake is None:
        return None
    new, end = [], mistake.end()
    for chunk in _chunks(sentence, mistake.end()):
        found = [v for v in values if chunk[0] <= v.start and v.end <= chunk[1]]
        around = len(re.findall(r"\w+", sentence[chunk[0] : chunk[1]])) - sum(len(v.phrase.split()) for v in found)
        if not found or around > MAX_WORDS_AROUND:
            break
        new += found
        end = chunk[1]
    return Correction(tuple(new), None, _rest(sentence, end)) if new else None


def corrected(text: str, fix: Correction) -> str | None:
    """`text` with the values `fix` corrects replaced by the new ones; None where `text` has none of them."""
    values = _values(text)
    replacements = []
    for new in fix.new:
        if fix.old is not None:
            old = next((v for v in values if v.same_as(fix.old)), None)
        else:  # the first of its kind (an amount: in its unit, or any unit for a bare number), unless the same
            old = next((v for v in values if v.kind == new.kind and (_unit(v) == _unit(new) or not _unit(new))), None)
            old = None if old is None or old.same_as(new) else old
        if old is not None:
            replacements.append((old, new))
    if not replacements:
        return None
    out = text
    for old, new in sorted(replacements, key=lambda pair: -pair[0].start):
        out = out[: old.start] + _said_in_place_of(old, new) + out[old.end :]
    return out


def _said_in_place_of(old: Value, new: Value) -> str:
    """The new value as said, keeping the old one's preposition when the new one comes without ("во вторник" →
    "в четверг", not "четверг"), and its unit ("за 140 тыс" corrected by "за 120": "за 120 тыс")."""
    if new.kind == "amount" and not _unit(new) and _unit(old):
        number = _NUMBER_IN.search(old.phrase)
        return old.phrase[: number.start()] + _NUMBER_IN.search(new.value).group(0) + old.phrase[number.end() :]
    if new.phrase != new.value or old.phrase == old.value:
        return new.phrase
    preposition = old.phrase[: len(old.phrase) - len(old.value)]
    if preposition.strip().lower() == "во" and not new.value.lower().startswith(("в", "ф")):
        preposition = preposition.replace("о", "", 1).replace("О", "", 1)
    return preposition + new.value


def _values(text: str) -> list[Value]:
    """The values in `text`, in order; a date's day is no amount, a time is none."""
    found: list[Value] = []
    for kind, pattern in _VALUES.items():  # dict order: a day or date first, then times, then amounts
        for match in pattern.finditer(text):
            start, end = match.span()
            if any(start < v.end and v.start < end for v in found):
                continue
            start += len(text[start:end]) - len(text[start:end].lstrip())
            found.append(Value(kind, text[start:end].strip(), match.group("value").strip(), start, end))
    return sorted(found, key=lambda v: v.start)


def _identity(value: Value) -> str:
    text = value.value.lower()
    if value.kind == "day":
        return str(next(i for i, names in enumerate(_DAY_NAMES) if any(text.startswith(n) for n in names)))
    if value.kind == "amount":  # the number alone: "2000" is the old "2000 ме"
        return re.sub(r"[\s,.]", "", re.search(r"\d[\d\s,.]*", text).group(0).strip())
    return re.sub(r"\s+", " ", text)


_NUMBER_IN = re.compile(_NUMBER)


def _unit(value: Value) -> str:
    """An amount's unit or currency ("£", "мг"; "" for a bare number); other kinds have none."""
    if value.kind != "amount":
        return ""
    text = value.value.lower()
    return text[0] if text[0] in "£$€" else re.sub(r"^[\d\s,.]+", "", text)


def _chunks(sentence: str, start: int):
    """The parts of `sentence` after `start`, split at commas and dashes: (start, end) of each."""
    position = start
    for separator in _CHUNK.finditer(sentence, start):
        if separator.start() > position:
            yield position, separator.start()
        position = separator.end()
    if position < len(sentence):
        yield position, len(sentence)


def _rest(sentence: str, end: int) -> str:
    """What follows the correction in its sentence, from the next part on ("…, абонемент стоит 3 600 руб")."""
    separator = _CHUNK.search(sentence, end)
    return sentence[separator.end() :].strip() if separator else ""
