"""Which operation each extracted statement becomes (the deterministic half of mem0's update step).

A statement about the same person as a current memory:
- says the same thing again (same content words, or a near-identical vector) → NOOP on the old one;
- has the same exclusive subject key (name, job, city, laptop RAM, lesson day…) → UPDATE: it supersedes it;
- says something changed ("moved", "теперь", "upgraded") and means nearly the same → UPDATE of the closest;
- otherwise → ADD.
Statements about different people never touch each other's memories. A forget request deletes the current
memories it names (stems or meaning, in either language) and the older versions they superseded.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..index.text import analyze, sound_key, words
from . import glossary
from .people import CAPITALIZED_WORD, common_start
from .people import same_person as is_same_person
from .records import UNKNOWN, USER, Memory, Operation, fingerprint, key_family, new_memory_id
from .subjects import answer_axes, replaces_explicitly, stops_something, subject_key

DUPLICATE_COSINE = 0.9  # USE-m3: a rephrasing of the same sentence scores 0.85-0.95, a different fact < 0.7
CHANGE_COSINE = 0.42  # "Tutor sessions moved to Fridays" vs "занимаюсь по вторникам с репетитором": 0.40
FAMILY_CHANGE_COSINE = 0.25  # the same kind of subject (two deadlines) needs less evidence that it is the same one
# Keys whose suffix is a topic word in the user's language ("deadline:thesi" / "deadline:диплом"): the same subject
# said in two languages has two keys, so a change is matched within the family by meaning.
TOPIC_KEYS = ("deadline:",)
ROLE_KEYS = ("job",)  # "job" (what he says of his work) and "job.role" (who he is there): a change replaces either
UNKEYED_OVER_KEYED = 0.6
NAME_ONLY_CHANGE_COSINE = 0.6  # USE-m3 gives two unrelated sentences with one shared name ~0.4
NAMED_CHANGE_COSINE = 0.15  # a change that names the same rare word as an older memory needs little meaning overlap
DISTINCTIVE_LENGTH = 5
SOUND_PREFIX = "~"  # a capitalized word's sound key among the distinctive stems
FORGET_SCORE = 0.45  # cosine + stem overlap of a forget request with the memory it names
FORGET_MARGIN = 0.15  # memories scoring this close to the best one are forgotten with it
FORGET_KEY_BONUS = 0.3
FORGET_OTHERS_PENALTY = 0.3  # someone else's memory, for a request that names no one
FORGET_PERSON_BONUS = 0.2  # a memory naming the person the request names (less than a subject key: a name alone)
# A memory holding only some of the request's words and far from it in meaning: those words count this much.
FORGET_PARTIAL_COSINE = 0.25
FORGET_PARTIAL_WEIGHT = 0.4
FORGET_TRANSLATED_ONLY_WEIGHT = 0.5  # someone else's memory naming the request's concept only in other words
FORGET_BESIDE_COSINE = 0.3  # the sentence beside a forgotten one, this close to it, went on about it
FORGET_PRONOUN_COSINE = 0.15  # ... or a pronoun's sentence right after it, this close to it
FORGET_CONTEXT_COSINE = 0.3  # ... or a fragment beside it this close to the request, as said in its context
FORGET_COSINE = 0.25  # the closest memory in meaning is forgotten when it is this close ...
FORGET_COSINE_LEAD = 0.12  # ... and clearly closer than any other
# A request's word inside a memory's (терапии / психотерапевту) or one stem a letter or two longer (пятничные /
# пятницам) names it too, where the memory is this close in meaning at all.
LOOSE_MATCH_COSINE = 0.2
LOOSE_PART = 5
SOUND_WEIGHT = 0.5  # a shared word start across scripts is weaker evidence than a shared stem ("stomach"/"стоматолог")
# The core profile pins itself: who the user is and how he wants answers go into every prompt.
AUTO_PINNED_KEYS = ("name", "answer.language", "answer.style", "answer.code")


@dataclass(frozen=True)
class Said:
    """One extracted statement, embedded, with when and where it was said."""

    statement: object  # extract.Statement
    vector: np.ndarray | None
    time: float
    exchange_id: str | None
    origin: str = "rules"
    search_vector: np.ndarray | None = None  # see Memory.search_vector


def decide(said: Said, current: list[Memory], exclusive) -> Operation:
    """The operation for one statement against the current memories (`exclusive(key)`: one value at a time)."""
    operation = _decide(said, current, exclusive)
    if operation.event == "UPDATE" and operation.memory is not None:
        old = next((m for m in current if m.id == operation.target), None)
        if old is not None and _fuller_name(old.about, operation.memory.about):
            # "Ellie's moving to Edinburgh" replaces "My sister Ellie … in Glasgow": she stays "sister Ellie"
            operation.memory.about = old.about
    return operation


def _fuller_name(old: str, new: str) -> bool:
    """Whether `old` names the same person as `new` and says more: "husband Timur" for "Тимур"."""
    from .people import person

    before, after = person(old), person(new)
    return (
        before is not None
        and after is not None
        and is_same_person(old, new)
        and bool(before.relation)
        and not after.relation
    )


def _decide(said: Said, current: list[Memory], exclusive) -> Operation:
    statement = said.statement
    memory = Memory(
        id=new_memory_id(),
        text=statement.text,
        about=statement.about,
        kind=statement.kind,
        key=statement.key,
        origin=said.origin,
        created=said.time,
        updated=said.time,
        exchange_id=said.exchange_id,
        vector=said.vector,
        search_vector=said.search_vector,
        pinned=statement.about == USER and statement.key in AUTO_PINNED_KEYS,
    )
    same_person = [m for m in current if is_same_person(m.about, statement.about)]
    print_ = fingerprint(statement.text, statement.about)
    for old in same_person:
        if old.fingerprint == print_:
            return Operation("NOOP", target=old.id, reason="said again")
    if statement.corrects:  # "а не, не во вторник, в четверг": the memory just said, said again right
        wrong = fingerprint(statement.corrects, statement.about)
        # (whoever it is about, even no one known: the very words just said are corrected)
        target = next(
            (old for old in reversed(current) if old.fingerprint == wrong and old.about == statement.about), None
        )
        if target is not None:
            memory.pinned = target.pinned
            return Operation("UPDATE", memory, target=target.id, reason="corrected")
    scored = sorted(((_cosine(said.vector, old.vector), old) for old in same_person), key=lambda p: -p[0])
    if scored and scored[0][0] >= DUPLICATE_COSINE:
        return Operation("NOOP", target=scored[0][1].id, reason=f"same meaning (cosine {scored[0][0]:.2f})")
    # what one message says is all true at once: "брат Глеб летает пилотом в S7, у него вечно графики" is two
    # facts, the second no change of the first
    scored = [(cosine, old) for cosine, old in scored if not said.exchange_id or old.exchange_id != said.exchange_id]
    if (
        statement.key
        and exclusive(statement.key)
        and (statement.key.startswith(("answer.", "name", "age")) or names_a_value(statement.text, statement.key))
    ):
        same_key = [old for _, old in scored if old.key == statement.key]
        if same_key:
            newest = max(same_key, key=lambda m: m.created)
            if statement.key == "name" and _names_again(statement.text, newest.text):
                return Operation("NOOP", target=newest.id, reason="the same name again")
            memory.pinned = memory.pinned or newest.pinned  # a pinned fact stays pinned in its new version
            # "…машина не заводится. Skoda Octavia 2017, 1.4 TSI": one car said in two sentences; a new car
            # replaces both (not one that names someone: "my partner Marta are moving to Lisbon, she got offered a
            # job…" says more than the move)
            also = tuple(
                m.id
                for m in same_key
                if m is not newest
                and m.exchange_id
                and m.exchange_id == newest.exchange_id
                and not _names_a_person(m.text)
            )
            return Operation("UPDATE", memory, target=newest.id, reason=f"same subject ({statement.key})", also=also)
    if statement.key and statement.key.startswith("answer.") and statement.about == USER:
        # "давай поменяем: разворачивай подробно" replaces "отвечай коротко"; "без эмодзи" leaves it

        axes = answer_axes(statement.text)
        wishes = [
            old for _, old in scored if old.key and old.key.startswith("answer.") and answer_axes(old.text) & axes
        ]
        if axes and wishes:
            newest = max(wishes, key=lambda m: m.created)
            memory.pinned = memory.pinned or newest.pinned
            return Operation("UPDATE", memory, target=newest.id, reason=f"new wish ({', '.join(sorted(axes))})")
    if statement.update and statement.key and statement.key.startswith(ROLE_KEYS) and names_a_value(statement.text):
        # "Уволился — с понедельника я шеф в бистро" replaces "Работаю су-шефом в «Ложке»" and "Работаю в «Ложке»";
        # a change naming no new place or role replaces nothing ("Easier with the new job" is no job of its own)
        family = [old for _, old in scored if old.key and old.key.startswith(ROLE_KEYS)]
        if family:
            newest = max(family, key=lambda m: m.created)
            return Operation("UPDATE", memory, target=newest.id, reason=f"changed job ({newest.key})")
    family = key_family(statement.key) if statement.key and statement.key.startswith(TOPIC_KEYS) else None
    kin = [(cosine, old) for cosine, old in scored if family and key_family(old.key) == family]
    if statement.update and kin and kin[0][0] >= FAMILY_CHANGE_COSINE:
        # "the library deadline got pushed" vs "сдать нужно до 15 октября": both deadlines, topics in two languages
        cosine, closest = kin[0]
        memory.pinned = memory.pinned or closest.pinned
        return Operation("UPDATE", memory, target=closest.id, reason=f"changed {family} (cosine {cosine:.2f})")
    people = _people_names(current) if statement.update else set()
    if statement.key is None and (statement.about == USER or not _news_with_a_value(statement.text)):
        # A statement with no subject key replaces a keyed one (a job, a city) only when it says nearly the same:
        # "На новой работе решили собирать дизайн-систему в Figma" changes no job, nor "Tomasz has turned the box
        # room into a studio now" his ("Tomasz is a freelance sound engineer"); someone's news naming a value or an
        # end may ("Лёша свой сервер продал, теперь арендует H100", "Dad retired").
        scored = [(c, old) for c, old in scored if not (old.key and exclusive(old.key)) or c >= UNKEYED_OVER_KEYED]
    changed = (
        [
            (cosine, old)
            for cosine, old in scored
            if cosine >= CHANGE_COSINE
            and not _two_subjects(statement.key, old.key)
            and cosine >= _change_threshold(statement, old.text, people)
            and not _loses_a_value(statement.text, old.text)
        ]  # the cheap test first: the words of thousands of memories are read only for the few close ones
        if statement.update
        else []
    )
    if changed:
        cosine, closest = changed[0]
        memory.pinned = memory.pinned or closest.pinned
        return Operation("UPDATE", memory, target=closest.id, reason=f"changed (cosine {cosine:.2f})")
    # A keyed statement changes what has its key, no more; a to-do changes nothing it names ("теперь надо написать
    # Тамуне про график" is no new "основной клиент — Mela Books, там редакторка Тамуна").
    if statement.update and statement.key is None and not _A_TODO.search(statement.text):
        # "Виолончель теперь по четвергам" vs "по вторникам у меня виолончель…": the thing that changed is named
        # in both (a rare word), while the sentences are too different for their cosine alone.
        named = _distinctive(statement.text)
        for cosine, old in scored:  # best first
            # (not where the older says what the newer leaves out: "Бублик ревнует: … спит теперь на моей сумке"
            # is news of the cat, not a new "у нас кот, Бублик, британец, 4 года")
            if old.key in AUTO_PINNED_KEYS or cosine < NAMED_CHANGE_COSINE or _only_news(statement.text, old.text):
                continue
            shared = _things(named & _distinctive(old.text), people)
            if shared:
                memory.pinned = memory.pinned or old.pinned
                reason = f"changed {', '.join(sorted(shared))} (cosine {cosine:.2f})"
                return Operation("UPDATE", memory, target=old.id, reason=reason)
    return Operation("ADD", memory, reason=f"new ({statement.kind})")


_A_TODO = re.compile(r"(?i)\b(?:надо|нужно|need\s+to|have\s+to|gotta)\s+(?:[\w-]+\s+)?[\w-]+")
_NAMED_VALUE = r"\d|[«\"“]|(?<=[\w,;:—–-]\s)[A-ZА-ЯЁ]|(?<=[а-яё]\s)[a-z]{2,}"  # a number, a quote, a name
_VALUE = re.compile(
    _NAMED_VALUE
    + r"|\b(?i:в|во|на|at|in|to|for)\s+(?:(?i:an?|the)\s+)?[а-яёa-z]{4,}",  # "работаю в банке", "at a bakery"
)


def names_a_value(text: str, key: str | None = None) -> bool:
    """Whether a statement gives its subject a value to replace the old one with: a number, a name or brand
    ("Haval Jolion", «Торрефакто»), a word in the other script, a place ("в банке"); "Новая машина отлично едет"
    and "Хочу ей поднять зарплату" give none, and replace no car and no salary. A thing one owns is named, not
    placed: "И раз машина теперь во дворе ночует" names no new car."""
    if key is not None and key.startswith(THING_KEYS):
        return _names_the_thing(text, key)
    return bool(_VALUE.search(text))


THING_VALUE_WORDS = 4  # a thing's model is said this close to the word for it ("телефон тупит, редми 10 у меня")


def _names_the_thing(text: str, key: str) -> bool:
    """A number, a quote or a brand next to the word for the thing: "Сфотографировала на новый телефон, отправила
    Соне с подписью Peonies in my garden" names no phone (a person's name is no model, and the words are far)."""
    from .lexicon import concept_words
    from .morph import given_name
    from .subjects import matches_any

    spans = [m.span() for m in re.finditer(r"[\w+-]+", text)]
    at_thing = [i for i, (a, b) in enumerate(spans) if matches_any(analyze(text[a:b]), concept_words(key))]
    values = []
    for match in _A_VALUE.finditer(text):
        where = next((i for i, (a, b) in enumerate(spans) if a <= match.start() < b), None)
        if where is not None and not (text[spans[where][0]].isupper() and given_name(text[slice(*spans[where])])):
            values.append(where)
    if not at_thing:  # named by its brand alone ("Вчера взяла самсунг а34")
        return bool(values)
    return any(abs(v - t) <= THING_VALUE_WORDS for v in values for t in at_thing)


def _two_subjects(new_key: str | None, old_key: str | None) -> bool:
    """Keys the extractor told apart: "Теперь получаю 33 600" (salary) is no news of "Теперь вешу 88 кг" (weight)."""
    return bool(new_key and old_key) and key_family(new_key) != key_family(old_key)


def _loses_a_value(newer: str, older: str) -> bool:
    """ "Also sold my old boxer-engine wagon" names nothing that could replace "теперь жарим на Giesen W6": a
    change that names no value (a number, a quote, a name) leaves an older statement that names one."""
    # (an end needs none: "Also quit the delivery gig" ends "Подрабатываю курьером по выходным")
    return bool(_A_VALUE.search(older)) and not _A_VALUE.search(newer) and not stops_something(newer)


def _news_with_a_value(text: str) -> bool:
    return bool(_VALUE.search(text)) or stops_something(text) or bool(_LEFT_WORK.search(text))


_LEFT_WORK = re.compile(r"(?i)\b(?:retired|вы(?:шел|шла|шли)\s+на\s+пенси\w*|уволил(?:ся|ась|ись))\b")


def _only_news(newer: str, older: str) -> bool:
    """A change of a named thing that names no value, no day and no "instead" is news of it, not a new version of
    what was said of it: "Бублик ревнует: … спит теперь на моей сумке" leaves "у нас кот, Бублик, британец, 4 года";
    "Соня теперь ходит на балет по субботам, а не по средам" replaces "she goes to ballet on Wednesdays"."""
    # (the name of whom the older is about is no value the newer loses: "My husband Timur is a sound engineer" /
    # "Тимур теперь звукорежиссёр в оперном театре")
    older = " ".join(w for w in older.split() if not _a_given_name(w.strip(",.:;!?'’s")))
    return _loses_a_value(newer, older) and not _A_DAY.search(newer) and not replaces_explicitly(newer)


def _a_given_name(word: str) -> bool:
    """A capitalized first name in any case ("Соней", "Timur")."""
    from .morph import given_name, nominative

    return bool(word) and word[:1].isupper() and given_name(nominative(word))


_A_DAY = re.compile(
    r"(?i)\b(?:понедельник|вторник|сред[аеуы]|средам|четверг|пятниц|суббот|воскресень|monday|tuesday|wednesday|"
    r"thursday|friday|saturday|sunday|weekend|выходн)"
)
THING_KEYS = ("car", "bike", "phone", "laptop", "computer", "gpu")
_A_VALUE = re.compile(_NAMED_VALUE)  # a number, a quote, a name: no place (a thing one owns is named, not placed)


def _names_again(new: str, old: str) -> bool:
    """ "Геннадий на связи" after "Меня зовут Геннадий Петрович": the name said again, shorter, is no new name."""
    names = set(CAPITALIZED_WORD.findall(new))
    return bool(names) and names <= set(CAPITALIZED_WORD.findall(old))


def _change_threshold(statement, old: str, people: set[str]) -> float:
    """How close a change must be in meaning to replace `old`. Two of the user's sentences naming the same person
    and nothing else in common are close only through the name ("Jonno's on nights now" / "my crewmate Jonno games
    on a Steam Deck")."""
    shared = _distinctive(statement.text) & _distinctive(old)
    if shared and not _things(shared, people):
        # about someone else too: "Katya's cat Pushok is less impressed" changes nothing of "Katya's birthday is 9
        # November" (a wrongly replaced fact is lost; a missed change still loses to the newer one when recalled)
        return NAME_ONLY_CHANGE_COSINE
    return CHANGE_COSINE


def _people_names(current: list[Memory]) -> set[str]:
    """The names (in Latin letters) of the people the memories are about: "crewmate Jonno" → "jonno"."""
    from .people import person

    return {found.name for m in current if m.about != USER and (found := person(m.about)) and found.name}


def _things(terms: set[str], people: set[str]) -> set[str]:
    """`terms` without the names of known people (matched across scripts and grammatical cases)."""
    from .people import latin, same_name

    return {t for t in terms if not any(same_name(latin(t.removeprefix(SOUND_PREFIX)), name) for name in people)}


@lru_cache(maxsize=20_000)
def _distinctive(text: str) -> frozenset[str]:
    """The stems that name a thing rather than a change or a time: long, and not an update, day or common word."""
    from . import lexicon as lx

    def names_a_thing(term: str) -> bool:
        return (
            len(term) >= DISTINCTIVE_LENGTH
            and not term.isdigit()
            and term not in lx.COMMON_STEMS
            and not any(term.startswith(w) or w.startswith(term) for w in lx.UPDATE_WORDS | lx.DAY_WORDS if len(w) >= 4)
        )

    stems = {term for term in analyze(text) if names_a_thing(term)}
    # Words as they sound, so that "Вольво" / "Volvo" and "мастер-класс" / "master class" are one word.
    sounds = {
        SOUND_PREFIX + key[2:]
        for word in words(text)
        for part in word.split("'")[0].split("-")  # "Leyla's" sounds like "Лейлы"
        if (key := sound_key(part)) and any(names_a_thing(term) for term in analyze(part))
    }
    return frozenset(stems | sounds)


def _a_change_word(term: str) -> bool:
    """A word of change in the glossary ("переезд", "move"); not "new" or "now" ("на новом месте" is a place), nor
    a verb that is the subject itself ("сколько я получаю": earnings)."""
    return bool(glossary.naming({term}).keys() & glossary.changes())


@lru_cache(maxsize=1)
def _question_stems() -> frozenset[str]:
    """ "забудь, сколько я вешу": the question word names nothing the memory ("вешу 78 кг") must hold."""
    return frozenset(
        analyze(
            "сколько где как когда какой какая какие куда откуда what where when how much many which"
            # ... nor the pronouns of a relative clause: "деньги, которые я кому-то должна была" names the debt
            " который которые которую кому-то кто-то что-то кому кого кем чем была был были someone somebody whom"
        )
    )


def told_in(targets: list[tuple[float, Memory]], month: int | None) -> list[tuple[float, Memory]]:
    """Of the memories a forget request names, those said in the month it names, where any were ("the interview
    thing I mentioned back in March" is not the interview of May); all of them where none were."""
    if month is None:
        return targets
    then = [(score, m) for score, m in targets if time.gmtime(m.created).tm_mon == month]
    return then or targets


def forget_targets(query: str, vector: np.ndarray | None, current: list[Memory]) -> list[tuple[float, Memory]]:
    """The current memories a forget request names, best first: meaning (cosine), shared stems (a person's name
    only when nothing else is named: "про Нику забудь"), the same subject key ("forget that I run on weekends"
    names "Теперь бегаю по выходным": schedule:training), and whose it is (a request naming nobody forgets the
    user's own memories: "forget my stomach stuff" is not "Лейла — стоматолог")."""
    from .morph import never_a_name
    from .people import latin, mentioned, same_name

    query = _without_pointers(query)
    people = _people_names(current)
    stems, key = set(analyze(query)) - _question_stems(), subject_key(query)
    # a word that is never a name is a thing, whatever name it starts like ("те деньги" is not Денис)
    common = {t for w in words(query) if never_a_name(w) for t in analyze(w)}
    things = _things(stems - common, people) | (stems & common)
    # a name the stemmer cut short ("Дая" → "да") is still the known person's ("Dai")
    query_names = {p.name for p in mentioned(query) if p.name and any(same_name(p.name, n) for n in people)}
    things = {t for t in things if not any(name.startswith(latin(t)) for name in query_names)}
    wanted = things or stems
    # "переезд на юг" names the move south, not every move said ("Гоша переехал в Питер"): a word of change counts
    # only when the request names nothing else
    wanted = {t for t in wanted if not _a_change_word(t)} or wanted
    named = frozenset(_things(set(_distinctive(query)), people)) or _distinctive(query)
    # "забудь про мой долг карлу" names Karl: "I owe karl 90€" is about the debt and names him
    named_people = {latin(t) for t in stems - things} | query_names
    about_others = bool(mentioned(query)) or bool(named_people)
    # "мой вид на жительство" names "my residence permit renewal"; "the ink thing", "a wolf tattoo"
    asked_concepts = glossary.naming(wanted)
    translations = glossary.equivalents(wanted) if asked_concepts else set()
    # the request names the subject and nothing more ("мой вес", "my job"): every memory of that subject is it
    names_only_the_key = key is not None and all(
        subject_key(w) == key for w in words(query) if set(analyze(w)) & wanted
    )
    scored, cosines, whole, matched_of = [], [], set(), {}

    def names_whose(memory: Memory) -> bool:
        """The request names whom the memory is about in other words ("my ex" / "бывший Дима")."""
        return bool(asked_concepts.keys() & glossary.concepts(set(analyze(memory.about))))

    for memory in current:
        have = set(analyze(memory.text))
        cosine = _cosine(vector, memory.vector)
        matched = wanted & have
        if cosine >= LOOSE_MATCH_COSINE and len(matched) < len(wanted):  # the costlier test for the close few
            matched |= {t for t in wanted - matched if any(_same_word(t, h) for h in have)}
        if translations & have:  # the words that name a concept the memory names in other words
            for concept in asked_concepts.keys() & glossary.concepts(have):
                matched |= asked_concepts[concept]
        matched_of[memory.id] = matched
        overlap = len(matched) / len(wanted) if wanted else 0.0
        names_them = named_people and any(
            same_name(latin(w), n) for w in words(f"{memory.about} {memory.text}") for n in named_people
        )
        # someone else's memory, not of whom the request names, that holds none of its words, only its concept in
        # other words, is named by it less: "ту историю с деньгами (и Марко)" is not "Сестра Света: у них в аптеке
        # такие рублей за 800"
        if matched and not wanted & have and memory.about != USER and not names_them and not names_whose(memory):
            overlap *= FORGET_TRANSLATED_ONLY_WEIGHT
        if wanted and overlap == 1.0 and any(len(t) >= (3 if t.isascii() else 4) for t in wanted):  # "tax", "ink"
            whole.add(memory.id)
        if 0 < overlap < 1 and cosine < FORGET_PARTIAL_COSINE:
            overlap *= FORGET_PARTIAL_WEIGHT  # "вид на жительство" is not the "вид на гавань" of a new flat
        if named:  # "забудь про терапию" names "seeing a therapist": the same word in the other script
            overlap = max(overlap, SOUND_WEIGHT * len(named & _distinctive(memory.text)) / len(named))
        # the subject alone is no evidence where the words half match and the meaning is far: "the car loan" is
        # not "Машину поменяли: теперь у нас Haval"
        partial = 0 < overlap < 1 and cosine < FORGET_PARTIAL_COSINE
        # (not when the request names them in other words: "хозяин помещения" is "Our landlord")
        others = FORGET_OTHERS_PENALTY if memory.about != USER and not about_others else 0.0
        if others and asked_concepts and names_whose(memory):
            others = 0.0
        # ... nor when it holds two of the things the request names: "цифры от калитки на даче" is "Рустем на даче
        # поставил на калитку кодовый замок, код 4471", whoever put the lock in
        if others and len(matched & things) >= 2:
            others = 0.0
        # "my ambulance side job" has the job's key, and so has "Моя жена Марина — фармацевт": not his job
        same_key = FORGET_KEY_BONUS if key is not None and memory.key == key and not partial and not others else 0.0
        if same_key and names_only_the_key:  # "вес мой забудь": "сейчас 84 при росте 165" is his weight
            overlap = 1.0
        if names_them and not things and _names_person(memory, named_people):
            overlap = 1.0  # "Сотри всё, что я рассказывал про Настю": all said of her, in either script
        scored.append((cosine + overlap + same_key - others + (FORGET_PERSON_BONUS if names_them else 0.0), memory))
        cosines.append((cosine, memory))
    scored.sort(key=lambda p: -p[0])
    cosines.sort(key=lambda p: -p[0])
    if not scored or not wanted:
        return []
    best = scored[0][0]
    # every memory holding all the words the request names is about it ("про пенсию мою сотри": "Мне 68, на
    # пенсии" and "Пенсия у меня 31 тыща"), however much closer in meaning one of them is
    named_ = [
        (score, m)
        for score, m in scored
        if score >= max(FORGET_SCORE, best - FORGET_MARGIN) or m.id in whole and score >= FORGET_SCORE
    ]
    # ... but not one holding only some of what the best one holds: "цифры от калитки на даче" is the gate code said
    # of the dacha, not "руки чешутся по даче" (one of its subject is: "I run on Mondays" for "I run on weekends")
    first = scored[0][1]
    most = matched_of[first.id]

    def holds_less(memory: Memory) -> bool:
        on_its_subject = memory.key is not None and memory.key == first.key
        return bool(matched_of[memory.id]) and matched_of[memory.id] < most and not on_its_subject

    named_ = [(score, m) for score, m in named_ if not holds_less(m)]
    # Said in the other language, a fact shares no word with the request, only meaning: the clearly closest memory
    # ("сюрприз для Лейлы" / "a surprise trip to Montenegro for Leyla's birthday": 0.34, the next 0.18).
    top, runner_up = cosines[0], (cosines[1][0] if len(cosines) > 1 else 0.0)
    chosen = {m.id for _, m in named_}
    # ... unless the request names someone that memory does not ("forget everything about Kravtsov" is not "I
    # live in Yaroslavl", however close in meaning the encoder puts the two)
    names_another = bool(named_people) and not _names_person(top[1], named_people)
    # ... nor, for a request that names no one, a memory that does: "пополнение в семье" is not "По средам с Соней
    # сидит свекровь", the closest in meaning (0.30) where the one meant ("думаем о втором ребёнке") is 0.16
    names_someone_unasked = not named_people and not query_names and _names_a_person(top[1].text)
    if (
        top[0] >= FORGET_COSINE
        and top[0] - runner_up >= FORGET_COSINE_LEAD
        and top[1].id not in chosen
        and not holds_less(top[1])
        and not names_another
        and not names_someone_unasked
    ):
        named_.append((top[0], top[1]))
        chosen.add(top[1].id)
    if not named_:
        return []
    # What was said together goes together: "я лечусь от гастрита, пью омепразол" is one confidence, and
    # "forget my stomach stuff" names both halves, the second only faintly.
    said_with = {m.exchange_id for _, m in named_ if m.exchange_id}
    floor = min(score for score, _ in named_) - FORGET_MARGIN
    # ... and so does what was said of the person the request names, after it in that same message ("Erase the
    # bit about Liam's gambling": "He's got a gambling problem. He lost nearly ten grand"; "Dai Roberts keeps
    # Welsh Black cattle", said before his wife's story, is no part of it) ...
    whose = {m.about for _, m in named_ if m.about != USER}
    order = {m.id: position for position, m in enumerate(current)}
    first_named = {
        m.exchange_id: min(order[n.id] for _, n in named_ if n.exchange_id == m.exchange_id) for _, m in named_
    }
    # ... and the sentence next to a forgotten one that goes on about it ("I play chess on lichess. My rating is
    # around 1900"; "болит спина. Хожу к остеопату"), not one on something else ("… I work at Google").
    positions = {order[m.id] for _, m in named_}
    beside: set[str] = set()
    while True:  # (repeated: "…мой бывший муж Олег. Он уже лет пять живёт в Сочи, у него там другая семья")
        more = {
            current[p].id
            for p in {q + step for q in positions for step in (-1, 1)} - positions
            if 0 <= p < len(current)
            and current[p].exchange_id in said_with
            and (
                any(
                    n.exchange_id == current[p].exchange_id
                    and _cosine(n.vector, current[p].vector) >= FORGET_BESIDE_COSINE
                    for _, n in named_
                )
                # a pronoun that names no one known, right after, goes on about what was just forgotten ("игорь занял.
                # теперь должен ему 400 баксов": "удали всё про долг игорю"), unless it is on something else
                or current[p].about in (UNKNOWN, current[p - 1].about)  # (or resolved to the one just forgotten)
                and current[p].about != USER
                and p - 1 in positions
                and _cosine(current[p - 1].vector, current[p].vector) >= FORGET_PRONOUN_COSINE
                # a fragment on no subject of its own, or the medicine taken for what it was said beside, close to the
                # request as said in its context ("давление скачет. Пью лозартан": "забудь про давление")
                or current[p].key in (None, "medication")
                and current[p].search_vector is not None
                and _cosine(vector, current[p].search_vector) >= FORGET_CONTEXT_COSINE
            )
        }
        if not more:
            break
        beside |= more
        positions |= {order[i] for i in more}
    return named_ + [
        (score, m)
        for score, m in scored
        if m.exchange_id in said_with
        and m.id not in chosen
        and (
            score >= floor
            or named_people
            and m.about in whose
            and order[m.id] > first_named[m.exchange_id]
            or m.id in beside
        )
    ]


def _names_a_person(text: str) -> bool:
    """A given name past the first word ("По средам с Соней сидит свекровь")."""
    return any(_a_given_name(w) for w in CAPITALIZED_WORD.findall(text[1:]))


# Words that only point at what is meant: "ту историю с кредитом", "the therapy stuff", "that court mess". Left in,
# they would match any memory that happens to use them ("Вот такая история", "the whole thing").
POINTER_WORDS = frozenset(
    """история историю истории историей историйку тема тему темы штука штуку штуки штуковину вещь вещи момент
    ситуация ситуацию ситуации информация информацию инфа инфу всё все то ту тот та те эту этот эти самую самый
    stuff thing things story stories bit part mess business info information details situation topic matter
    everything whole""".split()
)


def _without_pointers(query: str) -> str:
    kept = [w for w in query.split() if w.strip(",.!?;:«»\"'").lower() not in POINTER_WORDS]
    return " ".join(kept) if kept else query


def _names_person(memory: Memory, names: set[str]) -> bool:
    """Whether a memory is about one of `names` or names them as a name (capitalized): "My ex Nastya…" for
    "Настю", not "My tutor is called Galina" for "Callum"."""
    from .morph import given_name
    from .people import latin, same_name

    whose = memory.about if memory.about != USER else ""
    found = CAPITALIZED_WORD.findall(whose) + CAPITALIZED_WORD.findall(memory.text)
    # said by voice or in lowercase, a name is still one: "Зять артём опять в запой ушёл"
    found += [w for w in words(memory.text) if w.islower() and len(w) > 2 and given_name(w)]
    return any(same_name(latin(word), name) for word in found for name in names)


def _same_word(a: str, b: str) -> bool:
    """Two stems of one word: one inside the other (a compound), or a shared start all but two letters long."""
    shorter, longer = sorted((a, b), key=len)
    if len(shorter) >= LOOSE_PART and shorter in longer:
        return True
    common = common_start(a, b)
    return common >= LOOSE_PART and common >= len(longer) - 2  # "пятничн" / "пятниц"; not "байк" / "байкал"


def _cosine(a: np.ndarray | None, b: np.ndarray | None) -> float:
    if a is None or b is None or a.shape != b.shape:
        return 0.0
    return float(np.dot(a, b))
