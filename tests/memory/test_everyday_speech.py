"""How people actually type to a personal assistant: whose a statement is when the subject comes after a word of
time, sits in brackets, is a slang relation or a doctor's instruction; thanks are no memories; "the new one" named
in passing is no change."""

from __future__ import annotations

import pytest

from konsilium.memory.extract import extract
from konsilium.memory.forget_requests import forget_query
from konsilium.memory.subjects import replaces_something


@pytest.mark.parametrize(
    ("message", "about"),
    [
        # a slang relation, and where they are with no verb
        ("батя все так же на камазе, 20 лет уже там, шутит что я тоже туда пойду после вуза хд", "папа"),
        ("Мама опять в больнице, давление", "мама"),
        # a word of time before the name
        ("обратно ильдар подкинул", "Ильдар"),
        ("Yesterday Tom bought a Tesla", "Tom"),
        # a doctor's instruction is the user's regimen, their news is theirs
        ("Терапевт сказала дефицит, теперь пить 5000 ме в день 2 месяца", "user"),
        ("The GP told me to take two puffs at night", "user"),
        ("Дима сказал, что переезжает в Москву", "Дима"),
        # what is said in brackets names no subject; "(my work bestie)" says who she is
        ("NO coriander in anything, tastes like soap to me (craig would eat a shoe he doesnt care)", "user"),
        # a contraction typed without its apostrophe is no name
        ("theyve put her donepezil up to 10mg and moved it to the mornings", "someone"),
    ],
)
def test_whose_a_casually_typed_statement_is(message, about):
    assert extract([message]).statements[0].about == about


def test_his_own_verb_with_someone_as_its_object_is_his_and_their_thing_is_theirs():
    said = "обратно ильдар подкинул, у него приора, норм тачка. занял у него 3.5к до зп кстати, надо отдать до 20го"
    whose = {s.text: s.about for s in extract([said]).statements}
    assert whose["Ильдар: У него приора, норм тачка"] == "Ильдар"
    assert whose["Занял у него 3.5к до зп кстати, надо отдать до 20го"] == "user"


@pytest.mark.parametrize("message", ["lush thank u", "Благодарю, очень чётко.", "perfect ta x", "спс огонь"])
def test_thanks_as_they_are_typed_are_no_memories(message):
    assert extract([message]).statements == []


def test_an_introduction_that_says_the_name_itself_is_one_name():
    said = "Добрый день. Позвольте представиться: меня зовут Лидия Андреевна, мне 48 лет."
    name = extract([said]).statements[0]
    assert name.text == "Меня зовут Лидия Андреевна" and name.key == "name"


@pytest.mark.parametrize(
    ("text", "changes"),
    [
        ("И о здоровье: с новым препаратом давление стало 125–130 на 80", False),
        ("Отпуск на новой работе мне согласовали", False),
        ("Easier at the new job, the commute is shorter", False),
        ("Перешла на новую работу в банк", True),
        ("I have a new job at Lidl", True),
        ("Теперь пью Экватор 5/10", True),
    ],
)
def test_the_new_one_named_in_passing_replaces_nothing_when_read_later(text, changes):
    assert replaces_something(text) is changes


@pytest.mark.parametrize(
    ("said", "topic"),
    [
        (
            "and the stuff i told u about priya's treatment, can u forget that pls. she told me in confidence",
            "priya's treatment",
        ),
        (
            "and pls forget all the stuff i told u about tom and the HR thing, it got sorted informally",
            "tom and the HR",
        ),
        ("oh and can u wipe that keysafe number i gave u before, bluebird are getting it changed", "keysafe number"),
    ],
)
def test_a_forget_request_as_typed_names_only_what_to_forget(said, topic):
    assert forget_query(said) == topic


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("Мой редми ноут 10 к обеду дохнет", "phone"),  # a Redmi Note is a phone, not a notebook
        ("у меня gtx 1660 super, 16 гб оперы", "gpu"),
        ("Also ordered the maxi-cosi car seat, £229 in the sale", None),  # a car seat is no car
        ("Got rid of the old car and got a skoda kodiaq", "car"),
        ("сняли с дамиром комнату на гвардейской, по 9к с каждого", "home.city"),  # renting a room is a home
        ("снимаю видео для ютуба", None),
        # a doctor named in health talk is no one's job; a job said of someone is theirs
        ("у мамы новости: эндокринолог повысил ей дозу Метформина — теперь по 1000 мг", "medication"),
        ("Моя сестра работает врачом в Казани", "job"),
    ],
)
def test_what_a_casually_named_thing_is(text, key):
    assert extract([text]).statements[0].key == key


def test_a_pronoun_typed_without_its_apostrophe_is_the_person_before_it():
    said = "mums memory clinic review today. theyve put her donepezil up to 10mg. shes still wandering at night tho"
    assert {s.about for s in extract([said]).statements} == {"mum"}


def test_names_written_small_start_their_own_statements_and_own_their_things():
    said = "ellie's 9 and does netball after school tuesdays til half 4, josh is 6 and has swimming weds"
    assert [s.about for s in extract([said]).statements] == ["Ellie", "Josh"]
    assert extract(["also ellies netball is moving to thursdays after easter"]).statements[0].about == "Ellie"
    assert extract(["sorry josh's swimming isnt straight after school its 5.15"]).statements[0].about == "Josh"


@pytest.mark.parametrize(
    ("text", "wish"),
    [
        ("Rather than fix a 25 yr old saw I bit the bullet -- SawStop PCS 3HP, $3,800 out the door", False),
        ("Mine was 'does this add a semester' lol. Answer: maybe one.", False),
        ("Answer in bullet points please", True),
        # his own writing is no wish on how the assistant writes
        ("Пишу с нового телефона, не знаю узнаете ли вы меня", False),
        ("Отвечай мне покороче, пожалуйста", True),
    ],
)
def test_only_a_wish_on_answers_is_pinned_as_one(text, wish):
    keys = [s.key for s in extract([text]).statements]
    assert ("answer.style" in keys) is wish


def test_a_wish_said_with_chtoby_and_a_past_form_is_a_wish():
    # "чтобы ты отвечал": the past form after "чтобы" wishes; "я так и не ответил" tells what was done
    assert [s.key for s in extract(["Хочу, чтобы ты отвечал по-русски"]).statements] == ["answer.language"]
    assert [s.kind for s in extract(["Я ей так и не ответил, не знаю что писать"]).statements] != ["preference"]


def test_he_is_the_last_one_named_who_can_be_a_he():
    said = "Сын Артём вернулся из армии. Мама плакала весь вечер. Без дела он не сидит: устроился в автосервис."
    whose = {s.text: s.about for s in extract([said]).statements}
    assert whose["Мама плакала весь вечер"] == "мама"
    assert [about for text, about in whose.items() if "автосервис" in text] == ["сын Артём"]


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        (
            "Finally upgraded the home server: swapped the old card for an RTX 3090 and bumped RAM to 128 GB",
            [("gpu", "an RTX 3090"), ("laptop.ram", "Bumped RAM to 128 GB")],
        ),
        ("Я переехал в Казань и устроился в Яндекс", [("home.city", "Я переехал в Казань"), ("job.role", "Устроился")]),
        ("I am tired and bored", [(None, "I am tired and bored")]),
    ],
)
def test_two_things_he_did_are_two_statements(said, expected):
    statements = extract([said]).statements
    assert [(s.key, s.about) for s in statements] == [(key, "user") for key, _ in expected]
    assert all(part in s.text for s, (_, part) in zip(statements, expected, strict=True))


@pytest.mark.parametrize(
    ("asked", "about", "kept"),
    [
        (
            "Что можно приготовить к столу, учитывая, что мама диабетик и пьёт Метформин по 850 мг два раза в день?",
            "мама",
            "Мама диабетик и пьёт Метформин по 850 мг два раза в день",
        ),
        ("Can you plan a menu for Sunday, given that my wife is vegan?", "wife", "My wife is vegan"),
    ],
)
def test_what_a_question_takes_as_given_is_kept_as_a_fact(asked, about, kept):
    assert [(s.about, s.text) for s in extract([asked]).statements] == [(about, kept)]


def test_their_news_is_theirs_and_an_internship_is_a_job():
    said = "Поняла, сок уберу. И у мамы новости: эндокринолог повысил ей дозу Метформина — теперь по 1000 мг."
    assert extract([said]).statements[0].about == "мама"
    (internship,) = extract(["Karl btw got an internship at pipedrive"]).statements
    assert (internship.about, internship.key) == ("Karl", "job")


@pytest.mark.parametrize(
    ("said", "key"), [("Езжу я на Ниве", "car"), ("Езжу я на работу на автобусе", None), ("Езжу на Ниве", "car")]
)
def test_what_he_drives_with_the_pronoun_after_the_verb(said, key):
    assert extract([said]).statements[0].key == key


@pytest.mark.parametrize(
    ("said", "about", "key"),
    [
        ("ну всё, в итоге переехали на каменную горку.", "user", "home.city"),
        ("В итоге переехали в Campo de Ourique, в субботу закончили таскать коробки", "user", "home.city"),
        ("В марте переехали в Казань", "user", "home.city"),
        ("В мае Оля переехала в Тбилиси", "Оля", "home.city"),
        ("В мае мама легла в больницу", "мама", None),
        ("На выходных ездили к маме", "user", None),
    ],
)
def test_a_move_said_after_when_or_in_the_end_is_a_move_of_whoever_follows(said, about, key):
    (statement,) = extract([said]).statements
    assert (statement.about, statement.key) == (about, key)


def test_a_title_typed_small_does_not_end_the_sentence():
    said = "unrelated but i started seeing a therapist, dr. lopes, online sessions in russian. moving messed me up"
    texts = [s.text for s in extract([said]).statements]
    assert any("dr. lopes, online sessions" in text for text in texts)


def test_why_he_asks_to_forget_after_the_request_is_no_second_request():
    said = "удали, пожалуйста, всё про психотерапевта. передумал, это слишком личное, не надо это помнить"
    assert [f.query for f in extract([said]).forgets] == ["психотерапевта"]


def test_telling_someone_at_work_something_is_no_job_of_ones_own():
    (told,) = extract(["Я курьеру код сказала, 1357, а он говорит не подходит"]).statements
    assert told.key != "job.role"
    assert extract(["Работаю курьером в яндекс еде"]).statements[0].key == "job.role"


@pytest.mark.parametrize(
    "said",
    [
        "Это Зоя, соседка, мы с ней 20 лет через забор. Только у неё у самой горе: сын опять в запое.",
        "This is Zoya, my neighbour. Her son is in rehab again.",
    ],
)
def test_this_is_someone_with_who_they_are_introduces_them_not_the_user(said):
    statements = extract([said]).statements
    assert all(s.key != "name" for s in statements)
    assert "Zoya" in statements[0].about or "Зоя" in statements[0].about
    assert statements[-1].about == statements[0].about  # her son is hers


def test_a_word_capitalized_only_as_a_sentence_opens_is_no_one_a_later_she_can_be():
    # "league" and "booking" were written small: "she" in the next message is not them
    before = (
        "found a 5 a side team!! a lad from Lumora plays with them. league plays thursday nights on a pitch in "
        "Alvalade. they're short a keeper so I'm in goal whether I like it or not lol."
    )
    said = extract(["she says he's gotten porky, 11.2 kg now"], before=before)
    assert "League" not in {s.about for s in said.statements}
    # a name he wrote as one still is
    later = extract(["He works at AquaSight now"], before="Tomasz is from Gdańsk.")
    assert [s.about for s in later.statements] == ["Tomasz"]


def test_what_she_told_him_he_can_do_is_his():
    said = "she said with the sun here I can drop the vitamin D to 1000 IU a day over the summer"
    assert [s.about for s in extract([said]).statements] == ["user"]
    assert [s.about for s in extract(["Она сказала, что я могу снизить дозу до 2000"]).statements] == ["user"]
    assert [s.about for s in extract(["She says he's gotten porky, 11.2 kg now"]).statements] != ["user"]


@pytest.mark.parametrize(
    "said",
    [
        # asked, though the sentence ends with no "?"
        "Их вообще можно совмещать? И не мешает ли это беговым нагрузкам.",
        "Чё подарить нормальное, не цветы",
        # what the message is about to ask, and steering the talk
        "Вопрос по здоровью",
        "Ещё вопрос про собаку",
        "Нужна идея подарка сестре",
        "Ну и вернёмся к бегу: когда можно первую лёгкую пробежку?",
        "Anyway, let's get back to the budget",
    ],
)
def test_what_only_asks_or_steers_the_talk_is_no_memory(said):
    assert extract([said]).statements == []


def test_a_fact_said_after_an_announced_question_is_kept():
    said = extract(["Ещё вопрос про собаку: он чешется второй месяц. Вопрос решён, машину продал"]).statements
    assert [s.text for s in said] == ["Вопрос про собаку: он чешется второй месяц", "Машину продал"]


@pytest.mark.parametrize(
    ("said", "about"),
    [
        # names of many countries, and in letters beyond English ones, typed small or not
        ("tomás is in lisbon", "Tomás"),
        ("Declan's thinking of selling the Ranger", "Declan"),
        ("Giorgi works at a bank in Vake", "Giorgi"),
        # a word capitalized as the sentence opens, or a name that is an ordinary word, is no one
        ("League plays thursday nights", "user"),
        ("Frank conversation with my boss today, I'm staying", "user"),
    ],
)
def test_who_a_sentence_opening_with_a_name_is_about(said, about):
    assert extract([said]).statements[0].about == about
