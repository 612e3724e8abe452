"""Whose a sentence is when a name opens it after a label or a capitalised word, and what a new value replaces when
the old one was said in two sentences of one message, or said of no one known."""

from __future__ import annotations

import pytest

from konsilium.memory.attribution import first_person
from konsilium.memory.extract import extract
from konsilium.memory.forget_requests import forget_query


def whose(message: str) -> dict[str, str]:
    return {s.text: s.about for s in extract([message]).statements}


@pytest.mark.parametrize(
    ("message", "about"),
    [
        # a label before a dash names no one; the name after it is the subject
        ("Important thing though — Cian is allergic to peanuts, badly, he has an EpiPen.", "Cian"),
        ("Важный момент — Оля не ест глютен.", "Оля"),
        ("Work stuff — my boss Tom is leaving.", "boss Tom"),
        ("Quick update — I moved to Berlin.", "user"),
        ("Главврач — Эльмира Фаридовна, строгая, но справедливая.", "user"),  # one word: her role, no label
        ("And change of summer plans — Kostya's brother invited us to Sochi, so it's the Black Sea instead.", "user"),
        # a reaction before it is no one's name either
        ("Perfect. Important thing though — Cian is allergic to peanuts.", "Cian"),
        # a name and its verb open the sentence: theirs, though it names the user's relation later
        ("Kathleen is in Boston, she's my older sister, a retired teacher.", "Kathleen"),
        ("Fahy has me on ramipril now.", "user"),
        ("Rent's £650 each a month for the 2 bed (bills extra).", "user"),  # a thing's figure, no one's
        ("Tom's 40 next week.", "Tom"),
        # to whom, first, with no verb the user could have done: theirs
        ("Сыну 5 лет.", "сын"),
        ("Сыну Мише семь лет, он ходит на шахматы по средам.", "сын Миша"),
        ("А брату 45 размер в подарок.", "брат"),
        ("Сестре нравится Италия.", "сестра"),
        ("Маме купила шарф.", "user"),
        # two as one subject stay one statement
        ("Other thing: Ines and I are planning to go to Toronto in July.", "user"),
    ],
)
def test_the_subject_after_a_label_or_a_reaction(message, about):
    (statement,) = extract([message]).statements
    assert statement.about == about


def test_what_someone_has_written_in_capitals_and_the_she_after_it_are_theirs():
    said = whose("У Оли ДР 19 марта. Она бухгалтер в Сбере.")
    assert list(said.values()) == ["Оля", "Оля"]


def test_there_keeps_the_place_the_clause_before_named():
    said = [
        s.text
        for s in extract(["Маршрут через Барнаул, я там вырос, хочу детям показать свой старый двор."]).statements
    ]
    assert "Я там вырос (Барнаул)" in said
    said = [s.text for s in extract(["My daughter lives in Dublin. I go there every month."]).statements]
    assert said[-1] == "I go there every month (Dublin)"
    assert [s.text for s in extract(["Там вроде нет арахиса."]).statements] == ["Там вроде нет арахиса"]


def test_a_verb_of_we_is_the_users_own():
    assert first_person("их как раз откладываем на отпуск")
    assert not first_person("их откладывают на отпуск")


@pytest.mark.parametrize(
    ("message", "car"),
    [
        ("Летом едем на Алтай, поедем на машине, 3 дня дороги.", False),  # how one goes: no car of one's own
        ("Едем на дачу на Ниве.", True),  # the car one goes in is named
        ("Езжу на работу на Приоре.", True),
        ("Skoda Octavia 2017, 1.4 TSI.", True),
    ],
)
def test_going_somewhere_by_car_names_no_car_unless_it_names_one(message, car):
    keys = [s.key for s in extract([message]).statements]
    assert ("car" in keys) == car


def test_a_new_car_replaces_the_old_one_said_in_two_sentences(service, converse):
    converse(
        [
            "Машина опять не заводится. Skoda Octavia 2017, 1.4 TSI. Что проверить первым?",
            "Всё, продал шкоду, купил Haval Jolion.",
        ],
    )
    current = " ".join(m.text for m in service.store.list("current", limit=None))
    assert "Haval" in current
    assert "Skoda" not in current and "не заводится" not in current
    superseded = service.store.list("superseded", limit=None)
    assert {m.text for m in superseded} >= {"Машина опять не заводится", "Skoda Octavia 2017, 1.4 TSI"}
    for old in superseded:  # each keeps its history: what replaced it
        assert service.store.history(old.id)[-1].event == "UPDATE"
    recalled = " ".join(r.memory.text for r in service.recall("Какая у меня машина?", k=5))
    assert "Haval" in recalled and "Skoda" not in recalled


def test_a_correction_fixes_what_was_just_said_of_no_one_known(service, converse):
    converse(
        [
            "perfect. oh and the elternabend is on tuesday at 19:00, remind me to ask where they keep the epipen",
            "ой не во вторник, в четверг. во вторник у неё плавание, я уже всё путаю",
        ],
    )
    recalled = " ".join(r.memory.text for r in service.recall("what day is the elternabend?", k=5))
    assert "четверг" in recalled
    assert "tuesday at 19:00" not in recalled


@pytest.mark.parametrize(
    ("said", "topic"),
    [
        # when it was told sits between "I told you" and "about"; "listen" opens the request
        (
            "And listen, the thing I told you back in February about Bridie's son and his marriage — forget that.",
            "Bridie's son and his marriage",
        ),
        ("The stuff I told you last week about my debt — bin it.", "my debt"),
        ("Listen, forget my weight.", "my weight"),
        (
            "Quick one: забудь, пожалуйста, что я рассказывал про терапевта — I'd rather keep that out of here.",
            "терапевта",
        ),
    ],
)
def test_a_forget_request_names_its_topic_past_when_it_was_told(said, topic):
    assert forget_query(said) == topic


def test_a_to_do_naming_someone_replaces_no_fact_that_names_them(service, converse):
    converse(
        [
            "рабочие новости: теперь основной клиент — Mela Books, там редакторка Тамуна, прям адекватная",
            "спс. теперь надо написать Тамуне про график — набросай письмо",
        ],
    )
    current = [m.text for m in service.store.list("current", limit=None)]
    assert any("Mela Books" in text for text in current)
    assert service.store.list("superseded", limit=None) == []


@pytest.mark.parametrize("said", ["Хм, подумаем.", "Ок, попробуем.", "Thanks pet."])
def test_a_reaction_with_a_verb_of_we_is_no_memory(said):
    assert extract([said]).statements == []


def test_a_move_replaces_no_memory_said_beside_the_old_one_that_names_someone(service, converse):
    converse(
        [
            "Me, my partner Marta are moving to Lisbon in the spring, she got offered a job at Santa Maria (she's a "
            "nurse). We are renting a flat in Alfama.",
            "We moved to Porto in the end.",
        ],
    )
    current = [m.text for m in service.store.list("current", limit=None)]
    assert "We moved to Porto in the end" in current
    assert any("she's a nurse" in text for text in current)  # what it says of Marta stays
    assert [m.text for m in service.store.list("superseded", limit=None)] == ["We are renting a flat in Alfama"]


@pytest.mark.parametrize("said", ["Докладываю: минус 9 кг: 109 на весах седня", "Минус 9 кг, теперь 109."])
def test_a_weight_read_off_the_scales_or_lost_is_a_weight(said):
    assert [s.key for s in extract([said]).statements] == ["weight"]


@pytest.mark.parametrize(
    ("said", "about"),
    [
        ("Лозартан убрала, выписала амлодипин 5 мг вечером.", "user"),  # a medicine opens it: no one named
        ("Пью лозартан 50 утром.", "user"),
        ("I'm on candesartan now.", "user"),
    ],
)
def test_a_medicine_by_its_name_is_a_medication_and_no_ones_name(said, about):
    (statement,) = extract([said]).statements
    assert (statement.about, statement.key) == (about, "medication")


def test_forgetting_someone_takes_each_sentence_that_goes_on_about_them_and_no_one_elses(service, converse):
    converse(
        [
            "Собираю посылку Артёму в часть. Он просил берцы — у него 44-й размер, говорит, в казённых стёр ноги.",
            "Кстати, вчера Артёму звонил его отец, мой бывший муж Олег. Он уже лет пять живёт в Сочи, у него там "
            "другая семья, и вдруг вспомнил про сына — обещал перевести ему денег к дембелю.",
            "Хочу попросить Вас об одном: всё, что я когда-либо рассказывала про отца Артёма, пожалуйста, удалите.",
        ],
    )
    current = " ".join(m.text for m in service.store.list("current", limit=None))
    assert "Сочи" not in current and "другая семья" not in current and "Олег" not in current
    assert "44-й размер" in current  # what was said of Artyom himself stays


def test_a_medicine_one_is_allergic_to_is_an_allergy():
    (statement,) = extract(["У меня с молодости на пенициллин аллергия, вся отекаю."]).statements
    assert statement.key == "allergy"
