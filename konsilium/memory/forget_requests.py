"""Forget requests in the user's words: "Забудь, что я учу испанский", "Про гараж забудьте", "That stuff about the
overdraft — bin it, would you?", "delete the note about my blood test", "Please don't remember my address".

`forget_query(sentence)` returns what to forget (the words that name it, without "the stuff I told you about"),
or None when the sentence asks nothing of the kind. Verbs that only mean forgetting ("forget", "забудь", "don't
remember") make a request wherever they stand as an imperative; verbs that also name ordinary work ("delete",
"remove", "сотри", "удали": "Delete the old branch first") only with a word for what was said ("the note about",
"то, что я говорил о", "из памяти") or after a topic the user told ("the overdraft stuff — bin it")."""

from __future__ import annotations

import re

from . import lexicon as lx

_OPENERS = (
    r"(?:(?:and|also|oh|so|ok|okay|well|btw|anyway|actually|listen|look|hey|by\s+the\s+way|one\s+more\s+thing|(?:quick|last|other|another)\s+(?:one|thing)|ну|и|а|также|"
    r"can\s+(?:you|u)|could\s+(?:you|u)|would\s+(?:you|u)|можешь|можете|"
    r"кстати|кст|да|ещё|еще|слушай|короче|ладно|ок|в\s+общем|вот|и\s+вот\s+ещё|и\s+вот\s+еще)[,:]?\s+(?:[—–-]\s+)?){0,3}"
)
# the months in full and as people shorten them ("the counselling thing I told you about in feb")
_MONTHS_SAID_EN = "|".join((*lx.MONTHS_EN, "sept", *(m[:3] for m in lx.MONTHS_EN if len(m) > 3)))
_PLEASE = r"(?:please|pls|plz|пожалуйста|плиз|плз|пжлст|пж)"
# Only forgetting: an imperative of these is a request.
_ONLY_FORGET = (
    r"(?:forget|stop\s+remembering|scra(?:tch|p)(?=\s+(?:what|that\s+(?:i|bit|part|thing|stuff)|about|everything|all\s+(?:that|about)|my|"
    r"the\s+(?:thing|stuff|bit|part|note|info|memory)))|nvm(?=\s+(?:the|about|what|my))|"
    r"never\s+mind(?=\s+(?:the|about|what|my))|забудь(?:те)?|"
    r"(?:больше\s+)?не\s+(?:помни|запоминай|храни|вспоминай)(?:те)?|"
    # "не надо это помнить", "no need to keep it"
    r"не\s+надо\s+(?:это\s+|этого\s+|его\s+|е[ёе]\s+|их\s+)?(?:помнить|запоминать|хранить)|"
    r"no\s+need\s+to\s+(?:remember|keep|store)(?:\s+(?:it|that|this))?|"
    r"(?:don'?t|do\s+not|never)\s+(?:remember|keep|store|save)(?=\s+(?:my|about|that\s+i|what\s+i|this|it|that|any|anything|all)\b))"
)
# Also ordinary work: a request only with a word for what was said.
_ALSO_WORK = (
    r"(?:delete|remove|erase|wipe|bin|ditch|drop|clear|discard|disregard|удали(?:те)?|сотри(?:те)?|выкинь(?:те)?|"
    r"убери(?:те)?|вычеркни(?:те)?)"
)
_SAID = (
    r"(?:(?:that\s+|what\s+)?i\s+(?:told\s+(?:you|u)|gave\s+(?:you|u)|said|mentioned|shared|wrote)|"
    r"(?:что\s+)?я\s+(?:рассказывал|говорил|писал|упоминал|сказал)а?)"
)
_TOLD = r",?\s*что\s+я\s+(?:тебе\s+|вам\s+)?\w+"  # "всё, что я тебе ныла про начальницу"
# "the note about", "everything about", "то, что я говорил о", "инфу про", "из памяти": what was said, then its topic.
_SAID_THING = (
    r"(?:(?:all\s+)?(?:the|that|this|my|any)\s+|all\s+)?(?:notes?|things?|stuff|bits?|parts?|info|information|"
    r"memor(?:y|ies)|"
    r"records?|entr(?:y|ies)|facts?|everything|details?)(?:\s+" + _SAID + r")?\s+(?:about|on|regarding|re)\s+"
    r"|what(?:ever)?\s+i\s+(?:told\s+(?:you|u)|said|mentioned|shared|wrote)\s+about\s+"
    r"|(?:(?:инфу|информацию|данные|запись|записи|заметку|всё|все|то)(?:,?\s+" + _SAID + r"|" + _TOLD + r")?"
    r"|" + _TOLD + r")"
    r"\s+(?:про|о|об)\s+"
    r"|про\s+(?=\w)"  # "удали про долг саньку": "про" is about what was said
    r"|(?:из\s+(?:памяти|головы)\s+)"
    # "the knee thing", "the career-switch idea", "историю с Тамарой": a topic, then a word for what was said
    r"|(?:(?:the|that|this|my|all\s+the)\s+)(?=(?:[\w-]+\s+){1,3}(?:thing|stuff|business|bit|idea|story|part)\b)"
    r"|(?:историю\s+(?:с|со|про)|тему|историю)\s+"
    # "удали, сколько я зарабатываю", "forget where I live": what he said, named by its question
    r"|,?\s*(?=(?:сколько|где|как|когда|какой|какая|какие|how\s+much|where|when|what)\s+(?:я|мы|i|we)\b)"
)
_FROM_MEMORY = r"\b(?:from\s+(?:your\s+|the\s+)?memory|из\s+(?:своей\s+|твоей\s+)?(?:памяти|головы))\b"
_VERB_FIRST = re.compile(
    r"^(?:" + _PLEASE + r",?\s+)?" + _OPENERS + r"(?:" + _PLEASE + r",?\s+)?(?:just\s+|actually\s+)?"
    r"(?:"
    + _ONLY_FORGET
    + r"\b|"
    + _ALSO_WORK
    + r"\b\s*(?=(?:,?\s*"
    + _PLEASE
    + r",?\s*)?(?:"
    + _SAID_THING
    + r")|.*"
    + _FROM_MEMORY
    + r"|[^,.;]*\bi\s+(?:gave|told|sent)\s+(?:you|u)\b"  # "delete the gate code I gave you"
    + r"))[\s,:—–-]*"
    r"(?:" + _PLEASE + r"[\s,]+)?(?P<rest>.*)$",
    re.IGNORECASE,
)
# The topic first: "Про X забудь", "That stuff I told you about X — bin it, would you?", "ту тему про X — сотри".
_TOPIC_FIRST = re.compile(
    r"^" + _OPENERS + r"(?:(?:that|the|this|all\s+the|ту|эту|всю)\s+)?(?:stuff|things?|business|bit|part|"
    r"тему|историю|инфу|информацию)?\s*(?:" + _SAID + r"(?:\s+[\w-]+){0,3}?\s+)?"  # "… back in February about"
    r"(?:about|про|об?)\s+(?P<rest>.+?)[,:]?\s*[—–-]*\s+"
    r"(?:(?:so|just|then|и|так\s+что|тоже|too|also)\s+)?(?:"
    + _PLEASE
    + r",?\s+)?(?:(?:вы|ты)\s+)?(?:(?:это|его|её|ее|их)\s+)?(?:тоже\s+)?(?:"  # "про деньги — вы это выкиньте"
    + _ONLY_FORGET
    + r"|"
    + _ALSO_WORK
    + r")"
    r"(?:\s+(?:it|that|this|them|это|её|ее|его|их|вс[её]))?(?:,?\s+" + _PLEASE + r")?(?:[\s,.!?—–-].*)?$",
    re.IGNORECASE,
)
# After a clause, an imperative with its topic: "Это больше не актуально, сотри про абонемент".
_VERB_LATER = re.compile(
    r"(?:[,;:—–]|\s(?:and|so|и|а|так\s+что))\s+(?:" + _PLEASE + r",?\s+)?(?:just\s+|actually\s+)?"
    r"(?:" + _ONLY_FORGET + r"|" + _ALSO_WORK + r")\s+(?:вс[её]\s+|everything\s+)?"
    r"(?:about|про|об?|that(?!\s*(?:[,.!?]|" + _PLEASE + r"\b))|что|" + _SAID_THING + r")\s*(?P<rest>.+)$",
    re.IGNORECASE,
)
_OUTDATED = (
    r"(?:(?:это|that'?s|it'?s|this\s+is|that\s+is|it\s+is)\s+)?(?:уже\s+|всё\s+|больше\s+|no\s+longer\s+|not\s+)?"
    r"(?:не\s+актуально|неактуально|не\s+нужно|relevant|irrelevant|outdated|needed|old\s+news)"
)
# The verb last, after what it names: "А собеседование в «Ветмастере» — это больше не актуально, сотри", "And the
# cardiology thing from March — forget it, it was just a pulled muscle".
_VERB_LAST = re.compile(
    r"^(?P<rest>.+?)\s*(?:[—–-]+|,)\s*(?:"
    + _OUTDATED
    + r"\s*[,.—–-]*\s*)?(?:(?:so|just|then|и|так\s+что|тоже|also)\s+)?"
    r"(?:" + _PLEASE + r",?\s+)?(?:" + _ONLY_FORGET + r"|" + _ALSO_WORK + r")"
    r"(?:\s+(?:it|that|this|them|это|её|ее|его|их|вс[её]))?(?:,?\s+" + _PLEASE + r")?(?:[\s,.!?—–-].*)?$",
    re.IGNORECASE,
)
# Russian puts the object first: "и адрес мой забудь, пожалуйста", "Про ипотеку тоже не запоминай, сотри".
_OBJECT_FIRST = re.compile(
    r"^" + _OPENERS + r"(?P<rest>(?:(?!\bне\b)[\w«»\"'-]+\s+){1,5}?)(?:тоже\s+|также\s+)?"
    r"(?:забудь(?:те)?|сотри(?:те)?|удали(?:те)?)(?:\s+вс[её])?(?:,?\s+" + _PLEASE + r")?(?:[\s,.!?—–-].*)?$",
    re.IGNORECASE,
)
# A request that names nothing: "forget it", "это больше не актуально, сотри", "Забудь об этом".
_NAMES_NOTHING = re.compile(
    r"^(?:" + _OUTDATED + r"|it|that|this|this\s+one|part|bit|(?:that|this)\s+(?:part|bit)|это|этом|этого|об\s+этом|"
    r"про\s+это|всё\s+это|ты|вы|"
    # "удали всё, что я про неё писала": the pronoun names what the sentence before named
    r"(?:про\s+|о\s+|об\s+|about\s+)?(?:не[её]|него|ней|н[её]м|них|him|her|them)|"
    r"(?:удали|сотри|delete|remove|erase)(?:те)?\s+(?:это|его|е[ёе]|их|it|that|this|them)|"
    # why, not what: "…всё про психотерапевта. передумал, это слишком личное, не надо это помнить"
    r"(?:(?:я\s+)?передумал[аи]?|changed\s+my\s+mind|(?:это\s+|it'?s\s+)?(?:слишком\s+|too\s+)?(?:личное|personal))"
    r"(?:[,\s]+(?:(?:я\s+)?передумал[аи]?|changed\s+my\s+mind|(?:это\s+|it'?s\s+)?(?:слишком\s+|too\s+)?"
    r"(?:личное|personal)))*|"
    r"(?:about\s+)?(?:all|any)\s+of\s+(?:it|that|this)(?:,?\s+the\s+lot)?|the\s+lot|all\s+about\s+(?:it|that|this)|"
    r"whatever\s+(?:you'?ve\s+got|you\s+have)(?:\s+(?:on|about)\s+(?:it|that|this))?)?$",
    re.IGNORECASE,
)
# "всё, что касается моей терапии", "everything to do with the loan": what follows names it.
_ABOUT = (
    r",?\s*(?:что|чего)\s+касается\s+|касательно\s+|насч[её]т\s+|(?:related\s+to|concerning|regarding|"
    r"to\s+do\s+with)\s+"
)
_LEAD = re.compile(
    r"^(?:(?:" + _PLEASE + r")[\s,]+)?(?:(?:всё|все|everything)(?:\s+|(?=,)))?"
    # ("what I told you in March about X" before "what I…" as a question naming it: "forget where I live")
    r"(?:"
    + _ABOUT
    + r"|what(?:ever)?\s+i\s+(?:said|told\s+(?:you|u)|mentioned)(?:\s+\w+){0,3}?\s+about\s+|"
    + _SAID_THING
    + r"|about\s+|that\s+|что\s+|про\s+|об?\s+)?",
    re.IGNORECASE,
)
# Words that name no fact: "the whole neighbour business", "the meds stuff I told you".
_NOISE = re.compile(
    r"\b(?:the\s+(?:thing|stuff|bit)\s+(?:with|about|on)|the\s+whole|whole|stuff|things?|"
    r"(?<!\bthe\s)(?<!\bmy\s)(?<!\bour\s)business|thingy|idea|all\s+that|everything|"  # not "leaving the business"
    r"a\s+while\s+(?:back|ago)(?:\s+about)?|(?:can|could|would|will)\s+(?:you|u|ya)|"  # "…, can u forget that"
    # when it was told names nothing: "the counselling I mentioned back in march", "что я весной рассказывала"
    rf"(?:back\s+)?in\s+(?:{_MONTHS_SAID_EN})|в\s+(?:{'|'.join(lx.MONTHS_RU_IN)})|"
    r"весной|летом|осенью|зимой|last\s+(?:week|month|year)|на\s+прошлой\s+неделе|в\s+прошлом\s+месяце|"
    r"(?:that\s+|what\s+)?i\s+(?:ever\s+)?(?:told\s+(?:you|u)|said|mentioned)(?:\s+about)?|"
    r"(?:что\s+)?я\s+(?:тебе\s+|вам\s+)?(?:тогда\s+|там\s+|уже\s+|как-то\s+|когда-(?:либо|то|нибудь)\s+)?"
    r"(?:рассказывал|рассказывала|говорил|говорила|писал|писала|написал|написала)(?:\s+(?:про|о|об))?|"
    r"я\s+(?:тебе\s+|вам\s+)?(?:[\w-]+\s+){1,2}?(?:про|о|об)(?=\s)|"  # "я вам перед отъездом про Зою"
    r"(?:что\s+)?я\s+(?:тебе\s+|вам\s+)?(?:про|о|об)(?=\s)|"  # "что я тебе про зарплату рассказывала"
    r"что\s+я\s+(?:тебе\s+|вам\s+)?(?:\w+\s+){1,2}?(?:про|о|об)(?=\s)|"  # "что я тебе весной про щитовидку"
    r"(?:что\s+)?я\s+(?:тебе\s+|вам\s+)?(?:давал|давала|скидывал|скидывала|присылал|присылала|ныл|ныла)|"
    r"рассказывал|рассказывала|говорил|говорила|писал|писала|написал|написала|упоминал|упоминала|наконец|finally|"
    r"всё|все|вообще|чё|че|кст|слушай|смотри|короче|кароче|блин|типа|ну)\b",
    re.IGNORECASE,
)
_WHY = re.compile(r"\s*[,;]\s+|\s+[—–]\s+|\s+(?:because|since|потому что|так как)\s+")


# A lead-in before a quotation: "Ещё практика: «Пожалуйста, забудь, что…»" asks what the quotation asks.
_QUOTED = re.compile(r"^[\w\s,]{0,40}:\s*[«\"“„]\s*")


# A few words and a colon before the request: "On another note entirely: would you please forget what I told you
# about my therapist?" (a lead-in), "that hospital worry from March: could you forget all about it?" (its topic).
_LEAD_IN_LABEL = re.compile(r"^(?P<label>[^:.!?]{3,80}?):\s+(?=\S)")


def forget_query(sentence: str) -> str | None:
    """What `sentence` asks to forget ("" when it names nothing: "forget it"), or None when it asks no such
    thing."""
    sentence = _QUOTED.sub("", sentence)
    query = _query(sentence)
    label = _LEAD_IN_LABEL.match(sentence) if query is not None else None
    if label is not None and (after := _query(sentence[label.end() :])) is not None:
        # what follows names it, else what the whole said, else the label
        query = after or query or _tidy(re.sub(r"^(?:" + _PLEASE + r")[,\s]+", "", _tidy(label.group("label"))))
    return _with_the_person(query, sentence) if query else query


# "Lyosha paid me back, so drop the thing about his debt": "his" is the person the sentence named before.
_POSSESSIVE = re.compile(r"^(?:his|her|their|его|её|ее|их)\s+", re.IGNORECASE)
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b(?-i:[A-ZА-ЯЁ][a-zа-яё]{2,})\b|^(?-i:[A-ZА-ЯЁ][a-zа-яё]{2,})(?=\s+\w)")


# "И да, про развод — это я тогда на эмоциях ляпнула. Забудь это": the sentence before names it by its topic
_TOPIC_NAMED = re.compile(
    r"^" + _OPENERS + r"(?:про|насч[её]т|about|regarding)\s+(?P<topic>[^,;:—–.!?]+?)\s*(?:[,;:—–]|$)", re.I
)


# "Помните, я вам в феврале про свой вес писала?": what he told, named after "про"
_TOLD_ABOUT = re.compile(
    r"\b(?:я|i)\s+(?:тебе\s+|вам\s+|(?:told\s+)?(?:you|u)\s+)?(?:[\w-]+\s+){0,3}?(?:про|о|об|about)\s+"
    r"(?P<topic>[^,;:—–.!?]+?)(?:\s+(?:писал|писала|написал|написала|рассказывал|рассказывала|говорил|говорила|"
    r"упоминал|упоминала))?\s*(?:[,;:—–.!?]|$)",
    re.I,
)


# "Удали это плиз", "delete that pls": a request only after a sentence that says what he told
_DELETE_THAT = re.compile(
    r"^" + _OPENERS + r"(?:удали|сотри|delete|remove|erase)(?:те)?\s+(?:это|его|е[ёе]|it|that|this)"
    r"(?:,?\s+" + _PLEASE + r")?(?:[\s.!]*$|\s*[,;—–-]\s+.*$)",  # ("сотри это, не прошёл, и вообще не хочу…")
    re.IGNORECASE,
)


def deletes_what_was_told(sentence: str, before: str) -> bool:
    """ "кстати помнишь я про психолога писал? удали это плиз": "delete it" after a sentence telling what he told
    (not "удали это" after a pasted list)."""
    return bool(_DELETE_THAT.match(sentence)) and bool(_TOLD_ABOUT.search(before) or re.search(_SAID, before, re.I))


def topic_of(sentence: str) -> str:
    """What a sentence before "forget it" is about: the topic it opens with ("про развод — …"), or the one he says
    he told ("я вам в феврале про свой вес писала?"), else all of it."""
    # (not a pronoun: "I feel rather guilty about this, I oughtn't to have passed on…")
    named = _TOPIC_NAMED.match(sentence.strip()) or next(
        (m for m in _TOLD_ABOUT.finditer(sentence) if not _NAMES_NOTHING.match(m.group("topic").strip())), None
    )
    if named:
        return named.group("topic")
    # "other thing, and this is a bit awkward — the counselling I mentioned back in march": the part said to be told
    told = [part for part in _WHY.split(sentence.strip()) if re.search(_SAID, part, re.IGNORECASE)]
    return (_tidy(told[0]) or sentence) if told else (_tidy(sentence) or sentence)


def _with_the_person(query: str, sentence: str) -> str:
    if not _POSSESSIVE.match(query):
        return query
    before = sentence[: sentence.find(query)] if query in sentence else ""
    names = [m.group(0) for m in _NAME.finditer(before) if m.group(0).lower() not in _NOT_NAMES]
    return f"{names[-1]} {_POSSESSIVE.sub('', query)}" if names else query


_NOT_NAMES = frozenset({"and", "also", "so", "oh", "please", "forget", "drop", "delete", "и", "а", "забудь", "удали"})


def _query(sentence: str) -> str | None:
    query = _patterned(sentence)
    if query is None:
        query = _french(sentence)
    return query if query is not None else _loose(sentence)


# French: "Oublie ce que je t'ai dit sur mon poids", "Efface de ta mémoire tout ce qui concerne Marc", "Tu peux
# oublier l'histoire avec Léa", "Mon ancien numéro, oublie-le". Not a reminder ("n'oublie pas de…", "oublie pas")
# nor his own forgetting ("j'oublie toujours mes clés"). "efface"/"supprime" also name ordinary work ("supprime la
# colonne B"): a request only with a word for what was said or "de ta mémoire".
_FR_OPENERS = (
    r"(?:(?:et|aussi|alors|bon|ok|okay|au\s+fait|d'ailleurs|sinon|ah|oh|euh|enfin|tiens|par\s+contre|du\s+coup|"
    r"pour\s+finir|dernière\s+chose)[,:]?\s+){0,3}"
)
_FR_PLEASE = r"(?:s'il\s+(?:te|vous)\s+pla[iî]t|stp|svp)"
_FR_ASK = (
    r"(?:(?:tu\s+peux|vous\s+pouvez|peux-tu|pouvez-vous|pourrais-tu|pourriez-vous|merci\s+d'|je\s+veux\s+que\s+tu)"
    r"\s*)"
)
_FR_FORGET = r"(?:oubli(?:er|ez|e)(?!\s+pas\b)|ne\s+(?:retiens|retenez|garde|gardez|m[ée]morise|m[ée]morisez)\s+pas)"
_FR_WORK = r"(?:effac(?:er|ez|e)|supprim(?:er|ez|e)|retir(?:er|ez|e)|enlever|enl[eè]v(?:ez|e)|vir(?:er|ez|e))"
_FR_SAID = (
    r"(?:(?:tout\s+)?ce\s+(?:que\s+je\s+(?:t'|vous\s+)?ai\s+(?:dit|racont[ée]|[ée]crit|mentionn[ée]|confi[ée])|"
    r"qui\s+concerne)|(?:l'|les\s+)info(?:rmation)?s?|la\s+note|le\s+truc|l'histoire|la\s+partie)"
)
_FR_FROM_MEMORY = r"(?:de\s+(?:ta|votre|la)\s+m[ée]moire)"
_FR_ABOUT = r"(?:sur\s+|à\s+propos\s+(?:de\s+|du\s+|des\s+|d')|au\s+sujet\s+(?:de\s+|du\s+|des\s+|d')|concernant\s+)"
_FR_VERB_FIRST = re.compile(
    r"^"
    + _FR_OPENERS
    + r"(?:"
    + _FR_PLEASE
    + r",?\s+)?"
    + _FR_ASK
    + r"?(?:"
    + _FR_FORGET
    + r"|"
    + _FR_WORK
    + r"(?=\s*(?:-le|-la|-les)?\s*,?\s*(?:"
    + _FR_FROM_MEMORY
    + r"|"
    + _FR_SAID
    + r")))(?:-(?:le|la|les|moi))?[\s,]*(?:"
    + _FR_FROM_MEMORY
    + r"[\s,]*)?(?:"
    + _FR_PLEASE
    + r"[\s,]*)?(?:"
    + _FR_SAID
    + r"\s*)?(?:"
    + _FR_ABOUT
    + r"|que\s+|qu')?(?P<rest>.*)$",
    re.IGNORECASE,
)
# What it names first: "Mon poids, oublie (ça)", "Pour Marc — efface tout, stp", "L'histoire avec Léa, oublie-la".
_FR_VERB_LAST = re.compile(
    r"^"
    + _FR_OPENERS
    + r"(?:pour\s+|quant\s+à\s+|concernant\s+)?(?P<rest>.+?)\s*(?:[—–-]+|,)\s*(?:"
    + _FR_PLEASE
    + r",?\s+)?"
    + _FR_ASK
    + r"?(?:l'|le\s+|la\s+|les\s+)?(?:"
    + _FR_FORGET
    + r"|"
    + _FR_WORK
    + r")(?:-(?:le|la|les))?(?:\s+(?:ça|cela|tout|aussi))*(?:,?\s+"
    + _FR_PLEASE
    + r")?[\s.!]*$",
    re.IGNORECASE,
)
_FR_NOISE = re.compile(
    r"\b(?:que\s+je\s+(?:t'|vous\s+)?ai\s+(?:dit|racont[ée]|[ée]crit|mentionn[ée])(?:\s+(?:sur|à\s+propos\s+de))?|"
    rf"en\s+(?:{'|'.join(lx.MONTHS_FR)})|le\s+mois\s+dernier|la\s+semaine\s+dernière|tout)\b",
    re.IGNORECASE,
)


def _french(sentence: str) -> str | None:
    found = _FR_VERB_FIRST.match(sentence.strip()) or _FR_VERB_LAST.match(sentence.strip())
    if found is None:
        return None
    text = _FR_NOISE.sub(" ", found.group("rest"))
    text = re.sub(r"\s+", " ", _WHY.split(text.strip())[0]).strip(" ,.!?—–-")
    text = re.sub(r"^(?:sur|à\s+propos\s+d[eu']?|concernant)\s*", "", text, flags=re.IGNORECASE)
    text = re.sub(r"[\s,]+" + _FR_PLEASE + r"$", "", text, flags=re.IGNORECASE)
    text = re.sub(r"^(?:ça|cela|ceci|le|la|les)$", "", text, flags=re.IGNORECASE)
    return text


_LEAD_IN = re.compile(r"^[^:]{1,40}:\s+(?=\S)")


def _patterned(sentence: str) -> str | None:
    first = _VERB_FIRST.match(sentence)
    if first:
        return _tidy(_first_clause(_without_lead(first.group("rest"))))
    topic = _TOPIC_FIRST.match(sentence)
    if topic:  # all before the verb names it: "про деньги, которые я шурину должен, забудьте"
        return _tidy(topic.group("rest"))
    later = _VERB_LATER.search(sentence)
    # ("same for the money I borrowed, forget that part": "that part" names nothing, what went before does)
    named_later = _tidy(_first_clause(later.group("rest"))) if later else None
    if named_later:
        return named_later
    last = _VERB_LAST.match(sentence) or _OBJECT_FIRST.match(sentence)
    if last:  # ("Хочу попросить Вас об одном: всё, что … про отца Артёма, удалите": what follows the colon)
        return _tidy(_LEAD_IN.sub("", last.group("rest")))
    return named_later


# The verb anywhere, as people say it in passing: "кст гусева можешь забыть, все уладили", "тот код что я давал
# забудь я его поменял", "that money thing with my brother — paid him back, so you can forget about it", "I'd rather
# you didn't keep any of it". Not a reminder ("не забудь купить хлеб") nor one's own forgetting ("I always forget").
_LOOSE_VERB = re.compile(
    r"(?<!\bне\s)\bзабудь(?:те)?\b"
    r"|\b(?:можешь|можете|можно)\s+(?:(?:это|его|её|ее|их|вс[её])\s+)?(?:забыть|удалить|стереть|выкинуть|убрать)\b"
    r"|\b(?:you\s+can|can\s+(?:you|u)|could\s+(?:you|u)|would\s+(?:you|u)|need\s+(?:you|u)\s+to|so|just|"
    + _PLEASE
    + r")\s+(?:just\s+)?(?:forget|delete|wipe|erase|bin|scrap|ditch)\b"
    r"|\brather\s+(?:you\s+)?(?:didn'?t|did\s+not|don'?t|do\s+not|wouldn'?t|not)\s+(?:keep|store|remember|save)\b",
    re.IGNORECASE,
)
# "удали"/"сотри" also name ordinary work ("удали дубли из таблицы"): in passing only with a word for what was said
_LOOSE_WORK = re.compile(
    r"(?<!\bне\s)\b(?:удали|сотри|выкинь|вычеркни)(?:те)?\b|\b(?:drop|delete|remove|erase|wipe|bin|scrap|ditch)\b",
    re.IGNORECASE,
)
_SAID_MARK = re.compile(
    r"(?i)\bчто\s+я\b|\bпро\s|\bi\s+(?:told|mentioned|said|gave)\b|висел|хранил|личное|\b(?:on|off)\s+(?:the\s+)?record\b|"
    r"\b(?:don'?t|do\s+not|not|never)\b[^.]{0,30}\b(?:stored|written\s+down)\b"  # not "the files stored in the cloud"
)
_SELF_FIRST = re.compile(r"(?i)^(?:i|i'm|i've|i'd|im|ive|we|я|мы)\b")


def _loose(sentence: str) -> str | None:
    verb = _LOOSE_VERB.search(sentence)
    if verb is None and _SAID_MARK.search(sentence):
        verb = _LOOSE_WORK.search(sentence)
    if verb is None:
        return None
    # before the verb, its first part names it ("тот код для кооператива что я давал"); a clause of his own there is
    # why ("I've wrapped that up, …, and I'd rather you didn't keep any of it"): then what follows names it
    named = _tidy(_WHY.split(sentence[: verb.start()].strip(" ,;:—–-"))[0])
    if named and not _SELF_FIRST.match(named):
        return named
    after = _tidy(_first_clause(_without_lead(sentence[verb.end() :].strip(" ,;:—–-"))))
    return "" if _SELF_FIRST.match(after) else after


def _without_lead(text: str) -> str:
    """ "из памяти всё, что касается моей терапии" → "моей терапии": every lead word before the topic."""
    for _ in range(3):
        shorter = _LEAD.sub("", text, count=1)
        if shorter == text:
            break
        text = shorter
    return text


def _first_clause(text: str) -> str:
    """`я учу испанский, я бросила` → `я учу испанский`: what to forget, without why; a name for it said after a
    comma stays ("the delicate thing about my health, the urologist story")."""
    first, *rest = _WHY.split(text.strip().rstrip(".!…?"))
    # (the other name first: what follows "I told you" in the first is cut as when it was told)
    if rest and _ANOTHER_NAME_FOR_IT.match(rest[0]):
        return f"{rest[0]} {first.strip()}"
    said_plainer = _I_MEAN.match(rest[0]) if rest else None  # "про больничку, ну про желудок и таблетки"
    return f"{first.strip()} {said_plainer.group('it')}" if said_plainer else first.strip()


_I_MEAN = re.compile(r"^(?:ну|то\s+есть|т\.\s?е\.|i\s+mean|i\.e\.|like)\s*,?\s*(?:про|о|об|about)\s+(?P<it>.+)$", re.I)


_ANOTHER_NAME_FOR_IT = re.compile(
    r"^(?:the|that|this|ту|эту|та|эта)\s+(?:[\w-]+\s+){1,3}(?:story|thing|stuff|business|issue|mess|историю|история|"
    r"тему|тема|штуку|штука)$",
    re.IGNORECASE,
)


_TRAILING = r"\s+(?:too|as\s+well|тоже|также|btw|lol|pls|please|пожалуйста)$"


# "продажи участка, о которой я писал в июне": the topic without the clause that says when it was told
_RELATIVE = re.compile(
    r",?\s+(?:о\s+|про\s+)?котор\w+\s+(?:я\s+)?(?:писал|рассказывал|говорил|упоминал|спрашивал)\w*\b.*$"
    r"|,?\s+(?:which|that)?\s*i\s+(?:gave|told|sent|mentioned(?:\s+to)?)\s+(?:you|u)\b(?!\s+about).*$",
    re.I,
)
# "ту дыру в бюджете на карте, которую я от мужа прятала": after a topic named in full, a relative clause says how
# it was, and the husband is no topic; after a word or two it says which ("деньги, которые я шурину должен")
_CIRCUMSTANCE = re.compile(r"(?P<topic>(?:[\w-]+\s+){3,}[\w-]+),\s+(?:о\s+|про\s+|от\s+)?котор\w+\s.*$", re.I)
_TOPIC_LEAD = re.compile(
    r"^(?:насч[её]т|касательно|regarding|re:?)\s+|^(?:the\s+)?same\s+(?:for|with|goes\s+for)\s+"
    r"|^(?:сведения|данные|информацию|инфу)\s+(?:о|об|про)\s+",
    re.I,
)


def _tidy(text: str) -> str:
    text = text.strip('«»"“”„ ')
    text = _RELATIVE.sub("", text)
    text = _CIRCUMSTANCE.sub(r"\g<topic>", text)
    text = _NOISE.sub(" ", re.sub(_FROM_MEMORY, " ", text, flags=re.IGNORECASE))
    text = re.sub(_TRAILING, "", re.sub(r"\s+", " ", text).strip(" ,.!?"))
    # (a space after it, so that an opener alone goes too: "и удали…" names nothing by "и")
    text = re.sub(r"^" + _OPENERS, "", text.strip(" ,.!?—–-") + " ", flags=re.IGNORECASE).strip(" ,.!?—–-")
    text = _TOPIC_LEAD.sub("", text)
    text = re.sub(r"^(?:то|that|this),?\s+", "", text, flags=re.IGNORECASE)
    text = re.sub(r"\s+(?:" + _ONLY_FORGET + r")$", "", text, flags=re.IGNORECASE)
    return "" if _NAMES_NOTHING.match(text) else text


_MONTH_STEMS = (lx.MONTHS_EN, lx.MONTH_STEMS_RU, lx.MONTHS_FR)
_MONTHS = {stem: number for stems in _MONTH_STEMS for number, stem in enumerate(stems, 1)}
_MONTHS_EN_BY_PREFIX = {month[:3]: number for number, month in enumerate(lx.MONTHS_EN, 1)}
_WHEN_TOLD = re.compile(
    rf"\b(?:in|back\s+in|from)\s+(?P<en>{_MONTHS_SAID_EN})\b|\bв\s+(?P<ru>{'|'.join(lx.MONTH_STEMS_RU)})е\b"
    rf"|\ben\s+(?P<fr>{'|'.join(lx.MONTHS_FR)})\b",
    re.IGNORECASE,
)


def month_told(sentence: str) -> int | None:
    """The month a forget request says the thing was told in ("the interview thing I mentioned back in March",
    "вес, который я в феврале писала"), or None."""
    said = _WHEN_TOLD.search(sentence)
    if said is None:
        return None
    if said.group("en"):
        return _MONTHS_EN_BY_PREFIX[said.group("en").lower()[:3]]
    return _MONTHS[(said.group("ru") or said.group("fr")).lower()]
