"""The deterministic memory extractor: what the user's own messages say about him and his people.

Takes the user's new messages of one exchange (assistant text never creates a fact about the user) and returns
statements and forget requests:
- sentences are split into clauses where a new first-person predicate starts ("Я учу испанский, занимаюсь по
  вторникам с репетитором" → two statements);
- questions, requests to the assistant, greetings, code and pasted documents are skipped (a long paste keeps
  only its explicit "remember …" sentences);
- a statement is kept when it is in the first person ("I …", "my …", "я …", "у меня …"), in the implicit
  first person ("Upgraded the laptop RAM to 32 GB", "Переехал в Казань"), about the user's people ("my friend
  Igor has an RTX 3090" is about "friend Igor", not the user) or about one of his known things (tutor sessions,
  deadlines, his laptop), or when he asked to remember it;
- each gets a kind and a subject key from the lexicon (`lexicon.py`), and whether it says something changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache

from ..index.text import stem, words
from . import lexicon as lx
from . import morph, places
from .attribution import (
    NOT_NAMES,
    OPENERS,
    after_label,
    first_person,
    gender_of,
    is_name,
    is_relation,
    named_third_person,
    pronoun_gender,
    relation_noun,
    someone_else,
    speaks_of_self,
    subject_of,
)
from .corrections import Correction, corrected, correction
from .forget_requests import deletes_what_was_told, forget_query, month_told, topic_of
from .people import CAPITALIZED_WORD
from .records import UNKNOWN, USER
from .subjects import (
    activity_of,
    all_keys,
    likes,
    main_key,
    matches_any,
    mentions_concept,
    preference_key,
    says_change,
    stems_of,
    stops_something,
)

MAX_MESSAGE_CHARS = 1500  # longer: a pasted document, not something said about oneself
MAX_STATEMENT_CHARS = 300
MIN_WORDS = 2
DECLARATIVE_WORDS = 3  # a statement with no first-person word or known subject needs this many words to be kept

_SENTENCES = re.compile(
    r"(?<=[.!?…])\s+(?=[A-ZА-ЯЁ])|(?<=[\U0001F300-\U0001FAFF\u2600-\u27BF])\s+(?=\w)|(?<=[.!?…])\s+|(?<=[.!?…][»\"”])\s+|\n+"
    r"|(?<=[:;]\))\s+|(?<=\)\))\s+(?=[A-ZА-ЯЁ])"  # "Thank you, teacher :) Also…", "крепкие)) Ладно"
)
_CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)
_REMEMBER = re.compile(
    r"^(?:please\s+|пожалуйста,?\s+)?(?:remember|запомни(?:те)?|не\s+забудь|note\s+that|keep\s+in\s+mind|"
    r"имей\s+в\s+виду|учти)\b[\s,:—-]*(?:that\s+|что\s+)?(?P<rest>.+)$",
    re.IGNORECASE,
)
_NAME = re.compile(
    r"(?i:\bmy name is|\bi am|\bi'm|\bim|меня зовут|зовут меня|\bя\s*[-—–]?|\bэто)\s+"
    r"(?P<name>[A-ZА-ЯЁa-zа-яё][a-zа-яё]+)\b"
)
_THIS_IS_SOMEONE = re.compile(
    r"^(?i:это|this\s+is)\s+(?P<name>[A-ZА-ЯЁ][a-zа-яё]+),\s+(?i:(?:my|our|мой|моя|наш|наша)\s+)?(?P<rel>[a-zа-яё]+)\b"
)
_NAME_HERE = re.compile(r"^(?P<name>[A-Z][a-z]+|[А-ЯЁ][а-яё]+)\s+(?:here|на связи)\b[\s,—–-]*(?P<rest>.*)$")
_GOES_ON_ABOUT_IT = re.compile(r"(?i)(?:is|are|was|were|has|have|had|costs?|seems?|looks?|feels?|gets?|got)\b")
# "Позвольте представиться: Геннадий Аркадьевич, …" says "меня зовут".
_INTRODUCING = re.compile(
    r"^(?:(?:позвольте|разрешите|let\s+me|allow\s+me\s+to)\s+)?(?:представиться|представлюсь|introduce\s+myself)"
    r"\s*[:,—–-]?\s*",
    re.IGNORECASE,
)
_SAYS_THE_NAME = re.compile(r"(?i)(?:меня\s+зовут|моё\s+имя|мое\s+имя|я\s|это\s|my\s+name|i'?m\s|i\s+am\s)")
# "I'm Lena, 34, biology teacher in Tver": the name, then more about the user.
_NAME_FIRST = re.compile(
    # (after a greeting: "Hiya, so I'm Abi, staff nurse on…" is the name, then the job)
    r"^(?:(?i:hi|hiya|hey|hello|yo|so|ok|okay|well|привет|прив|здравствуйте|ну|итак|короче)[,!.]?\s+)*(?P<intro>(?i:my\s+name\s+is|i\s+am|i'm|im|меня\s+зовут|я|это)\s+(?P<name>[A-ZА-ЯЁa-zа-яё][a-zа-яё]+)"
    r"(?:\s+[A-ZА-ЯЁ][a-zа-яё]+){0,2})"
    r"\s*(?:,|\s[—–-])\s*(?P<rest>.+)$"
)
# What only says more about the name: "можно просто Петрович", "call me Sasha", "Ivanova by my husband".
_ABOUT_THE_NAME = re.compile(
    r"\b(?:можно|зови|зовите|call\s+me|just|просто|для\s+друзей|aka|a\.k\.a|отчеств|фамили|surname|full\s+name|"
    r"полное\s+имя|nickname|прозвищ)",
    re.IGNORECASE,
)
_AGE = re.compile(
    r"\b(?:i am|i'm|мне)\s+(?P<age>\d{1,2})(?:\s*(?:years|y/?o|год|года|лет))?\b"
    r"(?![.,]?\d|\s*(?:kg|кг|kilo|lbs?|cm|см|km|км|%|k\b|к\b|тыс|€|\$|eur|usd|руб|min|мин|h\b|ч\b))",  # "I'm 92 kg"
    re.IGNORECASE,
)
_TAG_QUESTION = re.compile(
    r",?\s*\b(?:ладно|хорошо|ок|окей|договорились|ok|okay|please|пожалуйста|right|yeah)\s*\?+\s*$", re.IGNORECASE
)
_PAST_EN = re.compile(
    r"^(?:just\s+|finally\s+|recently\s+)?(?P<verb>[A-Za-z]+ed|bought|got|sold|quit|began|left|"
    r"took|went|became|made|started|switched|moved|upgraded|finished|joined|found|lost|won)\b",
    re.IGNORECASE,
)
_PAST_RU = re.compile(r"^(?:только что\s+|наконец\s+|недавно\s+)?[а-яё]+(?:л|ла|ли|лся|лась|лись)\b", re.IGNORECASE)
# a name after the first word; a place typed small ("переехали на каменную горку")
_PLACE = re.compile(r"(?<=\s)[A-ZА-ЯЁ][a-zа-яё]+|\b(?:в|на|to|in)\s+[a-zа-яё]{3,}")
_RU_FIRST_PERSON_VERB = re.compile(r"^[а-яё]+(?:юсь|усь|аю|яю|ую|ею|ю|у)$")
_ASKING_SPLIT = re.compile(r"\s*(?:[,;:]|\s[—–-])\s+")
# Words that open the question part of a sentence besides QUESTION_WORDS: "…, will it run …?", "…, идеи есть?"
_ASKING_OPENERS = frozenset(
    {"will", "would", "is", "are", "do", "does", "can", "could", "should", "идеи", "есть", "so", "any"}
)
_CLAUSE = re.compile(
    r"\s*[;,]\s+"
    r"|:\s+(?=[A-ZА-ЯЁ][a-zа-яё]+\s+(?:теперь|now|is|was|has|работает|живёт|живет)\b)"
    # (not "Ines and I are planning…": one subject of two)
    r"|\s+(?:and|а также|и ещё|и еще)\s+(?=(?:i|my|я|мой|моя|мои|у меня)\b)(?!i\s+(?:are|were|both)\b)"
    r"|\s+[—–]\s+(?=(?:(?:now|then|so|теперь|сейчас)\s+)?(?:i|я)\b)",  # "She changed them — now I take amlodipine"
    re.I,
)

# (not told to one: "Я курьеру код сказала", "я врачу позвонила")
_PROFESSION = r"(?:[\w-]+\s+){0,2}?[\w-]*(?:" + "|".join(lx.PROFESSIONS_EN + lx.PROFESSIONS_RU) + r")(?![ую]\b)"
# A statement about the user's own job, not one that only names work ("Protein plan works", "На работу езжу на
# Brompton", "Был у врача", "the Dribbble hiring challenge"): an exclusive key must not replace his job by mistake.
# Starting at a new place of work: "Started at Yandex", "first week at jetbrains", "Перешёл в Яндекс".
_NEW_PLACE = (
    r"\b(?:(?:started|starting|joined)\s+(?:at|with)|first\s+(?:week|day|month)\s+at)\s+(?!(?:the|a|my|an)\b)[^\W\d]"
    r"|\b(?:started|joined)\s+(?-i:[A-ZА-ЯЁ])"
    # a name ("в частную клинику «Авиценна»", "на memoQ"), not "перешёл на цикорий"
    r"|\bперешл?[её]?л[аи]?\s+(?:работать\s+)?(?:в|на)\s+(?:[а-яё]+\s+){0,2}(?:[«\"]?(?-i:[A-ZА-ЯЁ])|[a-z]{2})"
    r"|\bвыш(?:ел|ла)\s+на\s+работу\b"
    r"|\bустрои(?:лся|лась)\b|\bуш[её]?л[аи]?\s+(?:из|с)\s+\S+\s+(?:в|на)\s+[«\"]?(?-i:[A-ZА-ЯЁ])"
    r"|\bменя\s+(?:берут|взяли|приняли|наняли|назначили|перевели)\s+(?:\w+\s+){0,2}?(?:в|на|to|at)?\s*[«\"]?(?-i:[A-ZА-ЯЁ])"
    r"|\b(?:hired|promoted)\s+(?:me\s+)?(?:as|to)\b"
    # "Ухожу в Nordlight Games", "Позвали в Авиценну", "Увольняюсь", "got the offer": leaving for a named place
    # (not "позвали на собеседование в «Ветмастер»", "Тимура переманили в «Ак Барс»": an interview, his move)
    r"|\b(?:ухож[уy]|позвали|меня\s+переманили)\s+(?:работать\s+)?(?:в|во|на)\s+[«\"]?(?-i:[A-ZА-ЯЁ])|\bувольняюсь\b"
    r"|\b(?:got|accepted|took)\s+(?:the|an?|their)\s+(?:job\s+)?offer\b"
)
# Who the user is at work: a profession after "I'm" / "я" / "стал", or a new place of work.
_STATES_A_ROLE = re.compile(
    r"\b(?:i'm|i am|im|as an?|as(?!\s+(?:my|our|his|her|their|your|the|a|an)\b)|work(?:ing)?\s+as\s+an?)\s+"
    r"(?:now\s+|currently\s+|still\s+)?(?:an?\s+|the\s+)?"
    + _PROFESSION
    + r"|\b(?:я|теперь|сейчас|стал|стала|работа(?:ю|л|ла)|выхож[уy]|выйду|"
    r"(?:меня\s+)?(?:берут|взяли|приняли|назначили))\s+"
    r"(?:(?:в|во|на)\s+[\w«»\"-]+\s+)?"  # "Взяли в озон стажером-тестировщиком"
    r"(?:уже\s+|теперь\s+|сейчас\s+)?" + _PROFESSION + r"|" + _NEW_PLACE,
    re.IGNORECASE,
)
_PROFESSION_FIRST = re.compile(r"^(?:an?\s+)?" + _PROFESSION, re.IGNORECASE)  # "Staff nurse on a ward"
# A role and where, said bare: "Clinic manager at Meanwood Health Centre", "Бухгалтер в «СтройИнвесте»".
_PROFESSION_AT = re.compile(
    _PROFESSION_FIRST.pattern + r"\w*\s+(?:at|in|for|with|в|во|на)\s+(?:[«\"“]|(?-i:[A-ZА-ЯЁ]))", re.IGNORECASE
)
_STATES_A_JOB = re.compile(
    r"\b(?:i|we)\b[\w\s']{0,20}?(?<!\bat )(?<!\bto )\bwork(?:s|ed|ing)?\b"  # not "I cycle to work on my bike"
    r"(?!\s+(?:out|from\s+home|remotely|late|overtime|nights|weekends))"
    r"|" + _NEW_PLACE + r"|\bwork(?:ing|ed)?\s+(?:as|at|for|in)\b"
    r"|\b(?:i'm|i am|im|as an?)\s+(?:now\s+|currently\s+|still\s+)?(?:an?\s+|the\s+)?"
    + _PROFESSION
    + r"|\bquit\s+(?:my\s+)?(?:old\s+|current\s+|the\s+)?(?:job|work|position|company|[A-ZА-ЯЁ])"
    r"|\bsigned\s+with\b|\b(?:resigned|fired|laid\s+off|promoted|retired|hired)\b|\bjoined\s+[A-Z]"
    r"|\bменя\s+повысили\b"
    r"|\b(?:new|my|old|a|the)\s+job\b|\bjob\s+(?:at|as|offer)\b|\bfor\s+a\s+living\b"
    r"|\bработа(?:ю|ем|л|ла|ли)\b(?!\s+(?:из\s+дома|дома|удал|на\s+удал|с\s+утра|по\s|допоздна|много|мало|без\s))|\b(?:я|теперь|сейчас|стал|стала)\s+(?:уже\s+|теперь\s+|сейчас\s+)?"
    + _PROFESSION
    + r"|\bустрои(?:лся|лась|лись)\b|\bуволи(?:лся|лась|лись)\b|\bуш[её]?л[аи]?\s+(?:из|с)\b"
    r"|\bсмени(?:л|ла)\s+(?:работу|контору|место|компанию)|\bоффер|\bпо\s+профессии\b|\bдолжност"
    r"|^[\w-]*(?:" + "|".join(lx.PROFESSIONS_EN + lx.PROFESSIONS_RU) + r")\w*\s*[,—–:]",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Statement:
    text: str  # the memory as stored: the user's words, self-contained, prefixes like "Запомни:" removed
    about: str  # "user", or whom it is about ("sister Ира", "friend Igor")
    kind: str  # identity, work, home, device, schedule, health, preference, plan, person, fact
    key: str | None  # subject key: the same `about` and key → the newer statement supersedes the older
    update: bool  # it says something changed ("moved", "теперь", "upgraded")
    explicit: bool  # the user asked to remember it
    # what was said around it in the same message ("коплю на мот, хочу хонду" before "пока отложено 38к"): embedded
    # with the text, so that a fragment is found by what it is about; not stored
    context: str = ""
    corrects: str = ""  # the text of the statement it says again with a corrected value ("не во вторник, в четверг")


@dataclass(frozen=True)
class ForgetRequest:
    query: str  # what to forget, e.g. "я учу испанский"
    month: int | None = None  # the month he says he told it in: of the memories it names, those said then go


@dataclass(frozen=True)
class Extraction:
    statements: list[Statement]
    forgets: list[ForgetRequest]


def extract(user_messages: list[str], before: str = "", asked: str = "") -> Extraction:
    """`before`: the user's previous message in the conversation, only to know whom a pronoun names; `asked`: the
    assistant's question the first message answers ("Which CAT tool do you work in?" → "memoq mostly"), only as
    the context the answer is found by."""
    statements: list[Statement] = []
    forgets: list[ForgetRequest] = []
    carried = ""
    for number, message in enumerate(user_messages):
        text = _CODE.sub(" ", message or "")
        pasted = len(text) > MAX_MESSAGE_CHARS
        previous, said_before, forgets_said = "", len(statements), False
        before_it = asked if number == 0 else ""
        headline: tuple[str, str, list[Statement]] | None = None  # (its text, the sentence before it, its statements)
        for sentence in _sentences(text):
            query = None if pasted else forget_query(sentence)
            if query is None and previous and not pasted and deletes_what_was_told(sentence, previous):
                query = ""  # "помнишь я про психолога писал? удали это плиз": what the sentence before named
            if query is None and forgets_said and _PRIVACY_REMARK.search(sentence):
                continue  # "…delete the thing about my ex. I'd rather it's not written down anywhere": no fact
            if headline is not None and (query is not None or _REMEMBER.match(sentence)):
                statements.extend(headline[2])
                headline = None
            if query is not None:  # a forget request is never a statement
                forgets_said = True
                if not query and previous:
                    # "Гараж передумал продавать. Это больше не актуально, сотри": the sentence before names it
                    query, statements[said_before:] = topic_of(previous), []
                if query:
                    forgets.append(ForgetRequest(query, month_told(sentence)))
                previous, said_before = "", len(statements)
                continue
            fix = None if pasted else correction(sentence)
            if fix is not None and (fixed := _corrected(statements, fix, before)) is not None:
                # "а не, не во вторник, в четверг": what was just said, said again right; what follows it is read on
                statements = fixed
                sentence = fix.rest
                if not sentence:
                    continue
            previous, said_before = sentence.rstrip(".!… "), len(statements)
            remember = _REMEMBER.match(sentence)
            if remember:
                statements.extend(_statements(remember.group("rest"), explicit=True))
                carried = ""
            elif not pasted:
                found = _statements(f"{carried}, {sentence[:1].lower()}{sentence[1:]}" if carried else sentence, False)
                found = _in_context(found, before_it, sentence)
                found = _there_named(found, statements[said_before - 1 :] if said_before else [], before_it)
                if headline is not None:
                    said_first, found = _after_headline(headline, sentence, found)
                    statements.extend(said_first)
                    headline = None
                if found and _is_headline(sentence):
                    # "I took a new job!! Lumora, fintech here in lisbon…": the news, then what it is; kept as one
                    headline = (sentence.rstrip("!.… "), before_it, found)
                else:
                    statements.extend(found)
                # "Мастерская переехала!! Теперь на Некрасова, 41": too short to keep alone, it says what the next
                # sentence is about.
                short = not found and 0 < len(words(sentence)) < DECLARATIVE_WORDS and "?" not in sentence
                short = short and not sentence.endswith((")", ":"))  # "Thank you, teacher :)": said to the assistant
                # "Perfect. Important thing though — Cian is allergic…": a reaction names nothing that follows
                short = short and not _only_chatter(words(sentence))
                carried = sentence.rstrip("!.… ") if short else ""
            before_it = sentence
        if headline is not None:
            statements.extend(headline[2])
        carried = ""
    last = None
    if before and any(s.about == UNKNOWN for s in statements):  # only a pronoun needs the previous message
        earlier = _said_before(before)
        last = next((s.about for s in reversed(earlier) if s.about not in (USER, UNKNOWN)), None) or next(
            (
                name
                for s in reversed(earlier)
                if (name := named_third_person(s.text)) and _written_as_a_name(name, before)
            ),
            None,
        )  # "Tomasz is from Gdańsk." / "He works at AquaSight": he is Tomasz
    return Extraction(_unique(_resolve_pronouns(statements, last)), forgets)


def _written_as_a_name(word: str, message: str) -> bool:
    """A first name, or a word he wrote capitalized: "league plays thursday nights" and "booking flights home",
    capitalized only as sentences are, name no one a later "she" can be."""
    return morph.given_name(word) or re.search(rf"(?<!\w){re.escape(word)}(?!\w)", message) is not None


def _corrected(statements: list[Statement], fix: Correction, before: str) -> list[Statement] | None:
    """`statements` with the last one holding a value `fix` corrects said again with the new value; one from the
    previous message (`before`) is added as a change of it. None where no statement holds such a value."""
    for i in range(len(statements) - 1, -1, -1):
        text = corrected(statements[i].text, fix)
        if text is not None:
            # (said again in this exchange, it may be stored already: the stored one is corrected too)
            fixed = replace(statements[i], text=text, corrects=statements[i].text)
            return [*statements[:i], fixed, *statements[i + 1 :]]
    for earlier in reversed(_said_before(before) if before else ()):
        text = corrected(earlier.text, fix)
        if text is not None:
            return [*statements, replace(earlier, text=text, update=True, corrects=earlier.text, context="")]
    return None


@lru_cache(maxsize=8)
def _said_before(before: str) -> tuple[Statement, ...]:
    """The previous message's statements, read once for a pronoun and a correction in the same message."""
    return tuple(extract([before]).statements)


HEADLINE_WORDS = 6


_THERE = re.compile(r"(?i)(?<![\w-])(?:там|туда|оттуда|there)(?![\w-])")


def _there_named(found: list[Statement], said: list[Statement], sentence_before: str) -> list[Statement]:
    """ "Маршрут через Барнаул, я там вырос": "there" is the place the clause or sentence before names; the
    memory keeps it ("Я там вырос (Барнаул)"), or "Where did I grow up?" would find a memory that cannot say."""
    out, last = [], _place_named(" ".join([sentence_before, *(s.text for s in said)]))
    for statement in found:
        if last and _THERE.search(statement.text) and not places.places(statement.text):
            statement = replace(statement, text=f"{statement.text} ({last})")
        out.append(statement)
        last = _place_named(statement.text) or last
    return out


def _place_named(text: str) -> str:
    """The last capitalised word of `text` that is a known place ("через Барнаул", "in Galway"), or ""."""
    return next((w for w in reversed(CAPITALIZED_WORD.findall(text)) if places.places(w)), "")


def _is_headline(sentence: str) -> bool:
    """ "Ура, приехал узи!", "Moved in!!", "big news, I took a new job!!": short news whose next sentence says what."""
    return sentence.rstrip().endswith("!") and len(words(sentence)) <= HEADLINE_WORDS


def _after_headline(
    headline: tuple[str, str, list[Statement]], sentence: str, found: list[Statement]
) -> tuple[list[Statement], list[Statement]]:
    """(the headline's own statements, the sentence's) for the sentence after a headline: one memory with it where
    the sentence goes on about the user or no one ("Мы переехали наконец!! Теперь в Мигалово, двушка…"), else each
    its own."""
    text, before, said = headline
    if found and "?" not in sentence and found[0].about in (USER, UNKNOWN):
        merged = _in_context(_statements(f"{text}: {sentence}", False), before, f"{text}: {sentence}")
        if merged:
            return [], merged
    return said, found


# Why a forget request was made, said after it: "не хочу, чтобы это где-то висело", "I'd rather it wasn't stored".
_PRIVACY_REMARK = re.compile(
    r"(?i)не\s+хочу,?\s+чтоб|\brather\s+(?:it|keep|not|that)\b|\bdon'?t\s+want\s+(?:it|that|this)\b|"
    r"\bbetween\s+me\s+and\b|\bwritten\s+down\b|\bhanging\s+around\b|\bstored\b|висел|хранил|храни(?:лось|ть)|"
    r"где(?:[\s-]*то)?\s+записано"
)
CONTEXT_CHARS = 300


def _in_context(found: list[Statement], before: str, sentence: str) -> list[Statement]:
    """`found` with what was said around each: the sentence before, and the rest of its own sentence."""
    out, whole = [], _tidy(sentence).casefold()
    for statement in found:
        own = sentence if statement.text.casefold() != whole else ""
        context = " ".join(part for part in (before, own) if part)[-CONTEXT_CHARS:]
        out.append(replace(statement, context=context) if context else statement)
    return out


def _resolve_pronouns(statements: list[Statement], last: str | None = None) -> list[Statement]:
    """ "У меня брат Глеб. Он пожарный": a statement about "someone" (a pronoun) is about the person named just
    before it (`last`: in the previous message), and says so in its text ("Брат Глеб: Он пожарный")."""
    out, named = [], [last] if last is not None else []  # the people named so far, the last first
    pet: tuple[str, str] | None = None  # the last pet named in this message, and whose it is
    for statement in statements:
        if statement.about == UNKNOWN:
            # "Мама плакала весь вечер. … Без дела он не сидит": "он" is the last one named who can be a "he"
            said = pronoun_gender(statement.text)
            whom = next((p for p in named if said is None or gender_of(p) in (None, said)), None)
            if whom is not None:  # (no one who can be meant: "someone", not the wrong one)
                statement = _said_of(statement, whom, whom)
            elif pet is not None:  # "Были у ветеринара с котёнком. … Теперь он Мурзик": no one named, the pet
                noun, owner = pet
                statement = _said_of(statement, owner, noun)
        elif statement.about not in (USER, UNKNOWN):
            named = [statement.about, *[p for p in named if p != statement.about]]
        elif (newcomer := _introduced_by_name(statement.text)) is not None:
            named = [newcomer, *[p for p in named if p != newcomer]]
        pet = next(((noun, statement.about) for noun in _pets_in(statement.text)), pet)
        out.append(statement)
    return out


# Someone the user's own clause names last, set off or by what they are called: "I've been seeing someone, Aoife",
# "a retired teacher like me, called Duarte", "познакомилась с девушкой, Аней". "Her birthday…" after it is theirs.
_NAMED_LAST_IN_CLAUSE = re.compile(r"(?:,\s+|\b(?:called|named)\s+)(?P<name>[A-ZА-ЯЁ][a-zа-яё]+)\s*(?:[,.;!?—–]|$)")


def _introduced_by_name(text: str) -> str | None:
    found = _NAMED_LAST_IN_CLAUSE.search(text)
    if found is None or not is_name(found.group("name")) or places.places(found.group("name")):
        return None
    return morph.nominative(found.group("name"))


def _said_of(statement: Statement, about: str, label: str) -> Statement:
    """The statement as about `about`, its text naming whom the pronoun means ("Брат Глеб: Он пожарный")."""
    return replace(statement, about=about, text=f"{label[:1].upper()}{label[1:]}: {statement.text}")


def _pets_in(text: str) -> list[str]:
    return [noun for word in words(text) if (noun := relation_noun(word)) in lx.PETS]


# --- sentences and clauses ------------------------------------------------------------------------------------


def _sentences(text: str) -> list[str]:
    out = []
    for part in _SENTENCES.split(text):
        if out and _ABBREVIATION.search(out[-1]):  # "I see a therapist, Dr. Novak, on Wednesdays": one sentence
            out[-1] = f"{out[-1]} {part.strip()}"
            continue
        part = _without_label(_strip_greeting(part.strip().strip("-•*> \t)(")))
        if part:
            out.append(part)
    return out


def _without_label(sentence: str) -> str:
    """ "Quick context about me: I'm Artyom…", "Из новостей: меня повысили…": a few words and a colon before a
    clause of one's own are its label, not a statement.
    Kept: a label naming something ("Update on Lantern Hollow: I ported it to Godot", "Бюджет: 40 тысяч")."""
    match = _LABEL.match(sentence)
    if not match or len(match.group("label").split()) > 5 or _REMEMBER.match(sentence):
        return sentence
    label, rest = match.group("label").split(), sentence[match.end() :]
    if any(word[:1].isupper() for word in label[1:]) or any(word.lower() in _POSSESSIVES for word in label):
        return sentence  # "Мой бюджет: Сбер одобрил 3 млн" is his budget
    if _INTRODUCING_LABEL.search(match.group("label")):
        return sentence  # "Позвольте представиться: Геннадий Аркадьевич…" is the name
    # (only before his own clause: "Новости по здоровью: Ирина Львовна сменила мне препарат" is not hers)
    opens_his_clause = (words(rest) or [""])[0] in lx.FIRST_PERSON
    return rest if opens_his_clause and len(words(rest)) >= MIN_WORDS else sentence


_INTRODUCING_LABEL = re.compile(r"(?i)представ|introduc|знаком|\bname|зовут")
_POSSESSIVES = lx.POSSESSIVES
_LABEL = re.compile(r"^(?P<label>[^:.!?\d]{1,40}):\s+(?=\S)")
_TITLES = r"Dr|Dra|Drs|Mr|Mrs|Ms|Prof|проф|д-р"
_TITLE = re.compile(rf"(?:{_TITLES})\.?\s")
# (a title typed small too: "a therapist, dr. lopes, online")
_ABBREVIATION = re.compile(rf"(?:^|[\s(])(?:(?i:{_TITLES})|St|Jr|Sr|vs|approx|ул|г|им|тов)\.$")


def _strip_greeting(sentence: str) -> str:
    """ "Ha, thanks. …", "Yes, write …", "Quick update: moved …": the openers go, what follows is judged alone."""
    stripped = True
    while stripped and sentence:
        stripped = False
        lowered = sentence.lower()
        for greeting in lx.GREETINGS:
            if lowered.startswith(greeting) and (
                len(sentence) == len(greeting) or not sentence[len(greeting)].isalpha()
            ):
                sentence, stripped = sentence[len(greeting) :].lstrip(" ,!.—-:)("), True
                break
    return sentence


_CONNECTIVE_THEN_NAME = re.compile(r"^\s*(?:and|but|а|и|но)\s+[A-ZА-ЯЁ][a-zа-яё]+")


def _clauses(sentence: str) -> list[str]:
    """Split where a new predicate starts (a first-person word or a Russian first-person verb); a clause
    without its own subject inherits the sentence's person."""
    parts = _CLAUSE.split(sentence)
    clauses = [parts[0]]
    for part in parts[1:]:
        tokens = [t for t in words(part) if t not in lx.CONNECTIVES]
        first = next((t for t in tokens if t not in _TIME_ADVERBS), "")  # "…changed them — now I take…"
        starts_predicate = (
            first in lx.FIRST_PERSON
            or first in ("у",)
            # "…, у него двое сыновей", "У Кости др 9 ноября, а у меня 14 апреля"
            and bool(re.match(r"\s*(?:(?:а|и|но)\s+)?у\s+(?:меня|нас|него|неё|нее|них)\b", part.lower()))
            or bool(_RU_FIRST_PERSON_VERB.match(first) and first != "у")
            or first in lx.PERSON_OPENERS
            or _names_a_subject(tokens)
            or _a_name_and_its_verb(tokens)  # "ellie's 9 and does netball…, josh is 6 and has swimming weds"
            or part.lstrip()[:1].isupper()  # "…: Тимур теперь звукорежиссёр", "…, I moved"
            and not _TITLE.match(part.lstrip())  # "I see a therapist, Dr. Novak, on Wednesdays": who it is
            or bool(_CONNECTIVE_THEN_NAME.match(part))  # "…, а Тёме 7, он ходит на футбол"
            or is_relation(first.split("'")[0])  # "…, wife's name is Olga"
            # "Мы с ним в одном КБ сидели, он сейчас в Обнинске живёт": his clause after the user's clause with him
            # (not "Начальница у меня Лариса, она …": all hers; not "хожу к психотерапевту, она советует…": whom
            # "она" means is only clear when the user's clause already spoke of that person)
            or first in _SUBJECT_PRONOUNS | {"они", "they"}
            and subject_of(clauses[-1]) == USER
            and speaks_of_self(clauses[-1], as_subject=True)
            and bool(set(words(clauses[-1])) & _WITH_THEM or _WITH_SOMEONE.search(clauses[-1]))
        )
        apposition = len(tokens) <= 4 and tokens[:1] in (["my"], ["мой"], ["моя"], ["our"], ["наш"], ["наша"])
        # "Супруга моя, Галина Сергеевна, ей 66 лет": the relation said alone, then who it is
        said = words(clauses[-1])
        apposition = apposition or (
            len(said) <= 2
            and any(is_relation(w) for w in said)
            and all(is_relation(w) or w in _POSSESSIVES for w in said)
        )
        if (
            starts_predicate
            and not apposition
            and len(words(part)) >= MIN_WORDS
            and len(words(clauses[-1])) >= MIN_WORDS
        ):
            clauses.append(part)
        else:
            clauses[-1] = f"{clauses[-1]}, {part}"
    return clauses


def _one_deed_each(sentence: str) -> list[str]:
    """ "swapped the old card for an RTX 3090 and bumped RAM to 128 GB", "переехал в Казань и устроился в Яндекс":
    two things he did on two subjects, each its own statement (a later change of one leaves the other); not
    "Переехали, квартиру продали и купили дом в Медном" (one move)."""
    pieces = _AND_THEN_DID.split(sentence)  # [said, "and", said, "и", said, …]: the connectors as typed
    out = [pieces[0]]
    for connector, piece in zip(pieces[1::2], pieces[2::2], strict=True):
        first = words(piece)[:1]
        did = bool(first) and (first[0].isascii() or morph.past_verb(first[0]))
        keys = _key_said(out[-1]), _key_said(piece)
        if did and None not in keys and keys[0] != keys[1] and len(words(piece)) > MIN_WORDS:
            out.append(piece)
        else:
            out[-1] = f"{out[-1]}{connector}{piece}"
    return out


def _key_said(piece: str) -> str | None:
    statement = _statement(piece, False, inherits_person=True)
    return statement.key if statement is not None else None


_DOER = frozenset({"i", "i'm", "im", "i've", "ive", "we", "we've", "я", "мы"})
_AND_THEN_DID = re.compile(
    r"(\s+(?:and|и)\s+)(?=(?:[a-z]+ed|bought|got|sold|quit|began|left|took|went|became|made|found|lost|won|"
    r"[а-яё]{2,}(?:л|ла|ли|лся|лась|лись))\b)",
    re.IGNORECASE,
)


def _names_a_subject(tokens: list[str]) -> bool:
    """ "phone is a Pixel 7a", "ноутбук — ThinkPad": a known subject with its own verb starts a clause."""
    # "машина у нас — Skoda": a subject, then who has it
    return (
        len(tokens) >= 3
        and tokens[1] in ("is", "are", "was", "это", "теперь", "у")
        and main_key([stem(tokens[0])])[0] is not None
    )


def _a_name_and_its_verb(tokens: list[str]) -> bool:
    """A first name, however written, and a verb of its own after it: "josh is 6", "дима работает в банке"."""
    return (
        len(tokens) >= 3
        and morph.given_name(tokens[0])
        and (tokens[1] in _THEIR_VERBS or morph.third_person_present(tokens[1]) or morph.past_verb(tokens[1]))
    )


_THEIR_VERBS = frozenset({"is", "was", "has", "had", "does", "did", "works", "lives", "goes", "plays", "got", "s"})


# --- one statement ------------------------------------------------------------------------------------------


def _statements(sentence: str, explicit: bool) -> list[Statement]:
    sentence = sentence.strip()
    if not sentence or len(sentence) > MAX_STATEMENT_CHARS and not explicit:
        return []
    sentence = _TAG_QUESTION.sub("", sentence)  # "отвечай коротко, без воды, ладно?" is a wish, not a question
    sentence = _INTRODUCING.sub(
        lambda m: (
            ""
            if _SAYS_THE_NAME.match(sentence, m.end())  # "Позвольте представиться: меня зовут Лидия Андреевна"
            else "Меня зовут "
            if lx.CYRILLIC_LETTER.search(m.group(0))
            else "My name is "
        ),
        sentence,
    )
    if not explicit and _is_question_or_request(sentence):
        given = _GIVEN_THAT.search(sentence)  # "Что приготовить, учитывая, что мама диабетик и пьёт Метформин?"
        sentence = ", ".join(
            part for part in (_said_before_asking(sentence), given and given.group("fact").strip(" ,?!")) if part
        )
        if not sentence:
            return []
    someone = _THIS_IS_SOMEONE.match(sentence)
    if someone and is_relation(someone.group("rel")) and is_name(someone.group("name")):
        # "Это Зоя, соседка, мы с ней 20 лет через забор" introduces the neighbour, not the user: "Соседка Зоя, …"
        said = "My" if someone.group("rel").isascii() else ""
        sentence = f"{said} {someone.group('rel')} {someone.group('name')}{sentence[someone.end() :]}".strip()
        sentence = sentence[:1].upper() + sentence[1:]
    out = []
    here = _NAME_HERE.match(sentence)
    # "Owen here — paramedic, …": the name, then the rest; not "Rent here is €1,450"
    if (
        here
        and here.group("name") not in NOT_NAMES
        and (morph.given_name(here.group("name")) or not _GOES_ON_ABOUT_IT.match(here.group("rest")))
    ):
        out.append(Statement(f"{here.group('name')} here", USER, "identity", "name", False, explicit))
        sentence = here.group("rest").strip()
        if len(words(sentence)) < DECLARATIVE_WORDS:
            return out
    intro = _NAME_FIRST.match(sentence)
    if intro and is_name(intro.group("name")) and intro.group("name") not in NOT_NAMES:
        rest = intro.group("rest").strip()
        age = re.match(r"(\d{1,2})(?:\s*(?:years|y/?o|год|года|лет))?\s*(?:,|\s[—–-])\s*", rest)
        if age:  # "я настя, 27, медсестра": the age goes with the name
            intro_text, rest = f"{intro.group('intro')}, {age.group(1)}", rest[age.end() :]
        else:
            intro_text = intro.group("intro")
        # "я настя, 27, медсестра в областной, отделение кардиологии": the pinned name alone, the job its own memory
        # that a transfer can replace; "меня зовут Геннадий Петрович, можно просто Петрович" stays one
        if len(words(rest)) >= MIN_WORDS and not _ABOUT_THE_NAME.search(rest):
            out.append(Statement(_tidy(intro_text), USER, "identity", "name", False, explicit))
            found = [_statement(clause, explicit, inherits_person=True) for clause in _clauses(rest)]
            first = found[0] if found else None
            if first is not None and first.key is None and _PROFESSION_FIRST.match(first.text):
                found[0] = replace(first, key="job.role", kind="work")  # "I'm Abi, staff nurse on…": who he is at work
            return out + [statement for statement in found if statement is not None]
    first_person_sentence = first_person(sentence)
    # (he is the one who did both: "I moved … and started …", not "She said my pills … and changed them")
    opening = words(OPENERS.sub("", sentence))[:1]
    own = bool(opening) and opening[0] in _DOER or bool(_PAST_EN.match(sentence) or _PAST_RU.match(sentence))
    clauses = [clause for piece in (_one_deed_each(sentence) if own else [sentence]) for clause in _clauses(piece)]
    for index, clause in enumerate(clauses):
        statement = _statement(clause, explicit, inherits_person=index > 0 and first_person_sentence)
        if statement is not None:
            out.append(statement)
    return out


def _statement(clause: str, explicit: bool, inherits_person: bool) -> Statement | None:
    text = _tidy(clause)
    tokens = words(text)
    if (len(tokens) < MIN_WORDS or _only_chatter(tokens)) and not explicit:
        return None  # "Хм, подумаем", "Ок, попробуем": a reaction, with a verb of "we" or not
    if not explicit and (_ASKS_WITH_LI.match(text) or _A_TURN_IN_TALK.match(text) or _asks_in_passing(text, tokens)):
        return None  # "И не мешает ли это беговым нагрузкам" asks; "Ну и вернёмся к бегу" steers the talk
    stems = stems_of(text)
    plain = _ASIDE.sub("", text) or text  # whom it is about is not said in brackets: "(craig would eat a shoe)"
    plain = after_label(plain)
    about = subject_of(plain)
    name = next((m for m in _NAME.finditer(text) if is_name(m.group("name")) and _introduces(m, text)), None)
    if about == "user" and name and name.group("name") not in NOT_NAMES and not mentions_concept(stems):
        return Statement(text, "user", "identity", "name", False, explicit)
    age = _AGE.search(text)
    if about == "user" and age:
        return Statement(text, "user", "identity", "age", says_change(stems), explicit)
    if about == "user" and (not speaks_of_self(plain, as_subject=True) or tokens[0] in _SUBJECT_PRONOUNS):
        about = someone_else(plain)  # "Он … спорит со мной", "She lives in Samara, … when I'm visiting": theirs
    key, kind = main_key(stems)
    if key == "job" and not _STATES_A_JOB.search(text):
        if about == USER:  # "I cycle to work on my Gazelle bike": work named in passing, the bike is the subject
            key, kind = next(((k, c) for k, c in all_keys(stems) if k != "job"), (None, None))
        else:  # "у мамы новости: эндокринолог повысил ей дозу Метформина": a doctor named in health talk is no job
            key, kind = next(((k, c) for k, c in all_keys(stems) if c == "health"), (key, kind))
    if about == USER and key in (None, "job", "salary") and _STATES_A_ROLE.search(text):
        # "Я диспетчер в …", "Started at Yandex": who he is at work, one at a time; what he says of his work
        # ("Работаю сменами 2/2", "Работаю в бюро «Контур»") is the job's other side, and replaces none of it
        key, kind = "job.role", "work"
    if key is None and about == USER and _PROFESSION_AT.match(text):
        key, kind = "job.role", "work"  # "Clinic manager at Meanwood Health Centre, start 20 April": said bare
    if key is None and stops_something(text) and (activity := activity_of(stems)):
        key, kind = f"schedule:{activity}", "schedule"  # "I no longer go bouldering": the climbing schedule ends
    if (
        key == "car"
        and _goes_somewhere(text)
        and not matches_any(stems, _CAR_BRANDS if _BY_CAR.search(text) else _CAR_THINGS)
    ):
        # "ездим на дачу", "Езжу на работу на автобусе", "едем на Алтай … на машине": where one goes, not in what
        key, kind = None, None
    if key in _KEY_NEEDS and not _KEY_NEEDS[key](text):
        key, kind = None, None
    stays = _STAYS_IN.match(text) if key is None else None
    if stays and places.places(stays.group("place")):
        key, kind = "home.city", "home"  # "Я, кстати, в Новосибирске", "Костя теперь в Казани": where they live
    elif key is None and _RENTS.search(text) and (places.places(text) or _DWELLING.search(text)):
        key, kind = "home.city", "home"  # "Теперь снимаем с Лизой двушку на Петроградке", "renting a flat in Porto"
    elif key is None and about == USER and _NEW_HOME.search(text):
        key, kind = "home.city", "home"  # "We finally got the keys to our new flat in Delft"
    wishing = _wishing_words(tokens)
    preference = (
        preference_key([stem(t) for t in wishing])
        if _addresses_answers(wishing) and not _one_off(tokens, stems) and not _AN_ANSWER_GIVEN.match(text)
        else None
    )
    personal = (
        preference is not None
        or explicit
        or about != "user"
        or inherits_person
        or first_person(text)
        or bool(_PAST_EN.match(text) or _PAST_RU.match(text))
        or key is not None
        and kind in ("schedule", "device", "plan")
        or key in ("height", "weight")
        and bool(re.search(r"\d", text))  # "Рост 186", "Вес 80": a measure said bare is one's own
        # Said to a personal assistant, a plain statement with no other subject is about the speaker: "Allergic
        # to penicillin btw", "Виолончель теперь по четвергам", "Live in a flat in Easton".
        or _declarative(tokens)
    )
    if not personal:
        return None
    if preference is not None and about == "user":
        key, kind = preference, "preference"
    if about != "user":
        kind = "person"
    elif key is None:
        kind = "preference" if likes(stems) else "fact"
    return Statement(text, about, kind, key, says_change(stems), explicit)


# A clause asked with "ли" ("не мешает ли это…", "можно ли…", "узнаете ли вы меня"), though it ends with no "?"
_ASKS_WITH_LI = re.compile(r"(?i)^(?:(?:и|а|но|ну|ещё|еще|вот|интересно|не\s+знаю)[,\s]+)*(?:не\s+)?[\w-]+\s+ли\b")
# Steering the conversation: "Ну и вернёмся к бегу", "Давай перейдём к бюджету", "Anyway, let's get back to the plan"
_A_TURN_IN_TALK = re.compile(
    r"(?i)^(?:(?:и|а|ну|так|ладно|ок|окей|and|so|ok|okay|anyway)[,\s]+)*(?:давай(?:те)?\s+)?"
    r"(?:верн[её]мся|перейд[её]м|продолжим)\b"
    r"|^(?:(?:and|so|ok|okay|anyway)[,\s]+)*let'?s\s+(?:get\s+|go\s+)?(?:back|on)\s+to\b"
)


# What the message is about to ask, or the help it asks for: "Вопрос по здоровью", "Ещё вопрос про собаку", "Quick
# question re the van", "Нужна идея подарка сестре", "Need a hand planning something big"
_ANNOUNCES_A_QUESTION = re.compile(
    r"(?i)^(?:(?:и|а|ещё|еще|другой|второй|такой|тут|вот|so|and|another|quick|one\s+more|random)[,\s]+)*"
    r"(?:вопрос(?:ик)?|question|q)(?:\s+(?:такой|не|именно|ещё|еще))*(?:\s+(?:по|про|о|об|насч[её]т|в|about|on|re|for|"
    r"regarding)\b|\s*$)"
    r"|^(?:(?:и|а|ещё|еще|so|and|also)[,\s]+)*(?:мне\s+)?(?:нужна|нужен|нужно|нужны)\s+(?:ваша\s+|твоя\s+)?"
    r"(?:иде[яи]|совет|помощь|подсказка|рецепт)\b"
    r"|^(?:(?:and|so|also)[,\s]+)*(?:i\s+)?need\s+(?:a\s+hand|some\s+help|help|advice|ideas?|a\s+recipe)\b"
)
# A question word, then what to do: "Чё подарить нормальное, не цветы", "Что приготовить на ужин"; "Who flashed it"
_ASKS_WHAT_TO_DO = re.compile(
    r"(?i)^(?:(?:и|а|ну)\s+)*(?:что|чё|че|куда|где|как|какой|какую|какое|какие)\s+(?P<verb>\w+)"
)
_ASKS_EN = re.compile(
    r"(?i)^(?:(?:and|so)\s+)*(?:who|what|which|where|why|how)\s+(?:do|does|did|is|are|was|were|would|should|could|can|"
    r"will|flashed|made|said|told)\b"
)


def _asks_in_passing(text: str, tokens: list[str]) -> bool:
    """A clause that only announces or asks, though the sentence ends with no "?"."""
    if len(tokens) <= 7 and _ANNOUNCES_A_QUESTION.match(text) and not re.search(r"[:—–]", text):
        return True
    asked = _ASKS_WHAT_TO_DO.match(text)
    return bool(asked and morph.infinitive(asked.group("verb"))) or bool(_ASKS_EN.match(text))


def _introduces(match: re.Match, text: str) -> bool:
    """ "Я Марина, ветеринар" introduces her; "Я Лёше должен 50 тысяч" is a debt to Lyosha: after a bare "я" or
    "это" the name ends the phrase."""
    if not match.group(0).lower().startswith(("я", "это")):
        return True
    rest = text[match.end() :].lstrip()
    return not rest or rest[0] in ",.!;:—–-)"


def _wishing_words(tokens: list[str]) -> list[str]:
    """The words that may say a wish about answers: not what was done ("Я ей так и не ответил") unless wished
    ("Хочу, чтобы ты отвечал по-русски"), nor the user's own writing ("Пишу с нового телефона")."""
    return [
        token
        for index, token in enumerate(tokens)
        if not (morph.past_verb(token) and not _SO_THAT & set(tokens[:index]))
        and not (morph.first_person_verb(token) and matches_any([stem(token)], lx.ANSWER_WORDS | lx.PREFERENCE_VERBS))
    ]


_SO_THAT = frozenset({"чтобы", "чтоб"})


def _addresses_answers(tokens: list[str]) -> bool:
    """A wish about how the assistant answers is said to it: an imperative ("Keep answers short", "Отвечай…"),
    "you", or the user's own preference ("I prefer…") — not "he actually answers the phone at night"."""
    first = stem(tokens[0]) if tokens else ""
    return (
        matches_any([first], lx.PREFERENCE_VERBS | lx.REQUEST_WORDS | _WISH_OPENERS)
        # the user as the one who wishes, not as someone else's object ("Olga wants me to write a short paragraph"),
        # with a word of wishing: not "my phone's screen is cracked so I can't even read your answer"
        or any(t in _YOU or t in lx.FIRST_PERSON and t not in _ME for t in tokens)
        and any(t.startswith(_WISHING) for t in tokens)
        # "…, so give code examples in Python": an imperative anywhere, not "he answers the phone" nor "wants me to
        # write"
        or any(
            (
                t in _EN_IMPERATIVES
                and (i == 0 or tokens[i - 1] not in _NOT_AN_IMPERATIVE_AFTER)  # "wants me to write", "your answer"
                and not _one_thing_after(tokens, i)  # "keep it short": the letter
            )
            or _RU_IMPERATIVE.match(t)
            and matches_any([stem(t)], lx.PREFERENCE_VERBS)
            for i, t in enumerate(tokens)
        )
    )


_ME = frozenset({"me", "меня", "мной", "нас"})
_WISHING = tuple(
    """prefer want like love hate need better rather too pleas pls plz only no without always never нрав люб хоч
    хотел удобн предпоч лучш нуж надо слишк бес раздраж ненави пожалуйст плиз давай только без всегда никогда
    не""".split()
)
_NOT_AN_IMPERATIVE_AFTER = frozenset(
    {"to", "will", "would", "should", "can", "could", "'ll", "your", "my", "the", "a", "an", "his", "her", "their"}
)


def _one_off(tokens: list[str], stems: list[str]) -> bool:
    """A wish for one answer, not all: a task asked with a perfective imperative ("накидай шаблон повестки,
    коротко"), or only a length word with no word for answers said to the assistant ("I'm selling myself short")."""
    if any(morph.perfective_imperative(t) for t in tokens):
        return True
    only_length = not matches_any(stems, _ANSWER_NOT_LENGTH)
    told_to_it = any(t in _ASKING or _RU_IMPERATIVE.match(t) for t in tokens)
    return only_length and not told_to_it


_LENGTH_WORDS = frozenset({"short", "коротк", "brief"})
_ANSWER_NOT_LENGTH = lx.ANSWER_WORDS - _LENGTH_WORDS
_PLEASE = frozenset({"please", "pls", "plz", "пожалуйста", "плз", "плиз", "пж"})
_EN_IMPERATIVES = frozenset({"give", "answer", "reply", "respond", "use", "format", "write", "keep", "show"})
_YOU = frozenset({"you", "your", "ты", "тебя", "тебе", "твои", "твой", "вы", "вас", "вам"})
_WISH_OPENERS = frozenset({"keep", "no", "без", "never", "always", "всегда", "никогда", "only", "только", "please"})
_ASKING = _YOU | _EN_IMPERATIVES | _WISH_OPENERS | _PLEASE  # words said to the assistant
_RU_IMPERATIVE = re.compile(r"^[а-яё]{3,}(?:ай|яй|ей|и|ите|айте|яйте)$")  # отвечай, пиши, давайте


def _only_chatter(tokens: list[str]) -> bool:
    """Plain acknowledgements or reactions ("Ok, got it", "Хм, подумаем", "perfect ta x"): never a fact."""
    return all(t in lx.CHATTER for t in tokens)


def _declarative(tokens: list[str]) -> bool:
    """Enough words to say something, not only acknowledgements ("Ладно, подумаю", "Ok, got it"), and not a
    definition of something ("Python is a programming language", "Квантование — это…"): general knowledge."""
    if len(tokens) < DECLARATIVE_WORDS or _only_chatter(tokens):
        return False
    return not any(
        t in _DEFINING and (t not in _DEFINING_EN or following in _DEFINITION_OPENERS)
        for t, following in zip(tokens[1:3], [*tokens[2:4], ""], strict=False)
    )


_DEFINING = frozenset({"is", "are", "means", "refers", "это", "является", "являются", "означает"})
# "Python is a programming language" defines; "The review is on February 26", "Editor is Neovim" tell his facts.
_DEFINING_EN = frozenset({"is", "are", "means", "refers"})
_DEFINITION_OPENERS = frozenset({"a", "an", "the", "one", "when", "how", "what", "to", "used", "basically", "about"})


def _tidy(clause: str) -> str:
    text = " ".join(clause.split()).strip(" ,;:—-")
    text = text.rstrip(".!…").strip()
    return text[:1].upper() + text[1:] if text else text


def _is_question_or_request(sentence: str) -> bool:
    if sentence.rstrip().endswith("?"):
        return True
    tokens = [t for t in words(sentence) if t not in _FILLERS] or words(sentence)  # "Тогда подскажи…"
    if not tokens:
        return True
    first = tokens[0].split("'")[0]  # "what's"
    if _opening_word(tokens) in lx.QUESTION_WORDS and not sentence.rstrip().endswith("."):
        return True
    # "Отвечай коротко" is a standing wish (a preference); "Explain attention, in short" is one request.
    if not _is_request([first]):
        return False
    # "write your answers in Russian", "keep answers short", "Please answer in English from now on": a verb of any
    # task, with a word for answers ("Write me a short poem", "Show me the answer in a table" ask one thing)
    verb_at = 1 if first in _PLEASE and len(tokens) > 1 else 0
    verb = tokens[verb_at]
    wish_verb = (
        matches_any([stem(verb)], lx.PREFERENCE_VERBS)
        or verb in _EN_IMPERATIVES
        and (len(tokens) > verb_at + 1 and not _one_thing_after(tokens, verb_at))
    )
    return not (wish_verb and preference_key([stem(t) for t in tokens]))


_ONE_THING = frozenset({"it", "a", "an", "the", "this", "that", "these", "those", "some"})
_TO_WHOM = frozenset({"me", "us", "him", "her", "them"})


def _one_thing_after(tokens: list[str], verb_at: int) -> bool:
    """ "Write me a short poem", "keep it short": the verb's object is one thing ("answer me in English", "give me
    more detailed answers" are how answers should be)."""
    after = tokens[verb_at + 1 : verb_at + 3]
    if after[:1] and after[0] in _TO_WHOM:
        after = after[1:]
    return bool(after) and after[0] in _ONE_THING


_AND = frozenset({"and", "but"})  # before a question word, not before a wish: "And please keep answers short"


def _opening_word(tokens: list[str]) -> str:
    """The word a part opens with, past "and"/"but" ("and how do i squash…"), without "'s" ("what's")."""
    return tokens[1 if tokens[0] in _AND and len(tokens) > 1 else 0].split("'")[0]


_FILLERS = frozenset({"тогда", "так", "ну", "а", "и", "ok", "okay", "so", "then", "well"})


_A_FIGURE = re.compile(r"\d")


def _said_before_asking(sentence: str) -> str:
    """ "Gaming PC question: I've got an RTX 3060 12GB, will it run…?" → "I've got an RTX 3060 12GB": the
    first-person parts before the question or request starts ("" when there are none)."""
    kept, asked = [], False
    parts = _ASKING_SPLIT.split(sentence.rstrip("?").strip())
    if re.search(r"[^?!]\?\s*$", sentence):  # "cilantro has grown on me??" exclaims
        parts = parts[:-1]  # the last part of a question is what it asks, whatever its first word
    for part in parts:
        tokens = [t for t in words(part) if t not in _FILLERS] or words(part)  # "Тогда подскажи рецепт…"
        opener = _opening_word(tokens) if tokens else ""
        if not tokens or opener in lx.QUESTION_WORDS or opener in _ASKING_OPENERS or _is_request(tokens):
            asked = True
        elif not asked:
            kept.append(part)
        elif tokens[0] in lx.FIRST_PERSON and not sentence.rstrip().endswith("?"):
            # "Help me plan a weekend menu for three, я вегетарианка с 2019 года": said after asking
            kept.append(part)
    # "И подруга Катя, она ветеринар, в июне переезжает в Тбилиси — что подарить ей?": all said about her
    about_someone = bool(kept) and subject_of(kept[0]) not in (USER, UNKNOWN)
    statement = ", ".join(
        part
        for part in kept
        if about_someone
        or first_person(part)
        or mentions_concept(stems_of(part))
        or _PAST_RU.match(part.strip())
        or _A_FIGURE.search(part)  # "щас 85 тыс за 120 квадратов, это норм для твери?": his figure
        or bool(_RU_FIRST_PERSON_VERB.match((words(part) or [""])[0]))  # "беру ему роял канин, мб урезать?"
    )
    return statement if len(words(statement)) >= DECLARATIVE_WORDS else ""


# What a question takes as given is said as a fact: "…, учитывая, что мама диабетик", "…, given that my wife is vegan"
_GIVEN_THAT = re.compile(
    r"(?i)(?:учитывая,?\s+что|с\s+уч[её]том\s+того,?\s+что|given\s+that|considering\s+that)\s+(?P<fact>[^?]{12,})"
)


def _is_request(tokens: list[str]) -> bool:
    # "Write…" asks; "Writing in English today since I'm prepping…" tells what he is doing
    return stem(tokens[0]) in lx.REQUEST_WORDS and not tokens[0].endswith(("ing", "ed"))


_WITH_THEM = frozenset({"ним", "ней", "нею", "ними", "him", "her", "them"})
_WITH_SOMEONE = re.compile(r"\b(?:с|со|with)\s+(?-i:[A-ZА-ЯЁ])")  # "Мы с Валерой…, он…"
_NEW_HOME = re.compile(
    r"\b(?i:new|нов(?:ая|ую|ой|ом|ый|ое))\s+(?i:flat|apartment|house|place|home|квартир\w*|дом\w*|жиль\w*)\s+"
    r"(?i:in|в|во)\s+[A-ZА-ЯЁ]"
    # "Уже неделю в общаге", "moved into the dorm"
    r"|(?i:\b(?:в|во)\s+общаг\w*|\bв\s+общежити\w*|\b(?:in|into)\s+(?:the\s+|a\s+)?(?:dorm|halls)\b)"
    # written small: "получили ключи от новой хаты в академическом", "keys to our new place"; "Квартира своя на
    # уралмаше"
    r"|(?i:\bключи\s+от\s+(?:нов\w+\s+)?(?:хат|квартир|дом)\w*|\bkeys\s+to\s+(?:our|my|the)\s+new\s+\w+"
    r"|\bнов\w+\s+(?:хат|квартир)\w*\s+(?:в|во)\s+[а-яё]{3,}(?:ском|цком|ном|вом|ово|ево|ино|ыно)\b"
    r"|\b(?:сво[яю]\s+(?:квартир|хат)\w*|(?:квартир|хат)\w*\s+сво[яю])\s+(?:в|во|на)\s+[а-яё]{4,})"
    # "Нашёл новую комнату near Ossington station", "Found a room in a 2-bed in Drumcondra"
    r"|(?i:\b(?:found|нашл?[её]?л[аи]?|нашли)\s+(?:a\s+|an\s+|the\s+|нов\w+\s+|new\s+)?(?:room|flat|apartment|place|"
    r"house|комнат\w*|квартир\w*|хат\w*|жиль\w*)\b[^.!?]{0,30}?\b(?:in|near|at|в|во|на|около|возле))\s+[A-ZА-ЯЁ]"
)
_WEIGHT = re.compile(
    r"(?i)(?:вешу|\bвес(?:а|у|ом|е)?\b|weigh|похуд|скинул|сбросил|набрал|lost\s+\d|gained\s+\d|"
    # "минус 9 кг: 109 на весах"
    r"\d[\d.,]*\s*(?:kg|кг)?\s+(?:на\s+весах|on\s+the\s+scales?)|(?:минус|плюс)\s+\d+[.,]?\d*\s*(?:kg|кг|кило)\b|"
    r"(?:i'm|i am|я|мне|down\s+to|up\s+to|до|уже)\s+(?:\w+\s+)?\d+[.,]?\d*\s*(?:kg|кг|кило|lbs?|pounds)\b)"
)
_RENTS = re.compile(r"(?i)\b(?:снима(?:ю|ем|ет|ют)|сняли|снял[аи]?|арендую|арендуем|renting|rented|rent\s+a)\b")
_DWELLING = re.compile(
    r"(?i)\b(?:комнат\w*|квартир\w*|однушк\w*|двушк\w*|тр[её]шк\w*|студи[юя]|flat|room|apartment|house|studio)\b"
)
_HEIGHT = re.compile(r"(?i)\b(?:рост(?:ом)?\s*(?:у\s+меня\s*)?[:—–-]?\s*\d|height|tall)")
_OWNED_BIKE = re.compile(
    r"(?i:\b(?:my|our|мой|моя|мою|моего|моём|моем|свой|свою|своём|своем|bought|got|sold|купил\w*|взял\w*|"
    r"продал\w*))\b|(?<=\s)[A-Z][a-z]+"
)


_GOING_ON = re.compile(r"(?i)\b(?:езж|езд|еха|еду|едем|поед)\w*\s+(?:(?:я|мы)\s+)?на\s+(?P<object>[а-яё-]+)")


def _goes_somewhere(text: str) -> bool:
    """ "ездим на дачу", "езжу на работу": a verb of going, then "на" and a place in the accusative (the vehicle is
    in the prepositional: "езжу на Ниве", "на автобусе")."""
    return any(morph.destination(m.group("object")) for m in _GOING_ON.finditer(text))


_CAR_THINGS = frozenset(w for w in lx.concept_words("car") if w not in lx.DRIVE_WORDS)
_CAR_BRANDS = _CAR_THINGS - {"car", "автомобил", "машин", "легковушк", "тачк"}
_BY_CAR = re.compile(r"(?i)\bна\s+(?:машине|автомобиле|тачке)\b")  # how one goes: no car of one's own is named


def _names_a_place(text: str) -> bool:
    """ "в Казани", "moved to Leeds": a place; not a pet's or a person's name ("У меня живёт хорёк Пончик")."""
    for match in _PLACE.finditer(text):
        word = match.group(0)
        if not word[:1].isupper() or places.places(word):
            return True
        if not (morph.common_noun(word) or word.lower() in lx.GIVEN_NAMES or morph.given_name(word)):
            return True
    return False


# What a key's word must come with to name that subject: "Переехали, новая квартира побольше" is a new flat, not a
# new city; "Рост цен в этом году 9 процентов" is growth, not a height; "мешки по 60 кг", "benched 75kg" are sacks
# and bars, not one's weight; "Повредил колено на велике" names no bike of his (one he owns, names or buys does).
_KEY_NEEDS = {
    "home.city": _names_a_place,
    "height": _HEIGHT.search,
    "weight": _WEIGHT.search,
    "bike": _OWNED_BIKE.search,
}
# Someone "in" a place, and nothing after it: "Я, кстати, в Новосибирске", "Костя теперь в Казани", "I'm in Berlin
# now" (not "Мы в Турции отдыхаем", "Я в Яндексе": no place; the places list decides).
_STAYS_IN = re.compile(
    r"^(?:(?i:я|мы|i'm|i am|we're|we are)|[A-ZА-ЯЁ][a-zа-яё]+)"
    r"(?:,?\s+(?i:кстати|сейчас|теперь|уже|тоже|now|currently|still|всё ещё|все еще)\b,?)*"
    r"\s+(?i:в|во|in)\s+(?P<place>[A-ZА-ЯЁ][\w-]+(?:\s+[A-ZА-ЯЁ][\w-]+)?)"
    r"(?:\s+(?i:now|сейчас|теперь))?\s*(?:[,.;!—–-]|$)"
)
# (not "they": "They only have women's sessions on Mondays, so that's my new climbing schedule" is a gym's)
# (its closing bracket may be gone with the sentence's end; "Priya (my work bestie) has…" says who she is)
_AN_ANSWER_GIVEN = re.compile(r"(?i)^(?:answer|ответ)\s*[:—–-]\s")  # "Answer: maybe one" answers, wishes nothing
_ASIDE = re.compile(r"\s*\((?!(?i:my|our|мо[йяеёи]|наш)\b)[^()]*(?:\)|$)")
_SUBJECT_PRONOUNS = frozenset({"he", "she", "он", "она"})
_TIME_ADVERBS = frozenset({"now", "then", "теперь", "сейчас", "потом"})


def _unique(statements: list[Statement]) -> list[Statement]:
    seen, out = set(), []
    for statement in statements:
        marker = (statement.text.casefold(), statement.about)
        if marker not in seen:
            seen.add(marker)
            out.append(statement)
    return out
