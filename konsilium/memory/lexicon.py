"""Words the deterministic extractor knows, in Russian and English, as Snowball stems (`index.text.stem`) or
lower-case surface forms. Kept apart from the rules so that adding a word never touches the logic."""

from __future__ import annotations

import re
from pathlib import Path

# A Cyrillic letter: a word or text written (partly) in Russian.
CYRILLIC_LETTER = re.compile(r"[а-яё]", re.IGNORECASE)

# fmt: off
# Subject keys: (key, kind, stems any of which names the subject). First match wins, so narrower keys come first.
# A key of the form "x:" is completed by the activity found in the sentence (see ACTIVITIES).
CONCEPTS: list[tuple[str, str, frozenset[str]]] = [
    ("laptop.ram", "device", frozenset({
        "ram", "озу", "оператив", "памят"
    })),
    ("gpu", "device", frozenset({
        "geforc", "gpu", "radeon", "rtx", "gtx", "видеокарт", "видюх"
    })),
    ("laptop", "device", frozenset({
        "laptop", "macbook", "thinkpad", "макбук", "ноут", "ноутбук"
    })),
    ("computer", "device", frozenset({
        "comput", "desktop", "workstat", "компьютер", "пк"
    })),
    ("phone", "device", frozenset({
        "iphon", "phone", "айфон", "смартфон", "телефон", "pixel", "galaxy", "samsung", "xiaomi", "redmi", "oneplus",
        "самсунг", "сяоми", "пиксел", "редми", "хонор", "хуавей", "huawei", "honor", "realme"
    })),
    ("car", "device", frozenset({
        "car", "автомобил", "машин", "легковушк", "drive", "вож", "езж", "езд", "skoda", "volvo", "toyota",
        "hyundai", "renault", "volkswagen", "mazda", "nissan", "tesla", "haval", "chery", "geely", "шкод", "вольв",
        "тойот", "хендай", "хундай", "рено", "фольксваген", "мазд", "ниссан", "тесл", "хавейл", "чери", "джили",
        "kia", "киа", "bmw", "бмв", "mercedes", "мерседес", "audi", "ауди", "ford", "форд", "honda", "хонд", "subaru",
        "субар", "mitsubishi", "мицубис", "lexus", "лексус", "peugeot", "пежо", "opel", "опел", "chevrolet", "шевроле",
        "porsche", "порш", "corolla", "королл", "camry", "камр", "solaris", "солярис", "largus", "ларгус", "octavia",
        "октави", "jolion", "джолион", "тачк", "kodiaq", "кодиак", "tundra", "vesta", "веста",
        "нив", "niva", "приор", "priora", "уаз", "uaz", "жигул", "дастер", "duster", "крет", "creta", "lada",
    })),
    ("deadline:", "plan", frozenset({
        "deadlin", "дедлайн", "сдач", "срок", "сдат", "сдать", "due"
    })),
    ("bike", "device", frozenset({
        "bike", "bicycl", "велосипед", "велик", "самокат", "scooter", "электросамокат", "escoot",
        # makers of bikes and scooters, said alone ("Катаюсь на Trek FX 2")
        "trek", "cannondale", "merida", "stels", "brompton", "bianchi", "ninebot", "kugoo",
    })),
    ("schedule:", "schedule", frozenset({
    })),
    ("job", "work", frozenset({
        "analyst", "backend", "career", "designer", "develop", "developer", "doctor", "employ", "engin", "frontend",
        "hire", "job", "manag", "offer", "programm", "promot", "quit", "teacher", "work", "аналитик", "врач",
        "дизайнер", "должност", "инженер",
        "карьер", "менеджер", "методист", "программист", "професс", "профессi", "работ", "работа", "разработчик",
        "уволи", "увольн", "устро", "учител", "контор", "повыс", "intern", "internship", "стажир", "стажёр"
    })),
    ("home.city", "home", frozenset({
        "hometown", "live", "move", "relocat", "жив", "живу", "живут", "живём", "живёт", "жила", "переех", "перебра"
    })),
    ("weight", "health", frozenset({
        "weigh", "kg", "кг", "вес", "вешу", "килограмм", "kilo", "похуд", "скинул", "lbs"
    })),
    ("height", "health", frozenset({
        "height", "tall", "рост"
    })),
    # one's birthday (not exclusive: "У свекрови 9 апреля юбилей" said by the user is no birthday of his own)
    ("birthday", "person", frozenset({
        "birthday", "bday", "рожден", "др", "днюх", "юбиле"
    })),
    ("allergy", "health", frozenset({
        "allerg", "аллерг", "аллергик"
    })),
    ("salary", "work", frozenset({
        "earn", "incom", "salari", "доход", "зарплат", "оклад", "получаю", "получк", "зарабатыва", "заработ"
    })),
    ("medication", "health", frozenset({
        "med", "meds", "medic", "medicin", "medicat", "pill", "tablet", "dose", "dosag", "mg", "mcg", "таблет",
        "лекарств", "препарат", "доз", "дозировк", "мг", "мкг"
    })),
    ("diet", "health", frozenset({
        "allerg", "diet", "eat", "gluten", "lactos", "meat", "sugar", "vegan", "vegetarian", "аллерг", "веган",
        "вегетариан", "глютен", "диет", "лактоз", "мяс", "сахар", "keto", "кето", "carb", "intermitt", "интервальн",
        "голодан", "pescatarian", "пескетариан"
    })),
    ("learning:language", "plan", frozenset({
        "learn", "studi", "изуча", "уч", "учу", "взял", "взялась", "перешл", "switch"
    })),
]

# Long stems too common to show that two statements speak of the same thing.
COMMON_STEMS = frozenset({
    "about", "after", "again", "alway", "becaus", "befor", "could", "every", "first", "group", "morning", "never",
    "other", "their", "there", "thing", "think", "which", "would", "week", "month", "evening", "today",
    "всегд", "когда", "котор", "может", "можн", "нужн", "очень", "посл", "пожалуйст", "сейчас", "тольк", "утром",
    "вечер", "недел", "месяц", "сегодн", "завтр", "работ", "work", "делат", "говор", "сказа",
    # "I want to send him something" is no earlier "sometimes I think…"; "Из новостей: меня повысили" is no
    # "плохие новости — велик увели"
    "someth", "sometim", "anyth", "everyth", "someon", "новост", "news",
    # how it was said, not what about: "Finally found a gym I like" is no earlier "Birthday plans changed, she found
    # cheap flights"; "Also annoying: Helix hasn't paid" no "Small annoying news: the exam moved"
    "final", "found", "annoy", "honest", "proper", "better", "stuff", "remind", "realli", "actual", "pretti",
    "great", "littl", "super", "still", "though", "alreadi", "later", "start", "quick", "excit", "happi",
    "вообщ", "во-втор", "возможн", "приятн", "нормальн", "тысяч", "сорок", "помога", "кстат", "прост", "понятн",
    "быстр",
})
# Words that name a subject only together: "what do I do for a living" is about the job, not where one lives.
PHRASES = {
    "for a living": "job", "по профессии": "профессия", "на жизнь": "работа", "no more": "anymore",
    # news of a change: "These days I ride a Tern", "starting in July my night shifts are…", "got an internship"
    "these days": "nowadays", "starting in ": "nowadays ", "starting from ": "nowadays ", "начиная с ": "наконец ",
    " got a ": " bought a ", " got an ": " bought an ", "started at ": "nowadays at ", "first week at ": "nowadays at ",
    # things named after a car that are no car: "ordered the maxi-cosi car seat"
    "bit the bullet": "decided", "bite the bullet": "decide", "biting the bullet": "deciding",  # no bullet points
    "car seat": "carseat", "car park": "carpark", "car wash": "carwash", "car boot sale": "carbootsale",
}
# Driving is about one's car only with what is driven after it: "driving my Fiesta", "езжу на Ниве", "вожу Largus";
# not "driving time", "the driver medical".
DRIVE_WORDS = frozenset({"drive", "вож", "езж", "езд"})
DRIVEN_OBJECT = frozenset({"my", "a", "an", "the", "our", "на", "мою", "мой", "свою", "свой", "нашу", "наш"})
# Moving house is the subject's own move: "Moved to Kazan", "we moved", "Ellie's moving", not "Bouldering moved".
MOVE_WORDS = frozenset({"move", "relocat", "переех", "перебра"})
OBJECT_OPENERS = frozenset({"the", "my", "our", "a", "an", "his", "her", "their", "all", "it", "them"})

# Only these keys hold one value at a time: a newer statement with the same key replaces the older one.
EXCLUSIVE_PREFIXES = (
    "answer.code", "salary", "name", "age", "job", "home.", "laptop", "gpu", "computer", "phone", "car", "bike",
    "schedule:", "answer.language", "deadline:", "weight", "height",
)

LANGUAGES = frozenset({
    "chines", "english", "french", "german", "italian", "japanes", "languag", "portugues", "spanish", "английск",
    "испанск", "итальянск", "китайск", "немецк", "португальск", "французск", "язык", "японск",
    "polish", "georgian", "dutch", "turkish", "korean", "arab", "hebrew", "czech", "serbian", "greek", "ukrainian",
    "finnish", "swedish", "norwegian", "estonian", "latvian", "lithuanian", "armenian", "kazakh", "hindi", "russian",
    "польск", "грузинск", "голландск", "нидерландск", "турецк", "корейск", "арабск", "иврит", "чешск", "сербск",
    "греческ", "украинск", "финск", "шведск", "норвежск", "эстонск", "латышск", "литовск", "армянск", "казахск",
    "хинди", "русск",
})

# The activity a schedule is about; with a day or time word in the sentence it gives "schedule:<activity>".
ACTIVITIES: dict[str, str] = {
    "tutor": "tutor", "репетитор": "tutor", "lesson": "lessons", "урок": "lessons", "заняти": "lessons",
    "занят": "lessons", "занима": "lessons",
    "class": "lessons", "session": "lessons", "train": "training", "run": "training", "бега": "training",
    "бег": "training", "jog": "training", "тренировк": "training", "трениру": "training", "gym": "training", "зал":
    "training", "meet": "meeting", "sync": "meeting", "call": "call", "звон": "call", "встреч": "meeting", "созвон":
    "call", "standup": "meeting", "планерк": "meeting", "хор": "choir", "choir": "choir", "репетиц": "choir",
    "rehears": "choir", "пою": "choir", "sing": "choir", "плава": "swimming", "swim": "swimming", "бассейн": "swimming",
    "заплыв": "swimming", "йог": "yoga", "yoga": "yoga", "терап": "therapy", "therap": "therapy", "психотерап":
    "therapy", "шахмат": "chess", "chess": "chess", "танц": "dance", "danc": "dance", "boulder": "climbing",
    "боулдеринг": "climbing", "climb": "climbing", "скалолаз": "climbing", "tennis": "tennis", "теннис": "tennis",
    "football": "football", "футбол": "football", "box": "boxing", "бокс": "boxing", "pilates": "pilates",
    "пилатес": "pilates", "cello": "cello", "виолончел": "cello", "guitar": "guitar", "гитар": "guitar",
    "piano": "piano", "фортепиан": "piano", "пианино": "piano", "violin": "violin", "скрипк": "violin",
    "pottery": "pottery", "керамик": "pottery", "гончар": "pottery", "ceram": "pottery"
}
# Activities that only say "a class": a sentence naming one of these and a real activity is about the activity
# ("ceramics class every Wednesday", "занятия по керамике").
GENERIC_ACTIVITIES = frozenset({"lessons"})

DAY_WORDS = frozenset({
    "daili", "even", "friday", "fridays", "monday", "mondays", "morn", "saturday", "saturdays", "sunday", "sundays",
    "thursday", "thursdays", "tuesday", "tuesdays", "wednesday", "wednesdays", "weekend", "weekli", "вечер",
    "воскресен", "вторник", "выходн", "ежедневн", "еженедельн", "понедельник", "пятниц", "сред", "суббот", "утр",
    "четверг"
})

# A schedule statement may omit "tutor": "Lessons moved to Fridays" still names lessons.
ACTIVITY_ALIASES = {
    "lessons": ("tutor",)
}

# Words saying that something changed: the statement replaces what it contradicts.
UPDATE_WORDS = frozenset({
    "anymor", "chang", "extend", "sold", "продал", "cancel", "отмен", "rais", "increas", "lower", "drop", "подня",
    "поднима",
    "повыс", "сниз", "instead", "longer", "move", "moved", "new", "now", "postpon", "quit", "replac", "push",
    "покончен", "закончил", "retir", "пенси", "resched", "stop", "switch", "upgrad", "апгрейд", "больш", "брос",
    "бросил", "вместо", "нов", "обновил", "переех", "перенес", "перенесл", "перешел", "перешл", "поменя", "продлил",
    "сдвин", "сдвинул", "сейчас", "смен", "сменил", "теперь", "уже", "перебра", "переигра", "передума", "пересел",
    "переключ", "заброс", "завяза", "подвину"
})

# More words of change, only for telling at read time which of two memories answering one question is the newer
# value ("bought a Brompton", "finally 1520"): when writing, they would let unrelated news replace old facts.
READ_CHANGE_WORDS = frozenset({
    "bought", "купил", "взял", "final", "ditch", "swap", "instal", "установ", "подключ", "перевел", "избав", "rid",
    "расста", "наконец", "actual", "оказыва", "bump", "slid", "nowaday", "устро", "покрас", "съеха", "воткнул", "grown",
})
# A change that adds ("Now I also swim") rather than replaces, unless it says it replaces ("also … instead").
ADDITION_WORDS = frozenset({"also", "too", "тоже", "также"})
REPLACEMENT_WORDS = frozenset({"instead", "anymore", "вместо", "больше", "ditched"})
REPLACEMENT_STEMS = frozenset({"switch", "swap", "replac", "sold", "продал", "смен", "поменя", "переех"})

# First words of requests to the assistant: not statements about the user.
REQUEST_WORDS = frozenset({
    "answer", "calcul", "can", "check", "compar", "could", "creat", "describ", "draft", "explain", "find", "fix",
    "generat", "give", "help", "imagin", "let", "list", "make", "pleas", "recommend", "rewrit", "show", "suggest",
    "summar", "tell", "translat", "would", "write", "давай", "дай", "исправ", "можеш", "можн", "найд", "напиш",
    "объясн", "опиш", "ответ", "отвеча", "перевед", "перепиш", "подскаж", "покаж", "помог", "посоветуй", "посчита",
    "предлож", "представ", "придума", "провер", "расскаж", "сдела", "состав", "сравн", "посовет", "порекоменд",
    "скаж", "advis"
})

QUESTION_WORDS = frozenset({
    "are", "did", "do", "does", "how", "is", "what", "when", "where", "which", "who", "whom", "whose", "why", "где",
    "зачем", "как", "какая", "какие", "каков", "какой", "когда", "кто", "куда", "ли", "откуда", "почему", "сколько",
    "чем", "что", "какую", "каким", "какое", "какого", "каких", "какой-нибудь", "стоит", "можно", "нужно", "надо",
    "should", "can", "could", "would", "will", "any"
})

GREETINGS = (
    "hi", "hello", "hey", "привет", "здравствуй", "здравствуйте", "добрый день", "доброе утро", "добрый вечер",
    "good morning", "good evening",
    # acknowledgements and openers that carry no fact: "Yes, write…" is a request, "Quick update: moved…" a move
    "quick update", "update", "got it", "yes", "yeah", "yep", "nah", "ok", "okay", "ок", "окей", "ha", "haha", "thanks",
    "thank you", "cool", "great", "figured", "good", "да", "ну", "ладно", "отлично", "хорошо", "спасибо",
    "понятно", "ясно", "ага", "кстати", "btw", "big news", "понял", "поняла", "ещё", "еще", "всё", "короче",
    "новости", "новость", "news",
    # interjections: "Oh, and Owain rang…" is about Owain, not someone called "Oh"
    "oh", "ah", "wow", "ugh", "hmm", "lol", "well", "anyway", "cheers", "супер", "класс", "круто", "ой", "ох", "ах",
    "эх", "блин", "слушай", "короч", "кароч", "sorry", "sry", "soz",
)
# Words joining a clause to the one before: not its subject ("…, and my sister…", "Also Sonya's class moved…").
CONNECTIVES = frozenset({"and", "also", "but", "и", "а", "но"})
# What may open a clause before its subject: a connective, or an opener a sentence loses (GREETINGS) but a clause
# inside it keeps.
CLAUSE_OPENERS = CONNECTIVES | {"ещё", "еще", "кстати", "btw", "спс", "спасибо", "thanks", "thx", "fun fact"}
# Interjections a short sentence may carry into the next one: "Ха. Мой бывший коллега Вадим…"
CLAUSE_OPENERS |= {"ха", "хаха", "ахах", "хм", "ого", "эх", "ух", "haha", "lol", "wow", "hmm", "oh"}
# Plain acknowledgements or reactions, never a fact: a clause made only of these is dropped.
CHATTER = frozenset({
    "ok", "okay", "thanks", "thank", "you", "good", "great", "cool", "nice", "sure", "fine", "got", "it", "idea",
    "ок", "спасибо", "понятно", "ладно", "подумаю", "идея", "хорошо", "отлично", "так", "и", "поставлю", "сделаю",
    "понял", "поняла", "может", "быть", "потом", "иногда", "да", "это",
    # thanks as they are typed: "lush thank u", "Благодарю, очень чётко", "perfect ta x"
    "u", "ya", "ta", "x", "xx", "thx", "perfect", "lush", "brilliant", "lovely", "awesome", "amazing", "so", "much",
    "благодарю", "спс", "пасиб", "пасибо", "очень", "чётко", "четко", "супер", "класс", "круто", "норм", "огонь",
    "again", "снова", "pet", "love", "dear",  # "Hello again.", "Thanks pet."
    "хм", "хмм", "подумаем", "посмотрим", "попробуем", "увидим", "разберёмся", "разберемся",  # "Хм, подумаем"
})

FIRST_PERSON = frozenset({
    "i", "i'd", "i'll", "i'm", "i've", "im", "me", "mine", "my", "our", "we", "we're", "меня", "мне", "мной", "мое",
    "моего", "моей", "мои", "моих", "мой", "моя", "моё", "мы", "нам", "нас", "наш", "наша", "наше", "наши", "я"
})

# Relations that make a statement about someone else, with the word used for `about`.
RELATIONS_EN = (
    "sister", "brother", "friend", "wife", "husband", "mother", "mom", "mum", "father", "dad", "son", "daughter",
    "boss", "colleague", "partner", "girlfriend", "boyfriend", "neighbor", "neighbour", "cousin", "aunt", "uncle",
    "grandmother", "grandfather", "grandma", "grandpa", "manager", "coach", "tutor", "teacher", "doctor", "kid",
    "child", "dog", "cat", "puppy", "kitten", "pet", "grandson", "granddaughter", "grandchild", "ex", "parents",
    "nephew", "niece", "roommate", "flatmate", "housemate", "crewmate", "apprentice", "assistant", "teamlead",
    "lead", "coworker", "supervisor", "landlord", "landlady", "fiancee", "fiancée", "fiance", "mums", "moms",
)

RELATIONS_RU: dict[str, str] = {
    "сестр": "сестра", "брат": "брат", "друг": "друг", "друз": "друг", "подруг": "подруга", "подруж": "подруга",
    "жен": "жена", "муж": "муж", "мам": "мама", "мат": "мать", "пап": "папа", "отц": "отец", "отец": "отец",
    "батя": "папа", "бати": "папа", "батю": "папа", "батей": "папа",  # (not "бат": "батарея", "батон")
    "сын": "сын", "доч": "дочь", "супруг": "супруг",
    "начальни": "начальник", "коллег": "коллега", "партн": "партнёр", "девушк": "девушка", "парн": "парень",
    "сосед": "сосед", "бабушк": "бабушка", "дедушк": "дедушка", "тёт": "тётя", "тет": "тётя", "дяд": "дядя",
    "тренер": "тренер", "репетитор": "репетитор", "ребён": "ребёнок", "ребен": "ребёнок",
    # pets ("кот" and "пес" are left out: they begin "который", "песня")
    "собак": "собака", "пёс": "пёс", "щен": "щенок", "кошк": "кошка", "котик": "кот", "котён": "кот", "котен": "кот",
    "питом": "питомец",
    "внук": "внук", "внучк": "внучка", "бывш": "бывший", "родител": "родители", "племянни": "племянник",
    "шурин": "шурин", "зят": "зять", "свекров": "свекровь", "тёщ": "тёща", "тещ": "тёща", "невестк": "невестка",
    "помощни": "помощник",
}

# The pets among the relations (RELATIONS_EN, RELATIONS_RU's words): whom "он" can mean when no person can be meant.
PETS = frozenset({"собака", "пёс", "щенок", "кошка", "кот", "питомец", "dog", "cat", "puppy", "kitten", "pet"})

# Whom "she" or "he" can mean: "Мама плакала весь вечер. … Без дела он не сидит" is not the mother.
FEMININE_RELATIONS = frozenset({
    "мама", "мать", "сестра", "жена", "дочь", "подруга", "девушка", "бабушка", "тётя", "внучка", "свекровь", "тёща",
    "невестка", "mum", "mom", "mother", "sister", "wife", "daughter", "girlfriend", "grandma", "grandmother", "aunt",
    "niece", "granddaughter", "fiancee", "fiancée", "landlady", "mums", "moms",
})
MASCULINE_RELATIONS = frozenset({
    "папа", "отец", "брат", "муж", "сын", "парень", "дедушка", "дядя", "внук", "зять", "шурин", "племянник", "dad",
    "father", "brother", "husband", "son", "boyfriend", "grandpa", "grandfather", "uncle", "nephew", "grandson",
    "fiance",
})

# Common Russian first-person verbs the endings rule (-аю, -яю, -юсь, -ую) misses.
RU_FIRST_PERSON_VERBS = frozenset({
    "бегу", "вожу", "говорю", "готовлю", "еду", "езжу", "ем", "живу", "иду", "курю", "люблю", "могу", "ношу",
    "пишу", "плаваю", "пью", "работаю", "сижу", "слушаю", "смотрю", "сплю", "учу", "ушел", "ушёл", "хожу", "хочу",
    "пою", "живем", "живём", "едем", "идем", "гуляем", "работаем", "ездим", "ходим", "учимся", "держим"
})

# A clause starting with one of these starts a statement of its own ("…, and my friend Dima bought …").
PERSON_OPENERS = frozenset({
    "our", "наш", "наша", "наши", "нашего", "нашей",
    "my", "мое", "моего", "моей", "мои", "мой", "моя", "моё"
})

# Words kept as written, not stemmed: "пишу" (the user's own writing: "Пишу в основном на Go") is not "пиши" (how
# answers should be written), and work shifts ("Работаю сменами 2/2") are no change ("сменил"), though each pair
# stems alike.
UNSTEMMED = frozenset({
    "пишу", "смена", "смены", "смене", "смену", "сменой", "сменами", "сменам", "сменах"
})

# How the user wants answers.
ANSWER_WORDS = frozenset({
    "answer", "brief", "bullet", "detail", "emoji", "format", "repli", "respond", "short", "коротк", "ответ",
    "отвеча", "пиш", "подробн", "списк", "формат", "эмодзи"
})
# ... of those, the ones saying answering itself: beside lessons only they make a wish about answers ("I've started
# Portuguese lessons…, she has set us a short paragraph to write" is no wish to be answered short, in Portuguese)
ANSWERING_WORDS = frozenset({"answer", "repli", "respond", "ответ", "отвеча", "пиш"})
LESSON_WORDS = frozenset({
    "lesson", "class", "cours", "tutor", "teacher", "exam", "урок", "курс", "репетитор", "препод", "экзамен",
})

# Sides of how answers should be, each holding one wish at a time: a newer wish on one replaces the older
# ("отвечай коротко" → "давай поменяем: разворачивай подробно"); wishes on different sides stand together.
ANSWER_AXES = {
    "length": frozenset({
        "коротк", "кратк", "brief", "short", "concis", "лаконич", "подробн", "развернут", "разворачива", "detail",
        "длинн", "long", "простын", "предложен", "sentenc", "verbos", "terse"
    }),
    "emoji": frozenset({"emoji", "эмодзи", "смайл", "smiley"}),
}

CODE_WORDS = frozenset({
    "code", "snippet", "код", "кода"
})

EXAMPLE_WORDS = frozenset({
    "c++", "exampl", "go", "java", "javascript", "kotlin", "python", "rust", "scala", "sql", "typescript", "пример"
})

# Request verbs that state a standing wish about answers ("отвечай коротко", "give code examples in Python").
PREFERENCE_VERBS = frozenset({
    "answer", "format", "give", "repli", "respond", "use", "дава", "давай", "используй", "ответ", "отвеча", "пиш"
})

# fmt: on

# fmt: off
# Professions, as word beginnings: "I'm a sound engineer", "я продуктовый дизайнер", "Работаю су-шефом".
PROFESSIONS_EN = (
    "accountant", "analyst", "architect", "artist", "barista", "chef", "consultant", "cook", "dentist",
    "designer", "developer", "director", "doctor", "driver", "editor", "electrician", "engineer", "founder",
    "journalist", "lawyer", "lecturer", "manager", "marketer", "mechanic", "medic", "nurse", "officer", "owner",
    "paramedic", "pharmacist", "photographer", "pilot", "plumber", "professor", "programmer", "researcher", "head of",
    r"lead(?![a-z])",  # (regular expressions: "team lead", not "I'm leading the workshop")
    "scientist", "teacher", "tester", "translator", "trucker", "vet", "writer", "co-owner",
    r"dev(?![a-z])", r"qa(?![a-z])", "intern", "midwife", "receptionist", "cashier", "courier", "freelancer",
    "illustrator", "estimator", "bartender", "waiter", "waitress", "carpenter", "surgeon", "psychologist",
    "economist", "clerk", "secretary", "technician", "specialist", "coordinator", "administrator", "recruiter",
)
PROFESSIONS_RU = (
    "инженер", "разработчик", "программист", "дизайнер", "аналитик", "учител", "преподавател", "врач", "медсестр",
    "фельдшер", "повар", "шеф", "су-шеф", "менеджер", "архитектор", "юрист", "бухгалтер", "переводчи", "писател",
    "исследовател", "консультант", "водител", "дальнобойщик", "пилот", "ветеринар", "фармацевт", "стоматолог",
    "художни", "фотограф", "маркетолог", "тестировщик", "администратор", "основател", "владел", "совладел",
    "бариста", "электрик", "механик", "журналист", "редактор", "методист", "продав", "директор", "руководител",
    "тимлид", "диспетчер", "реставратор", "керамист", "тренер", "парамедик",
    "стажер", "стажёр", "лаборант", "курьер", "иллюстратор", "сметчик", "главбух", "кассир", "официант", "бармен",
    "экономист", "психолог", "логист", "юрисконсульт", "специалист", "ассистент", "секретар", "технолог", "слесар",
    "сварщик", "хирург", "акушер", "кондитер", "парикмахер", "оператор", "рекрутер", "инструктор",
)
# fmt: on

# fmt: off
# Common given names (and Russian short forms) in the nominative: a clause opening with one is about that person
# ("Артём ездит на Kia Rio", "Anna teaches piano"), even with no pronoun to say so.
GIVEN_NAMES = frozenset({
    # Russian, male
    "александр", "саша", "алексей", "лёша", "леша", "андрей", "антон", "артём", "артем", "тёма", "тема", "борис",
    "вадим", "валера", "василий", "вася", "виктор", "витя", "виталий", "владимир", "вова", "володя", "влад",
    "владислав", "всеволод", "глеб", "гена", "геннадий", "георгий", "гоша", "григорий", "гриша", "даниил", "даня",
    "денис", "дима", "дмитрий", "евгений", "женя", "егор", "иван", "ваня", "игорь", "илья", "кирилл", "костя",
    "константин", "лев", "лёва", "лева", "леонид", "лёня", "максим", "макс", "марат", "матвей", "миша", "михаил",
    "никита", "николай", "коля", "олег", "павел", "паша", "пётр", "петр", "петя", "роман", "рома", "руслан",
    "рустам", "сергей", "серёжа", "сережа", "стас", "станислав", "степан", "тимур", "тимофей", "фёдор", "федор",
    "федя", "юра", "юрий", "ярослав", "слава", "эдик", "ильдар", "азат", "вениамин", "петрович", "михалыч",
    # Russian, female
    "алёна", "алена", "алина", "алиса", "алла", "анастасия", "настя", "анна", "аня", "валентина", "валя", "варя",
    "варвара", "вера", "вика", "виктория", "галя", "галина", "дарья", "даша", "диана", "ева", "евгения", "екатерина",
    "катя", "елена", "лена", "елизавета", "лиза", "жанна", "зоя", "инна", "ира", "ирина", "карина", "кира",
    "кристина", "ксения", "ксюша", "лариса", "лейла", "лиля", "лилия", "люба", "любовь", "людмила", "люда",
    "маргарита", "рита", "марина", "мария", "маша", "милана", "надежда", "надя", "наталья", "наташа", "нина", "ника",
    "оксана", "олеся", "ольга", "оля", "полина", "поля", "регина", "светлана", "света", "софия", "софья", "соня",
    "таня", "татьяна", "ульяна", "юля", "юлия", "яна", "зарина", "эльвира", "камила", "дина",
    # English and international
    "adam", "alex", "alice", "amy", "andrew", "anna", "anne", "ben", "chris", "claire", "dan", "daniel", "dave",
    "david", "ed", "ella", "ellie", "emily", "emma", "eric", "grace", "hannah", "harry", "jack", "jake", "james",
    "jane", "jason", "jen", "jenny", "jess", "jessica", "jim", "joe", "john", "jonno", "josh", "julia", "kate",
    "katie", "kevin", "laura", "leo", "liam", "lily", "lisa", "lucy", "mark", "mary", "matt", "max", "mia", "michael",
    "mike", "nick", "noah", "olivia", "oliver", "paul", "pete", "peter", "priya", "rachel", "raj", "rob", "robert",
    "ryan", "sam", "sara", "sarah", "sophie", "steve", "tom", "tim", "tony", "will", "zoe", "mei", "ana", "sofia",
    "marco", "luca", "hans", "lars", "sven", "pierre", "marie", "carlos", "maria", "juan", "ahmed", "ali", "omar",
    "fatima", "yuki", "kenji", "chen", "li", "wei", "sonya", "katya", "dasha", "masha", "sasha", "misha", "dima",
    "anya", "lena", "olga", "igor", "oleg", "sergey", "artem", "timur", "vera", "nina", "ivan", "boris", "karl",
    "nik", "nico", "jan", "eva", "lukas", "felix", "emil", "finn", "tobias", "jonas", "mateo",
    "gwen", "rhys", "dylan", "owen", "gareth", "bethan", "megan", "sian", "ieuan", "dafydd", "huw", "catrin",
})
# How a Russian name is written in Latin letters ("Оля" → "olya"): names in English sentences are known too.
CYRILLIC_TO_LATIN = str.maketrans(
    {
        "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh", "з": "z", "и": "i",
        "й": "i", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t",
        "у": "u", "ф": "f", "х": "h", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "sch", "ъ": "", "ы": "y", "ь": "",
        "э": "e", "ю": "yu", "я": "ya",
    }
)  # fmt: skip
GIVEN_NAMES = GIVEN_NAMES | frozenset(n.translate(CYRILLIC_TO_LATIN) for n in GIVEN_NAMES if not n.isascii())
# fmt: on
# ... and common names of many countries, kept as data (given_names.txt)
_NAMES_FILE = Path(__file__).with_name("given_names.txt")
GIVEN_NAMES = GIVEN_NAMES | frozenset(
    name
    for line in _NAMES_FILE.read_text(encoding="utf-8").splitlines()
    if not line.startswith("#")
    for name in line.lower().split()
)


def concept_words(key: str) -> frozenset[str]:
    """The words of the subject `key` is under in `CONCEPTS` ("car": car, машин, skoda, …; "deadline:thesis": the
    words of "deadline:"), empty for a key no concept names."""
    return next((words for concept, _, words in CONCEPTS if key.startswith(concept)), frozenset())


# The months, in English and as the stems of their Russian names: the stem and "е" is "in that month" ("в марте",
# "в мае").
MONTHS_EN = tuple("january february march april may june july august september october november december".split())
MONTH_STEMS_RU = tuple("январ феврал март апрел ма июн июл август сентябр октябр ноябр декабр".split())
MONTHS_RU_IN = tuple(stem + "е" for stem in MONTH_STEMS_RU)
MONTHS_FR = tuple("janvier février mars avril mai juin juillet août septembre octobre novembre décembre".split())
# "my sister", "наша дача": a word that makes the next one someone's own.
POSSESSIVES = frozenset({"my", "our", "мой", "моя", "моё", "мое", "мои", "наш", "наша", "наше", "наши"})


# The endings of drug names (international nonproprietary names, in either script): -sartan, -pril, -olol,
# -dipine, -statin, -prazole, -formin, -oxetine, -traline, -azepam, -cillin, -mycin.
DRUG_NAME = re.compile(
    r"^[a-zа-яё]{2,}(?:sartan|pril|olol|dipine?|statin|prazole|formin|oxetine|traline|azepam|cillin|mycin|"
    r"артан|прил|олол|дипин|статин|празол|формин|оксетин|тралин|азепам|циллин|мицин)"
    r"(?:а|у|ом|е|ы|ов|s)?$",
    re.IGNORECASE,
)
