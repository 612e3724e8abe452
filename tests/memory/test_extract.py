"""The deterministic extractor: what a user's own words say about him and his people, in Russian and English."""

from __future__ import annotations

import pytest

from konsilium.memory.extract import extract
from konsilium.memory.subjects import key_is_exclusive, subject_key


def one(text: str):
    statements = extract([text]).statements
    assert len(statements) == 1, statements
    return statements[0]


@pytest.mark.parametrize(
    ("text", "about", "kind", "key", "update"),
    [
        ("Hi, I'm Lena.", "user", "identity", "name", False),
        ("Меня зовут Андрей.", "user", "identity", "name", False),
        ("I work as a biology teacher in Tver.", "user", "work", "job.role", False),
        ("Я сменила работу: теперь я методист в школе онлайн-образования.", "user", "work", "job.role", True),
        ("My laptop is a ThinkPad T14 with 16 GB of RAM.", "user", "device", "laptop.ram", False),
        ("Upgraded the laptop RAM to 32 GB.", "user", "device", "laptop.ram", True),
        ("Tutor sessions moved to Fridays.", "user", "schedule", "schedule:tutor", True),
        ("Занятия с репетитором перенесли на четверг.", "user", "schedule", "schedule:tutor", True),
        ("I moved to Kazan last month.", "user", "home", "home.city", True),
        ("Переехал в Казань.", "user", "home", "home.city", True),
        ("I bought a new GPU, an RTX 4090.", "user", "device", "gpu", True),
        ("У меня видеокарта RTX 3060.", "user", "device", "gpu", False),
        ("My friend Igor has an RTX 3090.", "friend Igor", "person", "gpu", False),
        ("Моя сестра Ира живёт в Минске.", "сестра Ира", "person", "home.city", False),
        ("I no longer eat meat.", "user", "health", "diet", True),
        ("Отвечай мне на русском.", "user", "preference", "answer.language", False),
        ("I prefer short answers.", "user", "preference", "answer.style", False),
        ("The thesis deadline moved to June 30.", "user", "plan", "deadline:thesi", True),
        ("I love hiking in the mountains.", "user", "preference", None, False),
        ("По средам в 19:00 пою в хоре при филармонии.", "user", "schedule", "schedule:choir", False),
        ("Choir rehearsals moved to Thursdays, same time.", "user", "schedule", "schedule:choir", True),
        ("Our son Miron is six.", "son Miron", "person", None, False),
        ("Папа Виктор вышел на пенсию.", "папа Виктор", "person", None, True),
        ("Дима, кстати, обновился — теперь у него RTX 5090.", "Дима", "person", "gpu", True),
    ],
)
def test_statements_get_who_what_and_whether_something_changed(text, about, kind, key, update):
    statement = one(text)
    assert (statement.about, statement.kind, statement.key, statement.update) == (about, kind, key, update)


def test_a_compound_sentence_is_two_statements_the_second_inheriting_the_first_person():
    statements = extract(["Я учу испанский, занимаюсь по вторникам с репетитором."]).statements
    assert [(s.text, s.key) for s in statements] == [
        ("Я учу испанский", "learning:language"),
        ("Занимаюсь по вторникам с репетитором", "schedule:tutor"),
    ]


def test_remember_requests_are_explicit_and_lose_their_prefix():
    statement = one("Запомни: я не ем глютен.")
    assert (statement.text, statement.explicit, statement.key) == ("Я не ем глютен", True, "diet")
    assert one("Remember that my passport expires in 2027.").text == "My passport expires in 2027"


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("Забудь, что я учу испанский, я бросила.", "я учу испанский"),
        ("Please forget that I play chess.", "I play chess"),
        ("Забудь про мою старую машину.", "мою старую машину"),
    ],
)
def test_forget_requests_name_what_to_forget_and_never_become_statements(text, query):
    extraction = extract([text])
    assert [f.query for f in extraction.forgets] == [query] and extraction.statements == []


@pytest.mark.parametrize(
    "text",
    [
        "Что такое квантование модели?",
        "How do I install CUDA",
        "Напиши стихотворение про осень.",
        "Explain rotary embeddings.",
        "Python is a programming language.",
        "Привет!",
        "```python\nmy_list = [1, 2]\n```",
    ],
)
def test_questions_requests_greetings_code_and_general_facts_teach_nothing(text):
    assert extract([text]).statements == []


def test_a_pasted_document_keeps_only_what_the_user_asked_to_remember():
    pasted = "I think the results are good. " * 100 + "Remember: my exam is on May 5."
    assert [s.text for s in extract([pasted]).statements] == ["My exam is on May 5"]


def test_one_value_subjects_are_exclusive_lists_are_not():
    assert key_is_exclusive("job") and key_is_exclusive("schedule:tutor") and key_is_exclusive("laptop.ram")
    assert not key_is_exclusive("diet") and not key_is_exclusive("learning:language")


def test_a_new_subject_after_a_comma_is_a_statement_of_its_own():
    statements = extract(["На работу езжу на велосипеде, а машина у нас — Skoda Octavia."]).statements
    assert [(s.text, s.key) for s in statements][-1] == ("А машина у нас — Skoda Octavia", "car")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # no "I", no known subject: said to one's own assistant, a plain statement is about the speaker
        ("Allergic to penicillin btw, found out the hard way at uni.", "Allergic to penicillin btw"),
        ("Виолончель теперь по четвергам, в 18:30.", "Виолончель теперь по четвергам, в 18:30"),
        ("Live in a tiny flat in Easton, Bristol.", "Live in a tiny flat in Easton, Bristol"),
        # openers are not part of the fact
        ("Quick update: moved to Kostroma last week.", "Moved to Kostroma last week"),
        # what is said before the question is kept, the question is not
        ("Gaming PC question: I've got an RTX 3060 12GB, will it run Cyberpunk?", "I've got an RTX 3060 12GB"),
    ],
)
def test_statements_without_a_first_person_word_are_the_users(text, expected):
    statements = extract([text]).statements
    assert statements and statements[0].text.startswith(expected) and statements[0].about == "user", statements


@pytest.mark.parametrize(
    "text",
    [
        "Yes, write a short description for the studio's VK page, in Russian please.",  # one request, no wish
        "Ладно, подумаю.",
        "Ok, got it, thanks!",
        "Квантование — это хранение весов с меньшей точностью.",
    ],
)
def test_acknowledgements_one_off_requests_and_definitions_are_not_memories(text):
    assert extract([text]).statements == []


def test_a_pronoun_is_the_person_named_just_before_and_the_memory_says_who():
    statements = extract(["У меня брат Глеб. Он пожарный, служит в Вологде. Хочу подарить ему что-нибудь."]).statements
    firefighter = next(s for s in statements if "пожарный" in s.text)
    assert firefighter.about == "брат Глеб" and firefighter.text == "Брат Глеб: Он пожарный, служит в Вологде"
    assert next(s for s in statements if "Хочу" in s.text).about == "user"


@pytest.mark.parametrize(
    ("text", "about"),
    [
        ("Мама у меня Линда, живёт в Суонси.", "мама Линда"),
        ("Stas, my apprentice, comes in on Wednesdays and Saturdays.", "apprentice Stas"),
        ("Ещё у нас собака Шпрот, ему 6 лет.", "собака Шпрот"),
    ],
)
def test_people_and_pets_introduced_in_passing_are_who_the_statement_is_about(text, about):
    assert extract([text]).statements[0].about == about


def test_a_name_then_here_is_the_users_name_and_the_rest_a_fact_of_its_own():
    statements = extract(["Owen here — paramedic, working ambulance shifts out of Southmead station."]).statements
    assert [(s.text, s.key) for s in statements] == [
        ("Owen here", "name"),
        ("Paramedic, working ambulance shifts out of Southmead station", "job"),
    ]


def test_only_the_subjects_own_move_is_a_move_of_home():
    assert one("Bouldering moved to Sunday mornings.").key != "home.city"
    assert one("Moved the business account to Tochka bank.").key != "home.city"  # a thing moved, not the user
    assert one("Мы с Анной переехали в Санкт-Петербург.").key == "home.city"
    assert subject_key("What do I do for a living?") == "job"


def test_a_pronoun_in_the_next_message_is_the_person_named_in_the_previous_one():
    statements = extract(
        ["Her birthday is November 3rd."], before="We live in Ryazan btw, wife's name is Olga."
    ).statements
    assert [(s.about, s.text) for s in statements] == [("wife Olga", "Wife Olga: Her birthday is November 3rd")]


@pytest.mark.parametrize(
    ("text", "is_preference"),
    [
        ("Way better than the old one, actually answers the phone at night.", False),  # about someone, not answers
        ("New job is all Python, so give code examples in Python from now on.", True),
        ("Keep answers short btw, a paragraph max unless I ask for more.", True),
    ],
)
def test_a_wish_about_answers_is_said_to_the_assistant(text, is_preference):
    assert any(s.kind == "preference" for s in extract([text]).statements) == is_preference


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("Oh and forget the whole neighbour business, we settled it.", "neighbour"),
        ("By the way, forget the meds stuff I told you, I'd rather not have that stored.", "meds"),
        ("Забудь, пожалуйста, что я собеседовалась в Ozon — передумала.", "я собеседовалась в Ozon"),
        ("забудь всё про мой долг карлу, я отдал", "мой долг карлу"),
        (
            "Да, и вот ещё: про деньги, которые я шурину должен, забудьте всё, мы разобрались.",
            "деньги, которые я шурину должен",
        ),
        ("Про Ника забудь, всё, проехали.", "Ника"),
        ("and nvm the ink thing i told u about, my mom would kill me", "ink"),
        ("удали инфу про мою зарплату", "мою зарплату"),
        ("That stuff I told you about the overdraft — bin it, would you?", "the overdraft"),
        ("Слушай, ту тему про мозгоправа и вторники — сотри, ладно?", "мозгоправа и вторники"),
        ("And delete the note about my blood test number too, please.", "my blood test number"),
        ("and pls forget the thing about the pills my psychiatrist gave me, ok?", "the pills my psychiatrist gave me"),
        ("Please don't remember my address.", "my address"),
        ("Удали то, что я говорил о кредите.", "кредите"),
        ("Это больше не актуально, сотри про абонемент.", "абонемент"),
        ("Please remove my old address from your memory.", "my old address"),
        ("и адрес мой забудь, пожалуйста, мало ли", "адрес мой"),
        ("И ещё: удали из памяти всё, что касается моей терапии, не хочу это хранить.", "моей терапии"),
        ("Please also forget about the car loan — I don't want that stored.", "the car loan"),
        ("Also scrap what i said about the secret interview — i pulled out", "the secret interview"),
        ("pls forget my address btw, we're out of that flat next week anyway", "my address"),
        ("Ещё практика: «Пожалуйста, забудь, что я рассказал про жену Дая.", "жену Дая"),
        ("Выкинь из головы историю с Тамарой Ивановной.", "Тамарой Ивановной"),
        ("Удали, пожалуйста, всё, что я рассказывала про мамин диабет.", "мамин диабет"),
        ("И ещё — ипотеку не запоминай, вычеркни это из памяти.", "ипотеку"),
        ("Drop the knee thing, it healed.", "knee"),
        ("Oh, and the career-switch idea — forget it, I'm staying put.", "the career-switch"),
        ("Слушай, мою зарплату не храни, забудь эту цифру.", "мою зарплату"),
        ("То, что я писала про сигареты на балконе, — сотри, пожалуйста.", "сигареты на балконе"),
        ("И удали, пожалуйста, сколько я зарабатываю — не хочу, чтобы это хранилось.", "сколько я зарабатываю"),
        ("Lyosha paid me back, so drop the thing about his debt.", "Lyosha debt"),
        ("Кстати, насчёт продажи участка, о которой я писал в июне, — сотрите это.", "продажи участка"),
        ("Please delete the gate code I gave you in spring.", "the gate code"),
        ("And please stop remembering the Dota stuff", "Dota"),
        ("и удали про долг саньку, вернул все", "долг саньку"),
        (
            "And please drop what I said about maybe leaving the business — a bad-mood thought",
            "maybe leaving the business",
        ),
        ("and forget the thing with my ex too, that's closed", "my ex"),
        ("and forget I ever mentioned the private hospital interview btw", "the private hospital interview"),
        ("И да, забудь, что я тебе про зарплату рассказывала, не хочу чтобы это где-то висело.", "зарплату"),
        ("и да, про развод — это я на эмоциях ляпнула. забудь это, пожалуйста", "развод"),
        ("и про ту дыру в бюджете на карте, которую я от мужа прятала, — удали всё", "ту дыру в бюджете на карте"),
        ("и сотри пожалуйста всё, что я тебе ныла про свою начальницу", "свою начальницу"),
        ("сотри плз инфу про больничку, ну про желудок и таблетки", "больничку желудок и таблетки"),
        ("кстати забудь плз про тот хвост по матеше, закрыл", "тот хвост по матеше"),
        ("can you scrap what I said a while back about the headaches?", "the headaches"),
    ],
)
def test_forget_requests_are_understood_however_they_are_phrased(text, query):
    extraction = extract([text])
    assert [f.query for f in extraction.forgets] == [query]
    assert not any("forget" in s.text.lower() or "забуд" in s.text.lower() for s in extraction.statements)


@pytest.mark.parametrize(
    "text",
    [
        "I always forget my keys.",
        "Never mind, I found it.",
        "Don't forget the milk.",
        "Delete the old branch first, then rebase.",
        "Remove the duplicates from this list: a, b, a.",
        "I deleted the app about a week ago.",
        "Don't remember the exact date, but it was in May.",
        "Слушай, я удалил инстаграм, и теперь больше времени.",
        "Не забудь купить молоко.",
        "Scrap the plan, we leave tomorrow instead.",
        "Drop the table first, then recreate it.",
        "Я часто забываю ключи.",
        "Удали старую ветку сначала.",
    ],
)
def test_forget_as_an_ordinary_word_is_no_request(text):
    assert extract([text]).forgets == []


@pytest.mark.parametrize(
    ("text", "about"),
    [
        ("Артём ездит на Kia Rio 2019, страховка у него кончается в апреле.", "Артём"),
        ("Мама у меня в Челябинске живёт, на пенсии.", "мама"),
        ("И ещё: у меня дочка Соня, ей 6 лет, ходит на плавание.", "дочь Соня"),
        ("Мой помощник в мастерской — Лёва.", "помощник Лёва"),
        ("My roommate karl works nights at a pizza place.", "roommate karl"),
        ("Легковушка у нас Лада Гранта.", "user"),
        ("У Андрея тоже новости: он ушёл с завода и теперь логист.", "Андрей"),  # named as said: in the nominative
    ],
)
def test_whom_a_statement_is_about(text, about):
    assert extract([text]).statements[0].about == about


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("I work at Nordex on rotor blade testing.", "job"),
        ("Работаю су-шефом в ресторане «Ложка».", "job.role"),
        ("Бюро оставило меня на удалёнке, так что работаю из дома.", None),
        ("Protein plan works.", None),
        ("На работу езжу на своём складном велосипеде.", "bike"),  # his bike, not his job
        ("Был у врача — давление 160 на 100.", None),
        ("Also I need to submit my portfolio for the Dribbble hiring challenge by April 12.", None),
        ("Я диспетчер в транспортной компании в Екатеринбурге.", "job.role"),
        ("Я бэкенд-разработчик в Сбере.", "job.role"),
        ("Started at Yandex last week, backend again.", "job.role"),
        ("First week at jetbrains done 😎", "job.role"),
        ("I started running in May.", None),
        ("Ушёл из Сбера в Яндекс.", "job.role"),
        ("Меня берут редактором в издательство «Верхняя Волга».", "job.role"),
        ("We write mostly Go at work.", None),
        ("PM says the go-live is actually August 28.", None),
    ],
)
def test_only_a_statement_about_ones_job_gets_the_job_key(text, key):
    """The job key is exclusive: a stray one would replace the user's real job."""
    assert extract([text]).statements[0].key == key


@pytest.mark.parametrize(
    "text",
    [
        "Какую страховку лучше брать для Черногории с ребёнком?",
        "Посоветуй какую-нибудь книгу про логистику, не слишком занудную.",
        "Тогда подскажи рецепт сырников, чтобы мне можно было.",
        "NFT вообще ещё живо или всё?",
    ],
)
def test_questions_and_requests_are_no_memories(text):
    assert extract([text]).statements == []


def test_what_is_said_before_a_question_is_kept_and_an_exclaimed_statement_too():
    said = extract(["Мы с женой Олей переезжаем в Тбилиси в мае, какие документы нужны?"]).statements
    assert [s.text for s in said] == ["Мы с женой Олей переезжаем в Тбилиси в мае"]
    exclaimed = extract(["ok confession: cilantro has grown on me??"]).statements
    assert any("grown on me" in s.text for s in exclaimed)


def test_what_is_said_of_a_person_after_a_comma_is_its_own_memory_about_them():
    said = extract(["Глеб живёт в Сочи, у него двое сыновей, а Тёме 7, он ходит на футбол по средам."]).statements
    assert [(s.text, s.about) for s in said] == [
        ("Глеб живёт в Сочи", "Глеб"),
        ("Глеб: У него двое сыновей", "Глеб"),
        ("А Тёме 7, он ходит на футбол по средам", "Тёма"),
    ]
    assert extract(["Olya moved to Tbilisi last month."]).statements[0].key == "home.city"


def test_english_stems_are_whole_words_and_a_quotation_ends_its_sentence():
    liver = extract(["We will go to Essentuki in October instead, for the liver and stomach."]).statements
    assert liver[0].key != "home.city"
    assert extract(["Forget my weight."]).forgets and extract(["Я вешу 92 кг."]).statements[0].key == "weight"
    cat = extract(["Katya's cat Pushok is less impressed, hides on the wardrobe all day."]).statements
    assert not cat[0].update
    quoted = extract(["«Мой любимый писатель — Чехов.» My tractor is a Massey Ferguson 135."]).statements
    assert [s.text for s in quoted] == ["«Мой любимый писатель — Чехов.»", "My tractor is a Massey Ferguson 135"]


@pytest.mark.parametrize("text", ["Я пишу в VS Code.", "Пишу в основном на Kotlin.", "Работаю сменами 2/2, с 8 до 20."])
def test_what_the_user_writes_in_is_no_wish_about_answers_and_shifts_are_no_change(text):
    statement = extract([text]).statements[0]
    assert not statement.key or not statement.key.startswith("answer.")
    assert not statement.update


def test_a_question_keeps_the_facts_said_before_it_and_a_tag_question_keeps_the_wish():
    about_her = extract(["И подруга Катя, она ветеринар, в июне переезжает в Тбилиси — что подарить ей на прощание?"])
    assert [(s.about, "Тбилиси" in s.text) for s in about_her.statements] == [("подруга Катя", True)]
    wish = extract(["Сразу просьба: отвечай коротко, без воды, ладно?"]).statements
    assert [s.key for s in wish] == ["answer.style"]


def test_a_short_sentence_says_what_the_next_one_is_about():
    (statement,) = extract(["Мастерская переехала!! Теперь на Некрасова, 41, места в два раза больше."]).statements
    assert statement.text.startswith("Мастерская переехала, теперь на Некрасова") and statement.update


def test_what_was_said_before_an_emoji_and_a_question_is_kept():
    (statement,) = extract(["Перешла на memoQ, наконец-то 🎉 Как импортировать туда мой старый termbase?"]).statements
    assert statement.text.startswith("Перешла на memoQ") and statement.update


def test_a_move_names_a_new_city_only_with_a_place():
    assert extract(["We moved to Kazan last weekend!!"]).statements[0].key == "home.city"
    assert extract(["Переехали, новая квартира побольше, у каждого ребёнка своя комната."]).statements[0].key is None


def test_a_forget_request_naming_nothing_forgets_the_sentence_before_it():
    extraction = extract(["гараж передумал продавать, люда против. это больше не актуально, сотри"])
    assert [f.query for f in extraction.forgets] == ["гараж передумал продавать, люда против"]
    assert extraction.statements == []


def test_an_introduction_keeps_the_name_apart_from_the_job_said_with_it():
    statements = extract(["привет) я настя, 27, медсестра в областной, отделение кардиологии"]).statements
    assert (statements[0].text, statements[0].key) == ("Я настя, 27", "name")
    assert any("медсестра" in s.text.lower() and s.key != "name" and s.about == "user" for s in statements[1:])
    # how he wants to be called stays with the name
    (only,) = extract(["Меня зовут Геннадий Петрович, можно просто Петрович."]).statements
    assert only.key == "name" and "просто Петрович" in only.text


@pytest.mark.parametrize(
    ("text", "about"),
    [
        ("Oh, and Owain rang from the rig — they've changed his rota to three weeks on.", "Owain"),
        ("Put the money towards a John Deere — the old tractor's going to a collector, he collects them.", "user"),
        ("I have the Goethe B2 exam on May 14, so I'm a bit stretched.", "user"),
    ],
)
def test_interjections_verbs_and_exams_are_nobodys_names(text, about):
    assert [s.about for s in extract([text]).statements] == [about]


@pytest.mark.parametrize(
    ("text", "about"),
    [
        ("Дочка марина из питера звонила, зовет в гости летом", "дочь Марина"),
        ("My best friend danik lives in berlin now", "friend danik"),
        ("My wife really likes it", "wife"),
        ("My friend who lives nearby has a 3090", "friend"),
    ],
)
def test_a_name_written_small_after_a_relation_is_still_their_name(text, about):
    assert [s.about for s in extract([text]).statements] == [about]


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("Writing in English today since I'm prepping for my performance review.", "performance review"),
        ("The review is on February 26.", "February 26"),
        ("Editor is Neovim with LazyVim.", "Neovim"),
        ("Help me plan a weekend menu for three, я вегетарианка с 2019 года, а дети едят всё.", "вегетарианка"),
    ],
)
def test_what_he_tells_around_a_request_or_in_plain_words_is_kept(text, kept):
    assert any(kept in s.text for s in extract([text]).statements)


@pytest.mark.parametrize("text", ["Python is a programming language.", "Attention is how transformers mix tokens."])
def test_a_definition_is_general_knowledge_not_his_fact(text):
    assert extract([text]).statements == []


@pytest.mark.parametrize(
    ("text", "name"),
    [
        (
            "Позвольте представиться: Геннадий Аркадьевич Волков, 66 лет, инженер на пенсии.",
            "Геннадий Аркадьевич Волков",
        ),
        ("Let me introduce myself: Harold Finch, retired engineer.", "Harold Finch"),
    ],
)
def test_an_introduction_names_the_user_with_his_full_name(text, name):
    statements = extract([text]).statements
    assert statements[0].key == "name" and name in statements[0].text
    assert len(statements) > 1 and statements[0].about == "user"


@pytest.mark.parametrize(
    ("text", "about"),
    [
        # a verb opening the sentence is no name: the pronoun after it is resolved like any other
        ("Живут они в Екатеринбурге.", "someone"),
        # the one known name in the clause is whom "она" means, not the capitalized first word
        ("Новостей куча, секцию, где занималась Соня, закрыли, так что теперь она ходит на плавание.", "Соня"),
        # someone's news told by another: the news is about the one it names
        ("Андрей звонил: Миша сменил секцию, теперь играет в хоккей.", "Миша"),
        ("Андрей пишет, что Миша с командой едет на турнир в Казань.", "Миша"),
        # done to a relative by someone unnamed ("they"): about the relative
        ("Маму всё-таки устроили в пансионат «Тёплый дом».", "мама"),
        # an adjective's "-ую" after a preposition is no verb of the user's
        ("Даша с сентября пойдёт в международную школу.", "Даша"),
        # ... and the user's own verbs stay his
        ("Маме купила новый телефон.", "user"),
        ("Рисую по вечерам акварелью.", "user"),
        ("Cerys has got a new job at a mixed practice in Aberystwyth, so she's back in Wales.", "Cerys"),
    ],
)
def test_whom_a_sentence_without_a_subject_name_is_about(text, about):
    assert [s.about for s in extract([text]).statements] == [about]


def test_a_name_in_another_case_after_ya_is_no_introduction():
    # "Я Лёше должен" owes Lyosha: had it been read as "my name is", it replaced the pinned name, and forgetting
    # the debt later took the name with it
    (debt,) = extract(["Ещё я Лёше должен 50 тысяч, он занял на переезд."]).statements
    assert debt.key != "name"
    assert [s.key for s in extract(["Я Марина, ветеринар."]).statements][:1] == ["name"]
    assert [s.key for s in extract(["Я — Марина."]).statements] == ["name"]


def test_a_sentence_opening_with_she_is_hers_whatever_the_first_person_after_it():
    statements = extract(["My mom is great. She lives in Samara, keeps asking when I'm visiting."]).statements
    assert statements[-1].about == "mom" and statements[-1].key == "home.city"


def test_what_someone_gives_the_user_is_his():
    (phone,) = extract(["My kids gave me a Samsung Galaxy S24 for my birthday, nice surprise."]).statements
    assert (phone.about, phone.key) == ("user", "phone")
    (kindle,) = extract(["My wife Anna got me a Kindle."]).statements
    assert kindle.about == "user"
    (married,) = extract(["My brother got married in May."]).statements
    assert married.about == "brother"


def test_lost_weight_is_a_weight_and_kilometres_are_not():
    (lost,) = extract(["И хорошие новости: скинул до 97 кило, давление 130 на 85."]).statements
    assert lost.key == "weight"
    (paid,) = extract(["За километр платят больше."]).statements
    assert paid.key != "weight"


def test_a_class_of_something_is_a_schedule_of_that_something():
    (wednesday,) = extract(["Plus ceramics class every Wednesday evening in Friedrichshain."]).statements
    (saturday,) = extract(["И керамику перенесли на субботу утром."]).statements
    assert wednesday.key == saturday.key == "schedule:pottery"
    (tutor,) = extract(["Занятия с репетитором по вторникам."]).statements
    assert tutor.key == "schedule:tutor"


@pytest.mark.parametrize(
    ("text", "about", "key"),
    [
        # words between the name and the move change nothing: her move, a home
        ("Оля, кстати, всё-таки переехала в Казань, нашла там работу.", "Оля", "home.city"),
        # an adjective's "-ую" after a verb ("получил голубую карту") is no "I"
        ("Лёша, кстати, перебрался в Берлин, получил голубую карту.", "Лёша", "home.city"),
        ("Bouldering also moved to Sundays.", "user", "schedule:climbing"),
    ],
)
def test_someone_elses_move_said_with_fillers(text, about, key):
    (statement,) = extract([text]).statements
    assert (statement.about, statement.key) == (about, key)


def test_a_height_said_bare_is_the_users_and_growth_is_not_a_height():
    assert [(s.text, s.key) for s in extract(["Рост 186. Какой размер рамы брать?"]).statements] == [
        ("Рост 186", "height")
    ]
    (prices,) = extract(["Рост цен в этом году 9 процентов."]).statements
    assert prices.key is None


@pytest.mark.parametrize(
    ("text", "about", "key"),
    [
        # a thanks before a known name written small: her move, not his ("Спс" is no name)
        ("Спс, даша всё-таки переехала в Лиссабон, зовёт в гости.", "Даша", "home.city"),
        # "our Natashka": hers, whatever "наша" says of the speaker
        ("Наташка наша таки переехала к морю, в Сочи.", "Наташка", "home.city"),
        # "they" is often a place or a team: the user's schedule with "my" in it stays his, of the named activity
        (
            "They only have women's sessions on Mondays and Wednesdays, so that's my new climbing schedule.",
            "user",
            "schedule:climbing",
        ),
    ],
)
def test_thanks_before_a_name_and_they_before_my(text, about, key):
    (statement,) = extract([text]).statements
    assert (statement.about, statement.key) == (about, key)


@pytest.mark.parametrize(
    ("text", "about"),
    [
        # a label and a colon before "мой …": the label is no subject
        ("Ха. И сплетня напоследок: мой бывший коллега Вадим, говорят, берёт взятки.", "коллега Вадим"),
        # a former colleague or boss is still that colleague or boss; a former husband is someone else than "муж"
        ("Да, и бывший начальник Кравцов опять звонил, просит бесплатную консультацию.", "начальник Кравцов"),
        ("Мой бывший муж живёт в Туле.", "бывший"),
    ],
)
def test_labels_and_former_colleagues(text, about):
    assert [s.about for s in extract([text]).statements] == [about]


def test_a_word_starting_like_a_name_is_not_that_name():
    from konsilium.memory.people import same_name

    assert not same_name("starting", "stas")
    assert same_name("stas", "stasom") and same_name("dima", "dimy")


def test_work_relations_and_lead_ins():
    (marko,) = extract(["My teamlead marko is moving to the Amsterdam office in july btw."]).statements
    assert marko.about == "teamlead marko"
    first = extract(["fun fact my ex Olya lives in Kazan now, we still text sometimes lol"]).statements[0]
    assert first.about == "ex Olya"
    assert [f.query for f in extract(["can u drop everything about my ex pls, dont want that stored"]).forgets] == [
        "my ex"
    ]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("And I'm 92 kg right now so a few long runs a week.", "weight"),  # not an age of 92
        ("И по весу: сейчас 68 кг при росте 170.", "weight"),
        ("Down to 104 kg.", "weight"),
        ("У меня грыжа, мешки по 60 кг таскать нельзя.", None),  # sacks, not his weight
        ("Gym pr, benched 75kg.", None),
        ("I'm 34, a designer.", "age"),
        ("Продал наконец Королу, взяли Kia Carnival 2019 года.", "car"),
        # renting in a known place is where one lives; filming is not renting
        ("Теперь снимаем с Лизой двушку на Петроградке, 38 тыщ на двоих.", "home.city"),
        ("Снимаю видео для блога.", None),
    ],
)
def test_weights_ages_and_cars(text, key):
    assert extract([text]).statements[0].key == key


@pytest.mark.parametrize(
    ("text", "about", "key"),
    [
        # a label and a colon before his own clause: the clause is judged alone
        ("Hey. Quick context about me: I'm Artyom, logistics manager at Kestrel Freight.", "user", "name"),
        ("Из новостей: меня повысили, с 1 мая я Head of Ocean Freight.", "user", "job.role"),
        # a label that introduces, or one before someone else's name, stays
        ("Позвольте представиться: Геннадий Аркадьевич Волков, шестьдесят шесть лет.", "user", "name"),
        ("Новости по здоровью: Ирина Львовна сменила мне препарат — теперь амлодипин 5 мг.", "user", "medication"),
        # a new employer and a role said without an article; work named in passing, the bike is the subject
        ("Big news — I signed with Halcyon Interactive, starting Monday as lead programmer.", "user", "job.role"),
        ("I cycle to work on my Gazelle bike, about 12 km each way.", "user", "bike"),
        ("Купил электросамокат Segway Ninebot, пока езжу на нём.", "user", "bike"),
        # stopping an activity ends its schedule; keys to a new flat somewhere are a new home
        ("And I no longer go bouldering — wrist's done with it.", "user", "schedule:climbing"),
        ("We finally got the keys to our new flat in Delft!", "user", "home.city"),
    ],
)
def test_labels_new_jobs_bikes_stopped_activities_and_new_homes(text, about, key):
    statements = extract([text]).statements
    assert any(s.about == about and s.key == key for s in statements), statements


def test_a_titles_period_ends_no_sentence_and_as_before_a_possessive_names_no_role():
    statements = extract(["Also, I see a therapist, Dr. Novak, on Wednesdays for anxiety. Any tips?"]).statements
    assert any("therapist" in s.text and "Novak" in s.text for s in statements), statements
    assert not any(s.key == "job.role" for s in extract(["As soon as my manager approves, I'll go."]).statements)


@pytest.mark.parametrize(
    ("text", "about", "key"),
    [
        ("Теперь хожу в разговорный клуб при областной библиотеке, там живая преподавательница.", "user", None),
        ("Thank you, teacher :) Also Marina gave me a present, a new phone, iPhone 13!", "user", "phone"),
        ("Кофе больше не пью — кардиолог запретила, перешёл на цикорий с молоком.", "user", None),
        ("Я перешёл в частную клинику «Авиценна», всё так же анестезиологом.", "user", "job.role"),
        ("Сдала ноут. А у меня MacBook Air M2, 8 гигов памяти.", "user", "laptop.ram"),
    ],
)
def test_adjectives_addresses_switching_drinks_and_brands_are_no_homes_jobs_or_people(text, about, key):
    statement = extract([text]).statements[-1]
    assert (statement.about, statement.key) == (about, key), statement


def test_his_clause_after_the_users_is_his_and_a_second_name_for_a_forgotten_thing_stays_in_the_request():
    statements = extract(
        ["Друг мой Валера Гусев, мы с ним двадцать лет в одном КБ сидели, он сейчас в Обнинске живёт."]
    ).statements
    moved = next(s for s in statements if "Обнинске" in s.text)
    assert (moved.about, moved.key) == ("друг Валера", "home.city")
    request = "And please forget the delicate thing about my health I told you in February, the urologist story."
    assert "urologist" in extract([request]).forgets[0].query


@pytest.mark.parametrize(
    ("text", "key", "update"),
    [
        ("ок. ещё учу польский, думаю может в варшаву потом.", "learning:language", False),
        ("и прошлый язык забросила, взялась за грузинский", "learning:language", True),
        ("Со 2 марта выхожу главным бухгалтером в частную клинику «Медея», зарплата на 30% больше.", "job.role", True),
        ("Зарплата у меня 80 тысяч", "salary", False),
    ],
)
def test_more_languages_a_new_post_over_its_pay_and_giving_something_up_is_a_change(text, key, update):
    statement = extract([text]).statements[0]
    assert (statement.key, statement.update) == (key, update), statement


@pytest.mark.parametrize(
    ("text", "about"),
    [
        ("А у рустама др 9 ноября", "Рустам"),  # a name written small, in the genitive
        ("у лизы кошка сметана", "Лиза"),
        ("Сегодня мой др, 14 марта, 35 лет", "user"),  # the capital that opens a sentence names no one
        ("Муж работает в банке", "муж"),  # a relation as the subject, no "my"
        ("Мужу подарила часы на годовщину", "user"),  # ... not a relation something is for
        ("Сосед по комнате костя, с 3 курса, работает курьером", "сосед Костя"),
        ("А у меня квартира в Казани", "user"),  # a place is no one's name
    ],
)
def test_a_russian_name_is_known_in_any_case_and_a_word_of_another_kind_is_no_name(text, about):
    assert [s.about for s in extract([text]).statements] == [about]


def test_a_question_after_and_is_no_memory_but_a_wish_after_and_is_kept():
    assert extract(["and how do i squash the last 3 commits", "and when should i NOT rebase"]).statements == []
    (wish,) = extract(["Thanks. And please keep answers short — bullet points, no long intros."]).statements
    assert wish.key == "answer.style"


def test_the_users_clause_after_someone_elses_is_his_own_memory():
    said = extract(["У Кости день рождения 9 ноября, а у меня 14 апреля"]).statements
    assert [(s.text, s.about) for s in said] == [
        ("У Кости день рождения 9 ноября", "Костя"),
        ("А у меня 14 апреля", "user"),
    ]
    (divorce,) = extract(["Но у неё сейчас развод с Денисом, ей не до этого"]).statements
    assert divorce.about != "Денис"  # with him: he is not whom it is about


def test_why_a_forget_request_was_made_is_no_memory_and_a_new_fact_after_it_is_one():
    told = extract(["please delete the thing about my ex. I'd rather it's not written down anywhere tbh"])
    assert [f.query for f in told.forgets] == ["my ex"] and told.statements == []
    told = extract(["сотри плз инфу про больничку. не хочу чтоб это где то висело"])
    assert told.statements == []
    told = extract(["Забудь мой старый адрес. Я теперь живу в Казани."])
    assert [s.text for s in told.statements] == ["Я теперь живу в Казани"]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("Планёрка у нас каждый понедельник в 9:00 — накидай шаблон повестки, коротко", "schedule:meeting"),
        ("Coach reckons I'm selling myself short, so new goal for the half is 1:58", None),
        ("И формат ответов давай поменяем: разворачивай подробно и со ссылками", "answer.style"),
        ("Отвечай коротко и без смайликов плиз", "answer.style"),
    ],
)
def test_a_one_off_request_or_a_short_word_in_passing_is_no_standing_wish_on_answers(text, key):
    (said,) = extract([text]).statements
    assert said.key == key


def test_a_greeting_before_the_name_keeps_the_name_alone_and_the_job_its_own_memory():
    said = extract(["Hiya, so I'm Abi, staff nurse on a respiratory ward at Wythenshawe"]).statements
    assert [(s.text, s.key) for s in said] == [
        ("I'm Abi", "name"),
        ("Staff nurse on a respiratory ward at Wythenshawe", "job.role"),
    ]


def test_forget_that_said_after_a_dash_forgets_what_was_said_before_it():
    (request,) = extract(["Also, earlier I mentioned how much I earn — forget that please, not comfortable."]).forgets
    assert request.query.endswith("how much I earn")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Перфект, мой бывший, Дима, в Москве живёт", [("бывший Дима", "home.city")]),
        ("И еще японский у меня по средам вечером, с преподшей, ее зовут юки", [("user", None)]),
        ("Взяли в озон стажером-тестировщиком", [("user", "job.role")]),
        ("Clinic manager at Meanwood Health Centre in Leeds, start 20 April", [("user", "job.role")]),
        ("Уже неделю в общаге", [("user", "home.city")]),
        ("I'm a backend dev at Paybox, it's a fintech startup", [("user", "job.role")]),
        ("Мне теперь легко вставать по утрам", [("user", None)]),  # "легко" is no "легковушка"
        ("Летим в Вегас в мае", [("user", None)]),  # nor "Вегас" a vegan
        ("Получил права наконец", [("user", None)]),  # nor "получил" a salary ("получаю" is)
        ("Купил легковушку", [("user", "car")]),
        ("Катаюсь на Trek FX 2", [("user", "bike")]),  # a bike's maker names a bike
        ("И с подработки ушла, взяли лаборантом на кафедру, на полставки", [("user", "job.role")]),
        (  # no "она": the verb says it is someone else, here the mother of the sentence before
            "Мама у меня рукодельница. Сидит у себя в ульяновске и вышивает целыми днями",
            [("мама", None), ("мама", None)],
        ),
        (
            "She said my old pills are not enough and changed them — now I take amlodipine 5 mg",
            [("someone", "medication"), ("user", "medication")],
        ),
    ],
)
def test_whose_and_what_in_sentences_seen_in_the_blind_sets(text, expected):
    assert [(s.about, s.key) for s in extract([text]).statements] == expected


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("кст гусева можешь забыть, все уладили, он сам отозвал претензию", "гусева"),
        (
            "oh and that money thing with my brother — paid him back in full last week, so you can forget about it",
            "money with my brother",
        ),
        ("да кстати тот код для кооператива что я давал забудь я его поменял и вообще не надо такое хранить", "код"),
        ("можешь удалить всё про этот долг, не хочу, чтобы это висело.", "долг"),
        ("Please disregard what I told you in March about ending things with Timur — we're good now.", "Timur"),
        ("потом. и слушай, забудь вообще про артема. все, не было никакого артема", "про артема"),
    ],
)
def test_a_forget_request_said_in_passing_with_its_verb_anywhere_names_its_topic(text, query):
    (request,) = extract([text]).forgets
    assert query in request.query and "забудь" not in request.query and "вообще" not in request.query


@pytest.mark.parametrize(
    "text",
    [
        "не забудь купить хлеб по дороге",
        "I always forget my keys at work",
        "удали дубли из таблицы и отсортируй",
        "Remove the old files stored in the cloud",
    ],
)
def test_a_reminder_ones_own_forgetting_or_a_task_is_no_forget_request(text):
    assert extract([text]).forgets == []


def test_a_forget_request_naming_nothing_after_the_topic_takes_the_part_said_to_be_told():
    said = extract(
        [
            "other thing, and this is a bit awkward — the counselling I mentioned back in march. I've wrapped that "
            "up, doing much better now, and I'd honestly rather you didnt keep any of it."
        ]
    )
    assert [f.query for f in said.forgets] == ["the counselling"]


def test_short_news_and_what_it_is_are_one_memory():
    said = extract(["big news, I took a new job!! Lumora, fintech here in lisbon, data platform stuff. start in may"])
    assert [(s.text, s.key) for s in said.statements][0] == (
        "I took a new job: Lumora, fintech here in lisbon, data platform stuff",
        "job",
    )
    (moved,) = extract(["мы переехали наконец!! теперь в мигалово, двушка, до школы детям 5 мин пешком"]).statements
    assert moved.key == "home.city" and "мигалово" in moved.text
    # news followed by someone else's story stays apart
    news, hers = extract(["Я в шоке! Начальник уволил Петю без предупреждения."]).statements
    assert news.text == "Я в шоке" and hers.about != "user"


@pytest.mark.parametrize(
    "text",
    [
        "Perfect, olga wants me to write a short paragraph about a film for next week",
        "Я ей так и не ответил, и не хочу к этому возвращаться.",
        "Also my phone is an iphone 11 with a cracked screen so i cant even read your answer properly",
        "Please write a short summary of this article",
        "Write me a short poem about autumn",
        "Show me the answer in a table",
    ],
)
def test_words_about_answers_said_of_something_else_or_a_one_off_task_pin_no_wish(text):
    assert not any(s.key and s.key.startswith("answer.") for s in extract([text]).statements)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("Please answer in English from now on", "answer.language"),
        ("write your answers in Russian", "answer.language"),
        ("Keep answers short", "answer.style"),
    ],
)
def test_a_standing_wish_on_answers_after_please_or_with_any_verb_is_kept(text, key):
    assert one(text).key == key


def test_an_emoji_ends_a_sentence_and_a_pets_name_is_no_home():
    pet, chewed = extract(["У меня живёт хорёк Пончик 🐾 он сгрыз провод от планшета лол"]).statements
    assert pet.text.startswith("У меня живёт хорёк Пончик") and pet.key is None
    assert chewed.text.startswith("Он сгрыз")
    assert one("Мы живём в Мигалово").key == "home.city"


def test_a_figure_or_ones_own_verb_said_before_asking_is_kept_as_the_users():
    (rent,) = extract(["щас 85 тыс за 120 квадратов, это вообще норм для твери?"]).statements
    assert rent.text == "Щас 85 тыс за 120 квадратов" and rent.about == "user"
    (food,) = extract(["беру ему роял канин для корги, мб порцию урезать?"]).statements
    assert food.text == "Беру ему роял канин для корги" and food.about == "user"
    assert extract(["Сколько будет 2+2, если умножить на 3?"]).statements == []


def test_a_verb_opening_a_sentence_is_no_ones_name_and_a_title_ends_no_sentence():
    said = "Took Rasher to a vet round the corner, Dra. Paiva, she says he's gotten porky, 11.2 kg"
    (vet,) = extract([said]).statements
    assert "Paiva" in vet.text and "11.2 kg" in vet.text and vet.about != "Took"
    (drama,) = extract(["Dont want drama before the move and Marta knows about her but still"]).statements
    assert drama.about != "Dont"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("Каждые выходные ездим на дачу", None),
        ("Езжу на работу на автобусе", None),
        ("Летом мы под большеречье ездим на иртыш там место у меня прикормленное", None),
        ("Теперь езжу на Ларгусе", "car"),
        ("Езжу на машине на работу", "car"),
    ],
)
def test_where_one_goes_is_no_car_and_what_one_rides_in_is(text, key):
    assert one(text).key == key


def test_a_parent_named_by_the_word_alone_is_whom_it_is_about_and_a_thing_here_is_no_name():
    mum = extract(["Mum called, she's turning 70 on 12 September and lives in Riga, so we're going there."])
    assert mum.statements[0].about == "mum"
    assert one("Mum and I went to the cinema").about == "user"
    assert one("Rent here is €1,450 for a 2-bedroom").key != "name"
    assert extract(["Owen here — paramedic, 34"]).statements[0].key == "name"


def test_a_relation_said_alone_before_the_name_is_one_person():
    (wife,) = extract(["Супруга моя, Галина Сергеевна, ей 66 лет."]).statements
    assert wife.about.startswith("супруг") and "Галина" in wife.text
