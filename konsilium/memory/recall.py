"""Which memories come back with a question: the pinned core profile, then the current memories most relevant to
it (meaning across languages, the question's words, its subject and whose it is), and relevant past exchanges."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..index.text import analyze, words
from . import glossary, places
from . import lexicon as lx
from .decide import THING_KEYS
from .log import Exchange, content_text
from .morph import given_name
from .records import UNKNOWN, USER, Memory, key_family
from .subjects import (
    key_is_exclusive,
    replaces_explicitly,
    replaces_something,
    stops_something,
    subject_key,
    subject_keys,
)

LEXICAL_WEIGHT = 0.5  # share of the query's stems a memory holds, added to its cosine
TRANSLATED_WEIGHT = 1.0  # ... of those it names in other words (glossary.tsv), as a share of LEXICAL_WEIGHT
TRANSLATED_CANDIDATES = 200  # the memories closest in meaning that are read for those words
# A memory with the subject key the question asks about ("Where do I live?" → home.city) gets this much more:
# USE-m3 scores "В каком городе я живу?" against "Мы переехали в Санкт-Петербург" only 0.19.
KEY_BOOST = 0.3
PERSON_BOOST = 0.3  # a memory about the person the question names
OTHERS_PENALTY = 0.3  # a memory about someone else, for a question that names no one (about the user himself)
CANDIDATES = 50
INTRODUCING_CANDIDATES = 50  # memories read for the name of the relation a question asks about ("my wife")
LEXICAL_CANDIDATES = 200  # full-text hits of any status; the current ones among them are scored
CONVERSATION_ANSWER_CHARS = 500
SPARE = 3  # candidates beyond k, so that dropping superseded ones still leaves k
# Two memories answering one question, the newer saying it changed ("So pescatarian now" after "vegetarian for 6
# years": cosine 0.43), are one subject: the older is stale even where the write-time decision missed it. Unrelated
# statements of one person score 0.1-0.3 with USE-m3.
READ_CHANGE_COSINE = 0.33
SUPERSEDER_RELEVANCE = 0.2  # a change replaces an older memory only where it answers the question itself
# ... and not far less than the older one does: "Меня перевели в реанимацию" (0.2) is no news about a sprained
# ankle the question asks for (0.88), though both are health and work talk close enough in meaning.
SUPERSEDER_SHARE = 0.25
ASKED_WORD_SHARE = 0.5  # ... and half as well where only the older names the question's word
READ_CHANGE_COSINE_KEYED = 0.4  # an older keyed memory was already weighed against keyed changes when written
# One subject key, exclusive or said to be replaced ("сменила препарат"): a change needs little more.
READ_CHANGE_COSINE_SAME_KEY = 0.2
# Two memories that both answer the question well (cosine + words >= 0.5) are about its subject: "Дима платит
# алименты 400 евро" and "Дима теперь платит 550" (the same person's name alone would ask 0.55).
BOTH_ANSWER = 0.5
READ_CHANGE_COSINE_BOTH_ANSWER = 0.25
DATED_SHARE = 0.5
GENERIC_SCHEDULE = "schedule:training"
_TIME_WORDS = frozenset(
    {"день", "дня", "днем", "year", "month", "week", "time", "врем", "недел", "месяц", "сейчас", "now"}
)
# A question asking when, and the dates, days and times that answer it, in both languages.
_WHEN = re.compile(
    r"\b(?:when|what\s+(?:date|day|time)|which\s+day|когда|какого\s+числа|в\s+какой\s+день|в\s+какие\s+дни|"
    r"во\s+сколько|какая\s+дата)\b",
    re.IGNORECASE,
)
_DATE = re.compile(
    r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|mon|tue|wed|thu|fri|sat|sun|январ|феврал|март|апрел|ма[йяе]|"
    r"июн|июл|август|сентябр|октябр|ноябр|декабр|понедельник|вторник|сред[аеуы]|четверг|пятниц|суббот|воскресень)"
    r"|\b\d{1,2}[:.]\d{2}\b",
    re.IGNORECASE,
)
HOME = "home"  # the family of "home.city": a question asking where someone lives
_MOVING = re.compile(r"(?i)\b(?:теперь|now|moving|moved|relocat\w*|переех\w*|переезжа\w*|перебра\w*)\b")
# Both hold a word of the question (not a name): they answer it on one subject, the newer one says it changed.
READ_CHANGE_COSINE_ASKED_WORD = 0.15
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)?")
RESTATED_ASKED_WORD_COSINE = 0.3
RESTATED_COSINE = 0.6  # USE-m3: one sentence with another number 0.65-0.85; two facts of one subject 0.3-0.55
_CAPITALIZED = re.compile(r"\b[A-ZА-ЯЁ][a-zа-яё]{2,}")
# Statements about someone else share their name, which alone makes them 0.3-0.5 close ("Katya's cat Pushok…" /
# "Катя получила повышение, теперь…"): their change must be closer in meaning.
READ_CHANGE_COSINE_NAMED = 0.55
# ... unless both answer the question well: it names the person and asks what changed.
READ_CHANGE_COSINE_NAMED_BOTH_ANSWER = 0.35


@dataclass
class Recalled:
    memory: Memory
    score: float  # cosine + LEXICAL_WEIGHT * matched stems (pinned memories: 0, they are always offered)
    pinned: bool = False

    def to_json(self) -> dict:
        return {
            "id": self.memory.id,
            "text": self.memory.text,
            "about": self.memory.about,
            "kind": self.memory.kind,
            "pinned": self.pinned,
            "score": round(self.score, 4),
            "created": self.memory.created,
        }


class Recall:
    """Reads the store for a question; `embed` turns texts into the memory embedder's vectors."""

    def __init__(self, store, embed, settings):
        self.store, self.embed, self.settings = store, embed, settings
        self._last_query: tuple[str, np.ndarray] | None = None

    def query_vector(self, query: str) -> np.ndarray:
        """The question's vector, computed once for the memories and the past conversations of one turn."""
        last = self._last_query
        if last is not None and last[0] == query:
            return last[1]
        vector = self.embed([query])[0]
        self._last_query = (query, vector)
        return vector

    def recall(self, query: str, k: int | None = None, min_relevance: float | None = None) -> list[Recalled]:
        """The pinned core profile, then up to `k` current memories relevant to `query`, best first."""
        k = self.settings.top_k if k is None else k
        floor = self.settings.min_relevance if min_relevance is None else min_relevance
        current = self.store.current_matrix()
        pinned = [Recalled(m, 0.0, pinned=True) for m in current.pinned]
        if not query.strip() or k <= 0 or not current.memories:
            return pinned
        hits = self.search(query, k + len(pinned) + SPARE, current)
        relevant = [hit for hit in hits if hit.score >= floor and not hit.memory.pinned]
        return pinned + only_whose_asked(newest_on_each_subject(relevant, query), query)[:k]

    def search(self, query: str, k: int = 10, current=None) -> list[Recalled]:
        """Current memories by relevance: meaning (cosine, across languages) plus the query's words they hold."""
        current = current or self.store.current_matrix()
        if not current.memories:
            return []
        scores: dict[int, float] = {}
        if current.vectors.shape[1]:
            cosines = current.vectors @ self.query_vector(query)
            best = (
                np.argpartition(-cosines, CANDIDATES)[:CANDIDATES] if len(cosines) > CANDIDATES else range(len(cosines))
            )
            for row in best:
                scores[int(row)] = float(cosines[row])
            cosine_of = cosines
        else:
            cosine_of = np.zeros(len(current.memories), dtype=np.float32)
        wanted = set(analyze(query))
        # the question's words, and the same concepts' words in the other language (glossary.tsv), in one lookup
        asked = glossary.naming(wanted) if wanted else {}
        translations = glossary.equivalents(wanted) if asked else set()
        for rowid, found in self.store.lexical_matches(wanted, LEXICAL_CANDIDATES).items():
            row = current.row_of.get(rowid)  # None: not a current memory
            if row is not None:
                scores[row] = float(cosine_of[row]) + LEXICAL_WEIGHT * len(found) / len(wanted)
        if translations:  # "When are my Russian lessons?" / "уроки русского по субботам": among the closest in
            # meaning, those naming the question's words in the other language (no second full-text match: at 10k
            # memories a common concept's words match hundreds)
            closest = (
                np.argpartition(-cosine_of, TRANSLATED_CANDIDATES)[:TRANSLATED_CANDIDATES]
                if len(cosine_of) > TRANSLATED_CANDIDATES
                else range(len(cosine_of))
            )
            for row in {int(r) for r in closest} | set(scores):
                text = current.memories[row].text
                named = {s for concept in asked.keys() & _concepts(text) for s in asked[concept]} - _content_stems(text)
                if named:
                    bonus = LEXICAL_WEIGHT * TRANSLATED_WEIGHT * len(named) / len(wanted)
                    scores[row] = scores.get(row, float(cosine_of[row])) + bonus
        for row, adjustment in self._subject_and_person(query, current).items():
            scores[row] = scores.get(row, float(cosine_of[row])) + adjustment
        if _ASKS_A_NAME.search(query):  # "Как зовут мою собаку?": of the memories found, those that name someone
            for row in scores:
                if _names_something(current.memories[row].text):
                    scores[row] += NAME_BOOST
        ranked = sorted(scores.items(), key=lambda p: -p[1])[:k]
        return [Recalled(current.memories[row], score) for row, score in ranked]

    def _subject_and_person(self, query: str, current) -> dict[int, float]:
        """Score changes from what the question is about: the subject it asks for (its key, found through the
        memories' subject tokens) and whose it is. A question about someone ("у моего друга Димы") prefers
        memories about them; one about the user himself ("my GPU") keeps other people's memories down."""
        from .people import mentioned
        from .records import key_tokens

        asked = subject_key(query)
        # "my wife" finds "Anna teaches piano" once "my wife Anna" or "мы с женой Аней" was said
        named = mentioned(query)
        asked_relations = {p.relation for p in named if p.relation and not p.name}
        # read only where it can matter: someone the memories know by name alone
        unrelated = any(p.relation is None and p.name for p in current.people.values())
        introduced = self._introduced(asked_relations, current) if asked_relations and unrelated else ()
        known = with_relations(current.people, introduced)
        # A capitalized word names someone only if a memory is about them: "the capital of France" names no one.
        people = [p for p in named if p.relation or any(p.matches(whose) for whose in known.values())]
        on_subject = self.store.with_token(key_tokens(asked)[1]) if asked else set()
        adjustments: dict[int, float] = {}
        for rowid in on_subject:
            row = current.row_of.get(rowid)
            if row is not None:
                adjustments[row] = KEY_BOOST
        for row, whose in known.items():
            if people and any(p.matches(whose) for p in people):
                adjustments[row] = adjustments.get(row, 0.0) + PERSON_BOOST
            elif not people:
                adjustments[row] = adjustments.get(row, 0.0) - OTHERS_PENALTY - (KEY_BOOST if row in adjustments else 0)
        if people:  # the user's own memories do not answer a question about someone else by their subject
            for row in [r for r in adjustments if r not in current.people]:
                adjustments[row] -= KEY_BOOST
        return adjustments

    def _introduced(self, relations: set[str], current) -> tuple:
        """The people the user's own memories name with one of `relations` ("мы с женой Олей…" for "wife")."""
        from .people import relation_words

        found = introductions(self.store, current, relation_words(relations))
        return tuple(p for p in found if p.relation in relations)

    def recall_conversations(
        self, query: str, exclude_text: str = "", k: int | None = None, floor: float | None = None
    ) -> list[Recalled]:
        """Past exchanges relevant to `query` ("what did we decide about X last month"), best first, as
        memories of kind "conversation"; ones whose question is part of `exclude_text` (the chat being
        continued, which the client sends anyway) are left out."""
        k = self.settings.conversation_k if k is None else k
        floor = self.settings.conversation_min_relevance if floor is None else floor
        matrix = self.store.conversation_matrix()
        if k <= 0 or not query.strip() or not matrix.exchange_ids:
            return []
        query_vector = self.query_vector(query)
        views = matrix.vectors.reshape(len(matrix.exchange_ids), -1, query_vector.shape[0])
        cosines = (views @ query_vector).max(axis=1)
        hits = []
        for row in np.argsort(-cosines)[: k * 4]:
            if cosines[row] < floor or len(hits) >= k:
                break
            exchange = self.store.log.get(matrix.exchange_ids[row])
            if exchange is None:
                continue
            question = " ".join(new_user_text(exchange.messages)).strip()
            if question and question[:200] in exclude_text:
                continue
            snippet = Memory(
                id=exchange.id,
                text=conversation_snippet(question, exchange.response),
                kind="conversation",
                origin="log",
                created=exchange.time,
                updated=exchange.time,
                exchange_id=exchange.id,
            )
            hits.append(Recalled(snippet, float(cosines[row])))
        return hits


def introductions(store, current, terms: list[str]):
    """The people named with their relation ("мы с женой Олей…", "My partner Tomasz and I…") in the user's own
    current memories, read only from the few the full-text index finds for `terms`."""
    from .people import introduced

    for rowid in store.lexical(terms, INTRODUCING_CANDIDATES):
        row = current.row_of.get(rowid)
        if row is not None and current.memories[row].about == USER:
            yield from introduced(current.memories[row].text)


def with_relations(people: dict[int, object], introduced: tuple = ()) -> dict[int, object]:
    """Each memory's person with the relation the user gave them anywhere: a memory about "Anna" is about
    "wife Anna" when another memory is about "wife Anna" or says "мы с женой Аней" (`introduced`)."""
    from .people import Person, same_given_name, same_name

    named = [p for p in people.values() if p.relation and p.name]
    out = {}
    for row, whose in people.items():
        if whose.relation is None and whose.name:
            relation = next((p.relation for p in named if same_name(p.name, whose.name)), None) or next(
                (p.relation for p in introduced if same_given_name(p.name, whose.name)), None
            )
            whose = Person(relation, whose.name) if relation else whose
        out[row] = whose
    return out


_ASKS_WHO = re.compile(r"(?i)\b(?:who|whose|кто|кого|кому|чей|чья|чьё|чье|чьи)\b")


def only_whose_asked(hits: list[Recalled], query: str) -> list[Recalled]:
    """`hits` without someone else's answer to a question about one person's subject: once a hit about the person
    asked for (the user where the question names no one) holds the subject ("На что у меня аллергия?" / "у меня
    аллергия на пенициллин"), another person's memory on it ("А Priya арахис вообще не может, peanut allergy") is
    the answer to a different question, and would be read as the user's."""
    from .attribution import first_person, pronoun_gender
    from .people import mentioned, names_a_relation, person

    asked = key_family(subject_key(query))
    if asked is None:
        return hits
    named = [p for p in mentioned(query) if p.relation or p.name]
    if not named and (names_a_relation(query) or _ASKS_WHO.search(query) or not first_person(query)):
        # someone named without a possessive or written small ("what does inês do for work?"), or "Who in my
        # family…": whose it is is not known
        return hits
    # each hit's person with the relation another hit gives them ("Anna" is "wife Anna")
    people = with_relations({i: found for i, hit in enumerate(hits) if (found := person(hit.memory.about))})

    def theirs(position: int) -> bool:
        if not named:
            return hits[position].memory.about == USER
        return position in people and any(p.matches(people[position]) for p in named)

    def may_be_theirs(position: int) -> bool:
        """Kept though said of someone else: of no one known ("someone"), or speaking of the user ("…the same week
        as my birthday"), of the person asked ("Inês wants…, she works at an architecture studio") or of a "he"
        or "she" it may have been given wrongly ("save up for his birthday, thats 14th april")."""
        memory = hits[position].memory
        if memory.about == UNKNOWN:
            return True
        if not named:
            return bool(set(words(memory.text)) & lx.FIRST_PERSON)
        in_text = mentioned(f"_ {memory.text}")
        return pronoun_gender(memory.text) is not None or any(p.matches(q) for p in named for q in in_text)

    on_subject = {i for i, hit in enumerate(hits) if key_family(hit.memory.key) == asked}
    if not any(theirs(i) for i in on_subject):
        return hits
    return [hit for i, hit in enumerate(hits) if i not in on_subject or theirs(i) or may_be_theirs(i)]


def newest_on_each_subject(hits: list[Recalled], query: str = "") -> list[Recalled]:
    """`hits` (best first) without the memories a newer one among them replaces: the same person, close in
    meaning, the newer one saying that something changed."""
    from .people import mentioned, same_person

    # its words, not names, nor words of time that any two dated memories share ("Когда у меня день рождения?")
    asked = {t for t in analyze(_without_names(query)) if len(t) >= 4 and t not in _TIME_WORDS}
    naming = glossary.naming(asked)  # ... and their concepts, to be named in either language

    def words_of_the_question(memory: Memory) -> set[str]:
        stems = _content_stems(memory.text)
        named = {w for concept in naming.keys() & _things(memory.text) for w in naming[concept]} if naming else ()
        return (asked & stems) | set(named)

    question_words = {hit.memory.id: words_of_the_question(hit.memory) for hit in hits}  # once per hit, not per pair

    asks_when = bool(_WHEN.search(query))
    asks_a_figure = bool(_ASKS_A_FIGURE.search(query))
    # asked about someone named, not about the user's own plans with them ("when do i fly out to see Tomás?")
    asked_people = {p.name for p in mentioned(query) if p.name} if not _THE_USER.search(query) else set()
    named = {hit.memory.id: _names_in(hit.memory) for hit in hits} if asked_people else {}
    stale: set[str] = set()
    asked_subject = _asked_subject(query)
    asks_where = asked_subject == HOME
    for newer in hits:
        if newer.score < SUPERSEDER_RELEVANCE or newer.memory.vector is None:
            continue
        changes = replaces_something(newer.memory.text)
        newer_words = question_words[newer.memory.id]
        newer_dated = asks_when and bool(_DATE.search(newer.memory.text))
        for older in hits:
            memory = older.memory
            on_its_word = bool(newer_words and newer_words & question_words[memory.id])
            # the memory naming what is asked ("глюкометр у меня контур плюс") is not replaced by a change that
            # names it not, answers far worse and is on no subject of its ("поменяла мне таблетки, теперь диабетон")
            on_another_subject = newer.memory.key is not None and newer.memory.key != memory.key
            share = (
                ASKED_WORD_SHARE
                if question_words[memory.id]
                and not newer_words
                and on_another_subject
                and not (asks_where and _moved(newer.memory, memory, changes))  # "Костя теперь в Казани"
                else SUPERSEDER_SHARE
            )
            if (
                memory.created < newer.memory.created
                and newer.score >= share * older.score
                and memory.vector is not None
                and memory.vector.shape == newer.memory.vector.shape
                and (same_person(memory.about, newer.memory.about) or _around_them(memory, newer.memory))
                and not (asks_a_figure and _drops_its_figure(memory, newer.memory))
                and not (asks_when and _drops_its_date(memory, newer.memory))
                and not (memory.key in THING_KEYS and newer.memory.key != memory.key)
                and not _drops_its_model(memory, newer.memory)
                and not (asked_people and _leaves_them_out(named[memory.id], named[newer.memory.id], asked_people))
                and (
                    asks_where
                    and _moved(newer.memory, memory, changes)
                    or _replaces(
                        newer.memory,
                        memory,
                        changes,
                        both_answer=min(older.score, newer.score) >= BOTH_ANSWER,
                        asked_subject=asked_subject,
                        # "When is my IELTS exam?": "My exam is on June 20" / "Айлтс перенесли на 11 июля" both answer
                        # with a date, whatever their words
                        on_the_asked_word=on_its_word
                        or newer_dated
                        and newer.score >= DATED_SHARE * older.score  # answering as well, not a stray dated change
                        and bool(_DATE.search(memory.text)),
                        restated=on_its_word,
                    )
                )
            ):
                stale.add(memory.id)
    return [hit for hit in hits if hit.memory.id not in stale]


_THE_USER = re.compile(r"(?i)(?<![\w-])(?:i|i'm|im|me|я|мне|меня|мной)(?![\w-])")
_ASKS_A_FIGURE = re.compile(r"(?i)\b(?:сколько|how\s+(?:much|many))\b")


def _drops_its_figure(older: Memory, newer: Memory) -> bool:
    """Asked how much: "Нашла, большое, теперь почти без очков вижу" does not replace "Очки для чтения у меня
    +2,5" (a change that names no figure, no name and ends nothing leaves the figure said before)."""
    return (
        bool(_NUMBER.search(older.text))
        and not _NUMBER.search(newer.text)
        and not _CAPITALIZED.search(newer.text[1:])
        and not stops_something(newer.text)
    )


def _drops_its_model(older: Memory, newer: Memory) -> bool:
    """ "Пишу вам прямо с дачи, с нового телефона" does not replace "…подарили новый телефон, Honor": a change to a
    thing one owns that names no make or model (and ends nothing) leaves the one named before."""
    return (
        older.key in THING_KEYS
        and _names_a_model(older.text)
        and not _names_a_model(newer.text)
        and not stops_something(newer.text)
    )


_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


def _names_a_model(text: str) -> bool:
    """A number, a capitalized word past the first, or a Latin word in Russian text ("Honor", "iPhone 13")."""
    if _NUMBER.search(text) or _CAPITALIZED.search(text[1:]):
        return True
    return bool(lx.CYRILLIC_LETTER.search(text) and _LATIN_WORD.search(text))


def _drops_its_date(older: Memory, newer: Memory) -> bool:
    """Asked when: "у кости новости, ушел в другую контору" does not replace "У кости др 2 апреля" (a change that
    names no date and ends nothing leaves the date said before)."""
    return bool(_DATE.search(older.text)) and not _DATE.search(newer.text) and not stops_something(newer.text)


def _names_in(memory: Memory) -> set[str]:
    """The given names a memory holds, written small or capitalized, in Latin letters and the nominative, and the
    name of whom it is about."""
    from .morph import nominative
    from .people import WORD, latin, person

    whose = person(memory.about)
    found = {latin(nominative(w)) for w in WORD.findall(memory.text) if len(w) > 2 and given_name(w)}
    return found | ({whose.name} if whose is not None and whose.name else set())


def _leaves_them_out(older: set[str], newer: set[str], asked: set[str]) -> bool:
    """Asked about someone by name: a newer memory that names them not ("По работе: обновили прайс с мая") is no
    news of an older one that does ("У алисы 23 мая др")."""
    from .people import same_name

    def names_them(names: set[str]) -> bool:
        return any(same_name(name, person) for name in names for person in asked)

    return names_them(older) and not names_them(newer)


def _without_names(query: str) -> str:
    """The question without the names in it, capitalized or written small ("кем работает моя сестра света?")."""
    return " ".join(w for w in _CAPITALIZED.sub(" ", query).split() if not given_name(w.strip("?,.!")))


def _around_them(older: Memory, newer: Memory) -> bool:
    """The user's own plan around someone changes with their news: "По вторникам забираю внука Артёма" / "у артема
    тренер расписание поменял, шахматы по четвергам"."""
    from .morph import nominative
    from .people import WORD, latin, person, same_name

    whose = person(newer.about)
    if older.about != USER or whose is None or not whose.name or not older.key or older.key != newer.key:
        return False  # one subject: "Teamlead is Marko, a basketball nerd" stays when "Marko is moving to Amsterdam"
    return any(same_name(latin(nominative(w)), whose.name) for w in WORD.findall(older.text) if len(w) > 2)


def _moved(newer: Memory, older: Memory, says_change: bool) -> bool:
    """Asked where someone lives: a newer memory of theirs naming another place and a change ("Костя теперь в
    Казани", "is moving to Vienna") replaces one naming the old place ("Мой брат Костя живёт в Питере"), however
    far apart the rest of the two sentences is. `says_change`: `replaces_something(newer.text)`, known per newer."""
    new, old = places.places(newer.text), places.places(older.text)
    return bool(new and old and not new & old) and (says_change or bool(_MOVING.search(newer.text)))


def _replaces(
    newer: Memory,
    older: Memory,
    says_change: bool,
    both_answer: bool = False,
    on_the_asked_word: bool = False,
    asked_subject: str | None = None,
    restated: bool = False,
) -> bool:
    cosine = float(older.vector @ newer.vector)
    threshold = _change_cosine(older, newer, both_answer, asked_subject)
    # "Во сколько у нас дейли?": "Дейли у нас в 10:00" / "мы перенесли дейли на 9:30"; not two subject keys, nor a
    # new thing one owns sharing the asked word with a statement on no subject ("I now drive a Toyota Hilux … to the
    # roastery" / "Our roastery is called Kedr Roasters")
    of_another = newer.key in THING_KEYS and not older.key and not _on_subject(older, key_family(newer.key))
    if on_the_asked_word and threshold != float("inf") and not of_another:
        threshold = min(threshold, READ_CHANGE_COSINE_ASKED_WORD)
    if says_change and cosine >= threshold:
        return True
    if says_change and threshold != float("inf") and _new_amount(older, newer):
        return True  # "Я пью эутирокс 50 мкг" / "Теперь 75 мкг": the same measure, another amount, said to change
    # The same sentence again with another number: "rating around 1450" → "my lichess rapid rating is 1520".
    numbers = [set(_NUMBER.findall(m.text)) for m in (older, newer)]
    # ... or the question's own word with another number: "плачу 185 тысяч за аренду" / "аренда будет 215 тысяч"
    closeness = RESTATED_ASKED_WORD_COSINE if restated and threshold != float("inf") else RESTATED_COSINE
    return (
        cosine >= closeness
        and bool(numbers[0])
        and bool(numbers[1])
        and not numbers[0] & numbers[1]
        and _one_measure(older, newer)
    )


def _one_measure(older: Memory, newer: Memory) -> bool:
    """Their numbers can be one figure said again: in a unit they share, or neither in any ("Кошка 4 кг" does not
    restate "Стерилизация кошки теперь 5200")."""
    units = [{_unit(u) for _, u in _AMOUNT.findall(m.text)} for m in (older, newer)]
    return not units[0] and not units[1] or bool(units[0] & units[1])


def _unit(said: str) -> str:
    """A unit as one word for its spellings: "кило" is "кг", "lbs" is "lb"."""
    said = said.lower()
    return _UNIT_SPELLINGS.get(said, said)


_UNIT_SPELLINGS = {"кило": "кг", "kilo": "kg", "kilos": "kg", "lbs": "lb", "евро": "€", "mcg": "мкг", "mg": "мг"}


# An amount and its unit: "50 мкг", "96 kg", "2500 за урок" is no unit, "38к" is (thousands)
_AMOUNT = re.compile(
    r"(\d+(?:[.,]\d+)?)\s*(мкг|мг|mcg|mg|ме|iu|кг|kg|кило|kilos?|lbs?|км|km|мл|ml|₽|руб\w*|€|евро|\$|zł|тыс\w*|к|k)(?![a-zа-яё])",
    re.IGNORECASE,
)


def _new_amount(older: Memory, newer: Memory) -> bool:
    """Both name an amount in the same unit, and not the same amount, and they are on one subject (the same key,
    or neither has one)."""
    if (older.key or newer.key) and key_family(older.key) != key_family(newer.key):
        return False
    units = [{_unit(u): n for n, u in _AMOUNT.findall(m.text)} for m in (older, newer)]
    shared = units[0].keys() & units[1].keys()
    return bool(shared) and all(units[0][u] != units[1][u] for u in shared)


def _asked_subject(query: str) -> str | None:
    """The family of the subject key a question asks about ("Where does Gleb live?" → home)."""
    key = subject_key(query)
    return key_family(key)


def _on_subject(memory: Memory, family: str | None) -> bool:

    keys = subject_keys(memory.text) | ({memory.key} if memory.key else set())
    return family is not None and any(key_family(k) == family for k in keys)


def _change_cosine(older: Memory, newer: Memory, both_answer: bool = False, asked_subject: str | None = None) -> float:
    """How close a newer statement must be to replace an older one at read time."""
    from .people import latin, same_name

    if (
        older.key
        and newer.key
        and older.key != newer.key
        and not _one_family(older.key, newer.key)
        and not _one_activity(older, newer)
    ):
        return float("inf")  # two subjects the extractor told apart: a GPU upgrade leaves the laptop's RAM alone
    if older.key and older.key == newer.key and (key_is_exclusive(older.key) or replaces_explicitly(newer.text)):
        return READ_CHANGE_COSINE_SAME_KEY  # "Пью лизиноприл" → "сменила мне препарат — теперь амлодипин 5 мг"
    names = [_people_named(m) for m in (older, newer)]
    if older.about != USER or any(same_name(a, b) for a in names[0] for b in names[1]):
        # a name shared makes both answer a question naming them: they must share something else to be one subject
        shared = {t for t in _content_stems(older.text) & _content_stems(newer.text) if len(t) >= 4}
        named_only = not {t for t in shared if not any(same_name(latin(t), n) for n in names[0] | names[1])}
        if both_answer and not named_only:
            return READ_CHANGE_COSINE_BOTH_ANSWER
        if both_answer and (_on_subject(older, asked_subject) or _on_subject(newer, asked_subject)):
            # "Where does Gleb live?": "Глеб живёт в Сочи" / "Глеб перебрался в Калининград" (0.36); not "How many
            # kids has Gleb?", which "Глеб живёт в Сочи, у него двое сыновей" answers and the move does not
            return READ_CHANGE_COSINE_NAMED_BOTH_ANSWER
        return READ_CHANGE_COSINE_NAMED
    if both_answer:
        return READ_CHANGE_COSINE_BOTH_ANSWER  # the question itself says they are one subject
    return READ_CHANGE_COSINE_KEYED if older.key and not newer.key else READ_CHANGE_COSINE


# A question asking what someone or something is called, not the user's own name (pinned anyway).
_ASKS_A_NAME = re.compile(
    r"(?i)(?<!\bmy\s)\bname\b(?!\s+is)|\bcalled\b|(?<!меня\s)\bзовут\b|\bимя\b|\bназывается\b|\bфамилия\b"
)
NAME_BOOST = 0.1


@lru_cache(maxsize=8192)
def _names_something(text: str) -> bool:
    """A name in the text: a capitalized word past the first that is no place ("корги Бублик", "studio Pixel
    Harbor"), a given name written small ("к ирине валерьевне"), or a quoted one («Глина»)."""
    from .morph import given_name

    if re.search(r"[«\"“][^»\"”]{2,40}[»\"”]", text):
        return True
    tokens = text.split()
    for word in (t.strip(",.!?:;()—–-'\"") for t in tokens[1:]):
        if len(word) > 2 and word[:1].isupper() and not word.isupper() and not places.places(word):
            return True
        if len(word) > 2 and word.islower() and given_name(word):
            return True
    return False


@lru_cache(maxsize=8192)
def _concepts(text: str) -> frozenset[int]:
    """The glossary's concepts a memory names, once per text."""
    return glossary.concepts(_content_stems(text))


@lru_cache(maxsize=8192)
def _things(text: str) -> frozenset[int]:
    """The glossary's concepts a memory names (not verbs of change), once per text."""
    return glossary.things(_content_stems(text))


@lru_cache(maxsize=8192)
def _content_stems(text: str) -> frozenset[str]:
    """A memory's stems, once per text: every recall compares each pair of its hits by them."""
    return frozenset(analyze(text))


def _one_family(first: str, second: str) -> bool:
    """ "deadline:рис" and "deadline:обложк": two deadlines whose topic words differ (the topic is only the first
    content word) may be one deadline; "schedule:pilates" and "schedule:swimming" are two activities; a job and
    the role in it are one subject that a change replaces ("Уволился, теперь работаю в Яндексе")."""
    return first.startswith("deadline:") and second.startswith("deadline:") or {first, second} == {"job", "job.role"}


def _one_activity(older: Memory, newer: Memory) -> bool:
    """ "Tyoma's training moved to Mondays" is his football: "training" names any sport's sessions of someone
    else (the user's own, who runs and swims, are two)."""
    keys = (older.key or "", newer.key or "")
    return older.about != USER and all(k.startswith("schedule:") for k in keys) and GENERIC_SCHEDULE in keys


def _people_named(memory: Memory) -> set[str]:
    """The people a memory names, in Latin letters: given names and whom it is about; not any capitalized word
    ("Mbps", "Starlink", the first word of a sentence)."""
    from .people import latin, person

    whose = person(memory.about)
    named = {
        latin(w) for w in _CAPITALIZED.findall(memory.text) if {w.lower(), w.lower().replace("ё", "е")} & lx.GIVEN_NAMES
    }
    return named | ({whose.name} if whose is not None and whose.name else set())


def previous_user_text(messages: list[dict]) -> str:
    """The user's last message before the new ones: who "she" in "Her birthday is in May" is."""
    seen_assistant = False
    for message in reversed(messages or []):
        if not isinstance(message, dict):
            continue
        if message.get("role") == "assistant":
            seen_assistant = True
        elif message.get("role") == "user" and seen_assistant:
            return content_text(message.get("content")).strip()
    return ""


_QUESTION = re.compile(r"[^.!?\n]{3,200}\?")


def asked_before(messages: list[dict]) -> str:
    """The question the assistant's last message ended on, which the user's new messages may answer ("Which CAT
    tool do you work in?"); "" when it asked none."""
    for message in reversed(messages or []):
        if isinstance(message, dict) and message.get("role") == "assistant":
            questions = _QUESTION.findall(content_text(message.get("content")))
            return questions[-1].strip() if questions else ""
    return ""


def new_user_text(messages: list[dict]) -> list[str]:
    """The user's messages after the last assistant message: what is new in this exchange (a chat client
    sends the whole conversation every time; earlier turns were learned from when they were new)."""
    out: list[str] = []
    for message in reversed(messages or []):
        if not isinstance(message, dict):
            continue
        if message.get("role") == "assistant":
            break
        if message.get("role") == "user":
            text = content_text(message.get("content")).strip()
            if text:
                out.append(text)
    return list(reversed(out))


def conversation_text(exchange: Exchange) -> str:
    """What a past exchange is found by: the user's new words and the start of the answer (citations cut)."""
    question = " ".join(new_user_text(exchange.messages)).strip()
    if not question:
        return ""
    return f"{question}\n{_answer_body(exchange.response)[:CONVERSATION_ANSWER_CHARS]}"


def conversation_snippet(question: str, response: str) -> str:
    answer = _answer_body(response)
    return f"Q: {question[:300]}\nA: {answer[:CONVERSATION_ANSWER_CHARS]}" + ("…" if len(answer) > 500 else "")


def _answer_body(response: str) -> str:
    return (response or "").split("\n\nSources:", 1)[0].strip()
