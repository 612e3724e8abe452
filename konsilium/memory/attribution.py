"""Whom a clause is about: the user, one of his people ("my sister Ira", "Мама у меня …"), or someone named.

The deterministic extractor (`extract.py`) asks this module who a statement's subject is before it keys it:
- `subject_of`: a relation or a name in subject position ("My sister Ira lives…", "У моего друга Игоря…",
  "Наташка наша переехала") makes the clause theirs; a gift to the user stays his ("My kids gave me…");
- `someone_else`: a clause with no first person whose subject is a name or a pronoun ("Артём ездит на Kia Rio",
  "Андрей звонил: Миша сменил секцию");
- `first_person` / `speaks_of_self`: whether the user speaks of himself (I, my, я, у меня, бегаю…).
"""

from __future__ import annotations

import re

from ..index.text import STOP_WORDS, analyze, words
from . import lexicon as lx
from . import morph
from .morph import given_name, never_a_name
from .people import CAPITALIZED_WORD
from .records import UNKNOWN, USER

_OBJECT_PRONOUNS = frozenset({"me", "мне", "меня", "мной", "нам", "нас"})

# "Mum called", "Dad's retiring": a parent named by the word alone, as a name is (not "Mum and I went…")
_BARE_KIN_EN = re.compile(
    r"^(?:(?i:right|ok|okay|so|now|anyway)[,\s]+)?"  # "right mum stuff. shes called maureen": what follows is hers
    r"(?P<rel>(?i:mum|mom|dad|mother|father|grandma|granny|grandpa|nan|nana))(?:'?s)?\b(?!,?\s+(?:and\s+)?I\b)"
)
NOT_NAMES = {"Tired", "Fine", "Good", "Sorry", "Ready", "Back", "Here", "Not", "So", "Very", "Just", "Going", "Also"}
# English verbs that open a sentence of one's own with its subject left out ("Took Rasher to a vet", "Dont want
# drama"), capitalized like a name
NOT_NAMES |= {
    w.capitalize()
    for w in """took went got bought made had came saw found left gave told sent ran began felt kept met paid put sold
    spent thought won lost wrote drove flew forgot ate drank slept brought caught taught booked moved started finished
    dont didnt cant wont isnt wasnt havent hasnt doesnt wouldnt couldnt shouldnt im ive ill id theyve theyre weve
    were hes shes youre youve thats whats theres its""".split()
}
# ... and adverbs that open a sentence ("Finally got a Pixel 8": no one called Finally got it)
NOT_NAMES |= {
    w.capitalize()
    for w in """finally eventually honestly basically actually apparently luckily unfortunately fortunately hopefully
    recently literally seriously obviously anyway anyways yesterday today tonight then later now""".split()
}

_RELATION_EN = re.compile(
    r"^(?i:(?:and\s+|also\s+)?(?:my|our)\s+(?:(?:best|old|little|younger|older|elder|big)\s+)?(?P<rel>"
    + "|".join(lx.RELATIONS_EN)
    + r")s?)(?:,?\s+(?P<name>[A-Za-z][a-z]+))?\b",
)
_RELATION_RU = re.compile(
    r"^(?i:(?:а\s+|и\s+|ещё\s+|еще\s+)?(?:у\s+)?(?:мо(?:я|й|и|ё|е|его|ей|ему|ю|ими|им|их)|наш(?:а|и|его|ей|ему|им|их)?)\s+"
    r"(?:(?:лучш|старш|младш)\w*\s+)?(?:бывш\w*\s+(?=коллег|начальни|одноклассни|однокурсни|сосед))?"
    r"(?P<rel>[а-яё]+))(?:,?\s+(?P<name>[А-ЯЁ][а-яё]+))?",
)
# A relation and a name with no possessive, at the start: "Папа Виктор вышел на пенсию", "У брата Антона …".
_RELATION_NAMED = re.compile(
    r"^(?i:(?:а\s+|и\s+)?(?:у\s+)?(?:бывш\w*\s+(?=коллег|начальни|одноклассни|однокурсни|сосед))?"
    r"(?P<rel>[а-яёa-z]+))\s+(?P<name>[A-ZА-ЯЁ][a-zа-яё]+|[а-яё]+(?=[\s,]))"
)
# Someone introduced: "У меня брат Глеб", "Ещё у нас такса Шпрот, ему 6 лет", "I have a sister, Olya".
_INTRODUCED = re.compile(
    r"^(?i:(?:а\s+|и\s+|ещё\s+|еще\s+|also\s+)?(?:у\s+(?:меня|нас)\s+(?:есть\s+)?|i\s+have\s+(?:a\s+|an\s+)?|"
    r"i've\s+got\s+(?:a\s+|an\s+)?|we\s+have\s+(?:a\s+|an\s+)?)(?P<rel>[a-zа-яё]+(?:\s+[a-zа-яё]+)?)),?\s+"
    r"(?:(?i:called|named|по\s+имени)\s+)?(?P<name>[A-ZА-ЯЁ][a-zа-яё]+)\b"
)
# A possessive, any noun and a name: "My crewmate Jonno games…", "Мой напарник Рустам из Уфы".
_POSSESSED_NAMED = re.compile(
    r"^(?:(?i:and|also|а|и|ещё|еще)\s+)?(?i:my|our|мой|моя|моё|мои|наш|наша)\s+(?P<rel>[a-zа-яё]+)\s+(?P<name>[A-ZА-ЯЁa-zа-яё][a-zа-яё]+)\b"
)
# "У Миши тренировки поменяли", "У Сони английский по средам": what someone has.
# (after a short clause or two naming no one: "Тока без арахиса, у Алинки аллергия на арахис")
_AT_NAME = re.compile(
    r"^(?:[^,.;:]{1,40},\s+){0,2}(?:(?i:а|и|ещё|еще)\s+)?(?i:у)\s+(?P<name>[А-ЯЁа-яё][а-яё]+)\s+[а-яёА-ЯЁ\d]"
)  # "У Оли ДР 19 марта"
# "Мама у меня Линда, живёт в Суонси": the relation first, then whose, then the name.
_INTRODUCED_AFTER = re.compile(r"^(?P<rel>[А-ЯЁа-яё]+)\s+у\s+(?:меня|нас)\s+(?:[—–-]\s+)?(?P<name>[А-ЯЁ][а-яё]+)\b")

# Who someone is, then the name: "Мой помощник в мастерской — Лёва", "My new flatmate is Tom".
_NAMED_LAST = re.compile(
    r"^(?i:my|our|мой|моя|моё|наш|наша)\s+(?P<rel>[a-zа-яё]+)(?:\s+[\w-]+){0,3}\s+(?:[—–-]|is|это)\s+"
    r"(?P<name>[A-ZА-ЯЁ][a-zа-яё]+)[.!]?$"
)
# Connectives and openers before a clause's subject.
OPENERS = re.compile(r"^(?:(?:" + "|".join(sorted(lx.CLAUSE_OPENERS | {"so"})) + r")\b[\s,:—–-]*)+", re.IGNORECASE)
# A relation, then whose, with no name: "Мама у меня в Челябинске живёт", "Брат у нас пилот".
_RELATION_FIRST = re.compile(
    r"^(?P<rel>[А-ЯЁа-яё]+)\s+(?:у\s+(?:меня|нас)\b(?!\s+[—–-]?\s*[А-ЯЁ])|(?:мой|моя|мои|наш|наша|наши)\b"
    r"(?:\s+(?P<name>[А-ЯЁ][а-яё]+))?)"
)
# A few words and a colon before a possessive: the label of what follows, not its subject.
_TOPIC_LABEL = re.compile(r"^[^:.!?]{1,40}:\s*(?=(?i:мой|моя|мои|моего|моей|наш|наша|наши|my|our)\b)")
_NAME_OURS = re.compile(r"^(?P<name>[А-ЯЁ][а-яё]+)\s+(?:наш|наша|наши|мой|моя)\b(?!\s+[А-ЯЁ])")  # not "Кот наш Барсик"
_WHOSE = re.compile(r"^(?P<name>[A-ZА-ЯЁ][a-zа-яё]+)'s\s+(?!name\b)")
_WHOSE_TYPED = re.compile(r"^(?P<name>[A-Za-z][a-z]+)'?s\s+(?!name\b|is\b|was\b|has\b)(?=[a-z])")
# "wife's name is Olga", "my dog's name is Rex"
_NAMED_AS = re.compile(
    r"^(?i:(?:and\s+|also\s+)?(?:my\s+|our\s+)?)(?P<rel>[A-Za-z]+)'s\s+name\s+is\s+(?P<name>[A-Z][a-z]+)\b"
)
# "Stas, my apprentice, comes in on Wednesdays", "Муж, Костя, работает…": a name and who they are to the user.
_APPOSITION = re.compile(
    r"^(?P<name>[A-ZА-ЯЁ][a-zа-яё]+),\s+(?i:(?:my|our|мой|моя|наш|наша)\s+)(?P<rel>[a-zа-яё]+(?:\s+[a-zа-яё]+)?),"
)
# Someone else as the subject: "Дима, кстати, обновился — теперь у него RTX 5090", "Anna says she …".
_NAMED_SUBJECT = re.compile(r"^(?P<name>[^\W\d_][^\W\d_A-ZА-ЯЁ]+)\b")  # (letters of any alphabet: "Inês", "tomás")
# Russian verb endings (we-form, impersonal, infinitive) that no name has: "Кормим", "Придётся", "Купить".
_VERB_FORM = re.compile(r"(?:ем|им|ём|ся|сь|ть|ешь|ишь)$")
THIRD_PERSON = frozenset(
    {
        "he",
        "she",
        "his",
        "her",
        "him",
        "they",
        "their",
        "he's",
        "she's",
        "they're",
        "hes",  # typed without the apostrophe: "shes called maureen"
        "shes",
        "theyre",
        "theyve",
        "он",
        "она",
        "его",
        "её",
        "ее",
        "него",
        "неё",
        "нее",
        "ему",
        "ей",
        "они",
        "их",
    }
)

_TOLD = frozenset(
    "сказал сказала велел велела назначил назначила посоветовал посоветовала прописал прописала рекомендовал "
    "рекомендовала told said advised prescribed recommended wants".split()
)


def _for_the_user_to_do(said: list[str]) -> bool:
    """What follows a verb of telling is something to do, not news of theirs: "сказала пить 5000 ме", "told me to
    take 2" (not "сказал, что переезжает", "told me he's moving")."""
    for position, word in enumerate(said[:INSTRUCTION_WORDS]):
        if word in ("что", "чтобы", "that"):
            return False
        if morph.infinitive(word) or word == "to" and position <= 1:
            return True
    return False


INSTRUCTION_WORDS = 6
_SUBJECT_PRONOUNS_RU = frozenset({"он", "она", "они"})
_RU_VERB_1PL = re.compile(r"^[а-яё]{3,}(?:ем|ём|им)$")
_RU_VERB_1SG = re.compile(r"^[а-яё]{3,}(?:аю|яю|юсь|аюсь|яюсь|ую|уюсь|ою|ею)$")  # бегаю, работаю, занимаюсь, рисую


def first_person(text: str) -> bool:
    tokens = words(text)
    return any(
        t in lx.FIRST_PERSON
        or (
            t in lx.RU_FIRST_PERSON_VERBS
            or _RU_VERB_1SG.match(t)
            and not _adjective_ending(t, before)
            or _RU_VERB_1PL.match(t)
            and morph.first_person_plural(t)  # "их как раз откладываем на отпуск": ours
            # (where no one else opens the clause: "Лиза корейский учит, … спорим постоянно")
            and not (given_name(tokens[0]) or relation_noun(tokens[0]))
        )
        and before not in THIRD_PERSON  # "он ушёл"
        for before, t in zip(["", *tokens], tokens, strict=False)
    ) or any(phrase in text.lower() for phrase in ("у меня", "у нас"))


def _adjective_ending(word: str, before: str) -> bool:
    """ "-ую" of "в международную школу", "получил голубую карту": an adjective's, not a verb's ("рисую")."""
    return before in _PREPOSITIONS_RU or word.endswith(("ную", "кую", "гую", "хую")) or bool(_RU_PAST.match(before))


_RU_PAST = re.compile(r"^[а-яё]{2,}(?:л|ла|ло|ли)$")
# After these "-ую" is an adjective's ending ("в международную школу"), not a verb's ("рисую").
_PREPOSITIONS_RU = frozenset({"в", "во", "на", "за", "про", "через", "под", "о", "об", "с", "со", "к", "по"})


def speaks_of_self(text: str, as_subject: bool = False) -> bool:
    """Whether the text is in the first person (I, my, я, у меня, бегаю…); `as_subject`: the user is its subject,
    not only an object ("она мне посоветовала", "told me")."""
    if as_subject:
        text = " ".join(t for t in words(text) if t not in _OBJECT_PRONOUNS)
    return first_person(text)


def someone_else(text: str) -> str:
    """A clause with no first person, whose subject is a name or a third-person pronoun, is about that person."""
    text = OPENERS.sub("", text)  # "Also Sonya is doing gymnastics now"
    if _THEY_TOLD_ME_I.match(text):
        return USER  # "She said with the sun here I can drop the vitamin D to 1000 IU": his regimen, as told him
    text = _HER_NAME_IS.sub("", text)  # "японский у меня по средам, с преподшей, её зовут Юки": his lessons
    reported = _REPORTED.match(text)  # "Андрей звонил: Миша сменил секцию": Misha's news, told by Andrey
    if reported and given_name(reported.group("name")) and is_name(reported.group("told")):
        return morph.nominative(reported.group("told"))
    text = _after_when(text)
    lead = _LEAD_WORD_ANY.match(text)  # "Обратно ильдар подкинул", "Yesterday Tom bought…": when, then who
    if lead and (morph.adverb(lead.group(1)) or lead.group(1).lower() in _WHEN_EN) and is_name(lead.group(2)):
        text = text[lead.start(2) :]
    tokens = words(text)
    named = _NAMED_SUBJECT.match(text)
    if named and lx.DRUG_NAME.match(named.group("name")):
        named = None  # "Лозартан убрала, выписала амлодипин": the medicine first, no one named
    if named and _GIVES_ME.match(text[named.end() :]):
        return USER  # "Also Marina gave me a new phone, iPhone 13": the phone is his
    if named and len(tokens) > 1 and tokens[1] in _OBJECT_OPENERS_EN and not given_name(named.group("name")):
        return USER  # "Put the money towards a John Deere, he…", "Sold the ewes": the user's verb and its object
    unknown = named and not given_name(named.group("name"))
    if unknown and _RU_THIRD_PERSON_VERB.match(named.group("name").lower().replace("ё", "е")):
        named = None  # "Живут они в Екатеринбурге", "Переезжают в августе": a verb, its subject left out
        # (Russian only: "Cerys", "Tess" end like English verbs)
    if named and morph.first_person_verb(named.group("name")):
        return USER  # "Беру ему роял канин для корги": his own verb, whatever name it could also be
    known = {w for w in CAPITALIZED_WORD.findall(text) if given_name(w)}
    if named and not given_name(named.group("name")) and known:
        named = None  # "Новостей куча, секцию, где занималась Соня, закрыли": the known name is the subject
    third = any(t in THIRD_PERSON for t in tokens)
    if third and not named and morph.past_verb(tokens[0]) and not any(t in _SUBJECT_PRONOUNS_RU for t in tokens):
        return USER  # "Занял у него 3.5к до зп", "Подарила ей серьги": his own verb, with them as its object
    # "…, так что теперь она ходит на плавание": she is Sonya; not "у неё развод с Денисом" (him: not the subject)
    # (not after a pronoun opening the clause: "She lives in Harrogate with her dog Hamish" is the one named before)
    opens_with_pronoun = bool(tokens) and tokens[0] in _OPENING_PRONOUNS
    if not named and third and len(known) == 1 and morph.may_be_subject(next(iter(known))) and not opens_with_pronoun:
        return morph.nominative(next(iter(known)))
    relation = _RELATION_OBJECT.match(text)  # "Маму всё-таки устроили в пансионат": done to her, by someone
    if relation and (nominative := relation_noun(relation.group("rel"))):
        return nominative
    if named and given_name(named.group("name")):  # "Артём ездит на Kia Rio"
        return morph.nominative(named.group("name"))
    if named and (named.group("name").lower() in THIRD_PERSON or not is_name(named.group("name"))):
        named = None
    third = any(t in THIRD_PERSON for t in tokens)
    if named and len(tokens) > 2 and tokens[1] in _TOLD and _for_the_user_to_do(tokens[2:]):
        return USER  # "Терапевт сказала дефицит, теперь пить 5000 ме", "The GP told me to take 2": his regimen
    if named and (third or len(tokens) > 1 and tokens[1] in ("says", "said", "говорит", "сказал", "сказала")):
        return morph.nominative(named.group("name"))
    # a Russian name the dictionary mostly reads as another word, then its own verb: "Дана наконец переехала в
    # Montreal" (not "Хозяйка подняла аренду", no name at all)
    if named and morph.name_share(named.group("name")) > 0 and is_name(named.group("name")):
        if any(_RU_THIRD_PERSON_VERB.match(t.replace("ё", "е")) for t in tokens[1:3]) and not first_person(text):
            return morph.nominative(named.group("name"))
    # "Мама у меня рукодельница. Сидит у себя в Ульяновске и вышивает": her, said with no "она"
    said_of_someone = bool(tokens) and morph.third_person_present(tokens[0]) and not first_person(text)
    return UNKNOWN if (third or said_of_someone) and not named else USER


_OPENING_PRONOUNS = _SUBJECT_PRONOUNS_RU | {"she", "he", "they", "she's", "he's", "they're"}
# A pronoun that tells, then the user as the subject of what is told (no other pronoun before him)
_THEY_TOLD_ME_I = re.compile(
    r"(?i)^(?:she|he|they|она|он|они)\s+(?:said|says|told\s+me|сказала?|сказали|говорит|говорят)\b"
    r"(?:(?!\b(?:she|he|they|she's|he's|она|он|они)\b).)*?\b(?:i|я)\b"
)
# To whom, first: theirs ("Сыну Мише семь лет").
_TO_RELATION = re.compile(r"^(?:(?i:а|и|ещё|еще)\s+)?(?P<rel>[А-ЯЁа-яё]+)\s+(?:(?P<name>[А-ЯЁ][а-яё]+)\b)?")
_LEAD_WORD = re.compile(r"^([А-ЯЁа-яё]+),\s+")
# "Important thing though — Cian is allergic…", "Важный момент — Оля не ест глютен": a label before the subject
# (one word before a dash is the subject itself, or its role: "Главврач — Эльмира Фаридовна")
_DASH_LABEL = re.compile(
    r"^(?:[A-Za-zА-ЯЁа-яё]+\s+){1,4}[A-Za-zА-ЯЁа-яё]+\s+[—–]\s+(?=[A-ZА-ЯЁ]|(?i:my|our|мой|моя|мои|наш|наша)\b)"
)


_DONE_TO_USER = re.compile(r"(?i)\b(?:us|me|нас|нам|меня|мне)\b")


def after_label(text: str) -> str:
    """The clause without a label before a dash ("Quick update — I moved") or a first word that names no one."""
    label = _DASH_LABEL.match(text)
    # (not where the rest is done to the user: "change of summer plans — Kostya's brother invited us to Sochi")
    if (
        label
        and not first_person(label.group(0))
        and not any(given_name(w) or relation_noun(w) for w in words(label.group(0)))  # "Оля — моя подруга"
        and not _DONE_TO_USER.search(text, label.end())
    ):
        return text[label.end() :]
    return _without_lead_word(text)  # "Пачкой, катя переехала в Питер": an answer to the question, then the news


def _without_lead_word(text: str) -> str:
    """The clause without a first word, set off by a comma, that names no one ("Перфект, мой бывший, Дима…")."""
    lead = _LEAD_WORD.match(text)
    return text[lead.end() :] if lead and never_a_name(lead.group(1)) else text


_THEIR_NEWS = re.compile(
    r"(?i)(?:^|,\s+)(?:(?:и|а|also|and)\s+)?(?:у\s+)?(?P<rel>[а-яёa-z]+)(?:'?s)?\s+(?:новост\w*|news)\s*:"
)
_LEAD_WORD_ANY = re.compile(r"^([А-ЯЁа-яёA-Za-z]+),?\s+([A-ZА-ЯЁa-zа-яё][a-zа-яё]+)\b")
_WHEN_PHRASE = re.compile(
    r"^(?i:(?:в|во|на|in|on|last|this|next)\s+(?:прошл\w+\s+|эт\w+\s+)?(?:"
    # ("ма" only as май, мая, мае: not "в машине")
    + "|".join(stem + "[ейя]" * (len(stem) < 3) for stem in lx.MONTH_STEMS_RU + lx.MONTHS_EN)
    + r"|выходн|понедельник|вторник|сред|четверг|пятниц|суббот|воскресень|недел|месяц|год|week|weekend|month|year|"
    r"monday|tuesday|wednesday|thursday|friday|saturday|sunday)\w*),?\s+"
)
_WHEN_EN = frozenset({"yesterday", "today", "tonight", "then", "later", "recently", "finally", "eventually", "now"})
_HER_NAME_IS = re.compile(r"(?i),?\s*(?:её|ее|его|их)\s+зовут\s+\w+|,?\s*(?:her|his|their)\s+name\s+is\s+\w+")


def _after_when(text: str) -> str:
    """ "В мае Оля переехала в Тбилиси", "In March my sister moved": when, then who; the clause from who on."""
    when = _WHEN_PHRASE.match(text)
    if when is None:
        return text
    rest = text[when.end() :]
    first = (words(rest) or [""])[0]
    opens_with_someone = is_name(first) or is_relation(first) or first.lower() in lx.POSSESSIVES
    return rest if opens_with_someone else text


def _gift_to_user(match: re.Match, text: str) -> bool:
    """A relation (and name) giving the user something: what is given is his."""
    after_name = match.group("name") and text[match.start("name") - 1 :]
    return bool(_GIVES_ME.match(text[match.end() :]) or after_name and _GIVES_ME.match(after_name))


_GIVES_ME = re.compile(r"\s+(?i:gave|got|bought|sent|gifted|made)\s+me\b")

# A known name and a verb of telling, then someone else's news: "Андрей пишет, что Миша едет на турнир".
_REPORTED = re.compile(
    r"^(?P<name>[A-ZА-ЯЁ][a-zа-яё]+)\s+(?i:звонил|звонила|писал|писала|пишет|написал|написала|говорит|сказал|"
    r"сказала|рассказал|рассказала|says|said|called|texted|wrote|told\s+me)\s*(?:[:,—–-]\s*)+(?i:что\s+|that\s+)?"
    r"(?P<told>[A-ZА-ЯЁ][a-zа-яё]+)\b"
)
# A relation in another case than the subject's, then a verb of "they" with no one named: "Маму устроили в
# пансионат", "Сына перевели в лицей" (not "Маме купила": the user's own verb, its subject left out).
_RELATION_OBJECT = re.compile(r"^(?P<rel>[А-ЯЁ][а-яё]+)\s+(?:[а-яё-]+\s+){0,2}?[а-яё]+(?:ли|ют|ут|ят|ат)\b")
# Words that follow a verb, never a name: "Put the money…", "Got my results".
_OBJECT_OPENERS_EN = frozenset({"the", "a", "an", "my", "our", "his", "her", "their", "its", "some", "this", "that"})
# "I have the Goethe exam", "У меня на Пасху…": no one is introduced after a determiner.
_NOT_RELATIONS = frozenset({"the", "this", "that", "my", "our", "no", "to", "on", "at", "in", "на", "в", "по"})


def subject_of(text: str) -> str:
    """Whom the clause is about: a relation in subject position ("My sister Ira lives…", "У моего друга
    Игоря…") makes it about them; otherwise the user."""
    text = OPENERS.sub("", text)  # "И ещё: у меня дочка Соня, ей 6 лет"
    text = _TOPIC_LABEL.sub("", text)  # "И сплетня напоследок: мой бывший коллега Вадим, говорят, …"
    text = _after_when(text)
    news = _THEIR_NEWS.search(text)  # "И у мамы новости: эндокринолог повысил ей дозу", "Dad news: …"
    if news and (nominative := relation_noun(news.group("rel"))):
        return nominative
    text = _without_lead_word(text)  # "Перфект, мой бывший, Дима, в Москве живёт": a word that names no one, first
    named = _NAME_THEN_VERB_EN.match(text)  # "Kathleen is in Boston, she's my older sister, a retired teacher"
    if named and given_name(named.group("name")):
        return named.group("name")
    whom = _TO_RELATION.match(text)  # "Сыну 5 лет", "а брату 45 размер в подарок", "Сестре нравится Италия"
    if whom and morph.dative(whom.group("rel")) and (rel := relation_noun(whom.group("rel"))):
        if not any(morph.done_or_owned_by_speaker(t) for t in words(text)) and not first_person(text):
            name = whom.group("name")  # "Сыну Мише семь лет": сын Миша
            return f"{rel} {morph.nominative(name)}" if name and given_name(name) else rel
    kin = _BARE_KIN_EN.match(text)  # "Mum called, she's turning 70 … so we're thinking of going there": hers
    if kin:
        return kin.group("rel").lower()
    first = _RELATION_FIRST.match(text)  # "Мама у меня в Челябинске живёт", "Внук мой Миша ходит на плавание"
    if first and (nominative := relation_noun(first.group("rel"))):
        name = first.group("name")
        return f"{nominative} {name}" if name and is_name(name) else nominative
    ours = _NAME_OURS.match(text)  # "Наташка наша таки переехала к морю": our Natashka's move
    if ours and is_name(ours.group("name")):
        return morph.nominative(ours.group("name"))
    whose = _WHOSE.match(text)  # "Tyoma's training moved to Mondays"; not "Rent's £650 each": a thing is
    if (
        whose
        and is_name(whose.group("name"))
        and (text[whose.end() : whose.end() + 1].isalpha() or given_name(whose.group("name")))
        and not first_person(text)
    ):
        return whose.group("name")
    whose = _WHOSE_TYPED.match(text)  # "ellies netball is moving to thursdays", "josh's swimming isnt…": written small
    if whose and given_name(whose.group("name")) and not first_person(text):
        return whose.group("name").capitalize()
    introduced = _INTRODUCED.match(text)
    if introduced and (
        introduced.group("rel").split()[0].lower() in _NOT_RELATIONS or introduced.group("rel")[0].isupper()
    ):
        introduced = None  # "А у меня MacBook Air M2": a brand is no relation
    match = (
        introduced
        or _APPOSITION.match(text)
        or _POSSESSED_NAMED.match(text)
        or _NAMED_AS.match(text)
        or _NAMED_LAST.match(text)
    )
    after = _INTRODUCED_AFTER.match(text)  # "Мама у меня Линда", not "Легковушка у нас Лада Гранта"
    if after and is_relation(after.group("rel")):
        match = match or after
    if match and _gift_to_user(match, text):
        return USER  # "My kids gave me…" ("gave" is no name), "My wife Anna got me a Kindle": his
    if match and is_name(match.group("name")):
        return f"{_relation_word(match.group('rel'))} {morph.nominative(match.group('name'))}"
    at = _AT_NAME.match(text)
    # (what follows in another clause is no first person of this one: "…, в прошлом году скорую вызывали")
    if at and not first_person(text[: at.end()] + re.split(r"[,;]", text[at.end() :])[0]):
        if is_name(at.group("name")):
            return morph.nominative(at.group("name"))
        # "У мамы др 5 мая", "У свекрови 9 апреля юбилей", "У брата Антона Volvo": what a relation has is theirs
        if (rel := relation_noun(at.group("name"))) and rel not in lx.PETS:
            name = re.match(r"\s*([А-ЯЁ][а-яё]+)\b", text[at.end("name") :])
            return f"{rel} {morph.nominative(name.group(1))}" if name and is_name(name.group(1)) else rel
    match = _RELATION_EN.match(text)
    if match and _gift_to_user(match, text):
        return USER  # "My kids gave me a Galaxy S24": the phone is his
    if match:
        rel, name = match.group("rel").lower(), match.group("name")
        named = name and (is_name(name) or _small_name_before_verb(name, text[match.end() :]))
        return f"{rel} {name}" if named else rel
    match = _RELATION_RU.match(text)
    if match and (nominative := relation_noun(match.group("rel"))):
        return f"{nominative} {morph.nominative(match.group('name'))}" if match.group("name") else nominative
    match = _RELATION_NAMED.match(text)
    if match and not is_name(match.group("name")):
        match = None  # "Дочка марина звонила": a known name written small; "Брат хочет …" names no one
    if match and (nominative := relation_noun(match.group("rel"))):  # only with a name: "Другой вариант…" is no friend
        return f"{nominative} {morph.nominative(match.group('name'))}"
    return _bare_relation(text) or "user"


# A relation with no possessive, as the subject: "Муж работает в банке", "Сосед по комнате костя, с 3 курса, …".
# A name and its verb open an English clause: it is theirs, whatever of the user's it names later ("my sister");
# not "Fahy has me on ramipril" (his regimen).
_NAME_THEN_VERB_EN = re.compile(
    r"^(?:(?i:then|and|also|so)\s+)?(?P<name>[A-Z][a-z]+)"
    r"(?:,\s+(?i:my|our)\s+[a-z]+(?:\s+[a-z]+)?,)?"  # "Then Helen, my youngest, is down in Bristol"
    r"(?:\s+(?:is|was|has|lives|works|moved|studies|teaches|taught|retired)\b(?!\s+me\b)"
    r"|'s\s+(?=(?:my|our|in|at|over|down|up|still|now)\b))"  # "Sarah's my eldest, she's in Harrogate"
)
_BARE_RELATION = re.compile(r"^(?P<rel>[А-ЯЁа-яё]+)(?:\s+по\s+[а-яё]+)?(?:\s+(?P<next>[А-ЯЁа-яё][а-яё]+))?[\s,]")


def _bare_relation(text: str) -> str | None:
    """The relation (and name) a clause opens with in the nominative, before a verb of theirs or their name."""
    bare = _BARE_RELATION.match(text)
    if not bare or first_person(text.split(",")[0]) or not morph.nominative_noun(bare.group("rel")):
        return None  # (what the first clause says: "Батя все так же на камазе, шутит, что я тоже туда пойду")
    relation, after = relation_noun(bare.group("rel")), bare.group("next") or ""
    if relation is None:
        return None
    if after and given_name(after) and not third_person_verb(after.lower()):
        return f"{relation} {morph.nominative(after)}"
    if after and (third_person_verb(after.lower()) or morph.nominative_noun(after) and not given_name(after)):
        return relation  # "Муж работает в банке", "Мама диабетик и пьёт метформин": what they do or are
    # "Батя все так же на камазе", "Мама опять в больнице": where they are, after words that change nothing
    return relation if _WHERE_THEY_ARE.match(text[bare.start("next") if after else bare.end() :]) else None


_WHERE_THEY_ARE = re.compile(
    r"(?i)(?:(?:все|всё|так|же|тоже|уже|сейчас|теперь|опять|снова|по-прежнему|до|сих|пор|кстати|вроде)[\s,]+)*"
    r"(?:в|во|на)\s+[а-яё]{3,}"
)


_ENGLISH_VERB = re.compile(r"^(?:is|was|has|had|got|gets|will|can|just|also|still|lives|works|moved|[a-z]+(?:s|ed))$")


def named_third_person(text: str) -> str | None:
    """The name a sentence opens with before a verb of the third person ("Tomasz is from Gdańsk"), if any."""
    tokens = text.split()
    named = _NAMED_SUBJECT.match(text)
    if named and len(tokens) > 1 and is_name(named.group("name")) and named.group("name")[:1].isupper():
        return named.group("name") if third_person_verb(tokens[1].strip(",.:;!?").lower()) else None
    return None


_RU_THIRD_PERSON_VERB = re.compile(r"^[а-яё]{2,}(?:л|ла|ло|лся|лась|ет|ит|[её]т|ется|ится|ут|ют|ат|ят)$")


def third_person_verb(word: str) -> bool:
    """ "is", "works", "moved"; "уволилась", "живёт": a verb whose subject is someone else."""
    return bool(_ENGLISH_VERB.match(word) or _RU_THIRD_PERSON_VERB.match(word.replace("ё", "е")))


def _small_name_before_verb(word: str, after: str) -> bool:
    """ "my best friend danik lives in berlin": a word written small between a relation and a verb is a name."""
    following = words(after)[:1]
    return (
        bool(following)
        and bool(_ENGLISH_VERB.match(following[0]))
        and not _ENGLISH_VERB.match(word.lower())
        and word.lower() not in _OBJECT_OPENERS_EN
        and word.lower() not in lx.FIRST_PERSON
        and word.lower() not in STOP_WORDS
        and not word.lower().endswith("ly")  # "my wife really likes it"
    )


def is_name(word: str) -> bool:
    """A capitalized word that can be someone's name: not a stop word ("Ещё", "The"), not a verb form."""
    return (
        (word[:1].isupper() or given_name(word))  # "im timur, 19", "у рустама др": names written small
        and word not in NOT_NAMES
        and not never_a_name(word)  # "Сегодня мой др": a capital opens every sentence
        and bool(analyze(word))
        and not _VERB_FORM.search(word.lower())
        and not lx.DRUG_NAME.match(word)  # "Лозартан убрала, выписала амлодипин": a medicine, not a name
    )


def relation_noun(word: str) -> str | None:
    """The lexicon's word for one of the user's people or pets: "sister" → "sister", "сестру" / "сестр" (a stem)
    → "сестра"; None for any other word."""
    word = word.lower()
    if word in lx.RELATIONS_EN:
        return word
    return next((nominative for prefix, nominative in lx.RELATIONS_RU.items() if word.startswith(prefix)), None)


def is_relation(word: str) -> bool:
    return relation_noun(word) is not None


def _relation_word(words_: str) -> str:
    """The relation of "my border collie" / "сестру": the lexicon's word, else the last word as said."""
    last = words_.split()[-1].lower()
    return relation_noun(last) or last


_HE = frozenset({"он", "его", "ему", "него", "ним", "нём", "нем", "he", "him", "his", "he's", "hes"})
_SHE = frozenset({"она", "её", "ее", "ей", "неё", "нее", "ней", "she", "her", "hers", "she's", "shes"})


def pronoun_gender(text: str) -> str | None:
    """ "m" or "f" for the first "he" or "she" of a statement (any case), None where it names neither."""
    for token in words(text):
        if token in _HE:
            return "m"
        if token in _SHE:
            return "f"
    return None


def gender_of(about: str) -> str | None:
    """ "m" or "f" where whom `about` names says it (a relation: "мама", "brother Gleb"; a Russian name), else None."""
    for word in re.findall(r"[\w'-]+", about):
        relation = relation_noun(word) or word.lower()
        if relation in lx.FEMININE_RELATIONS:
            return "f"
        if relation in lx.MASCULINE_RELATIONS:
            return "m"
    names = [morph.name_gender(word) for word in re.findall(r"[\w-]+", about)]
    return next((g for g in names if g), None)
