"""Whose answer a question gets (the user's allergy, not a friend's said beside it; a sister's birthday, not his),
who a name or a pronoun is ("Finally got…", "She lives in Harrogate with her dog Hamish", "Дана переехала"), news
of a new job or home in everyday words, lessons that are no wish about answers, and forget requests with a lead-in
("On another note: …", "that hospital worry: forget all about it") or a relative clause ("деньги, которые я
кому-то должна была")."""

from __future__ import annotations

import pytest

from konsilium.memory.extract import extract
from konsilium.memory.forget_requests import forget_query


def whose(message: str, before: str = "") -> dict[str, str]:
    return {s.text: s.about for s in extract([message], before=before).statements}


def keys(message: str) -> dict[str, str | None]:
    return {s.text: s.key for s in extract([message]).statements}


def current_text(service) -> str:
    return " ".join(m.text for m in service.store.list("current", limit=None))


def recalled(service, question: str) -> str:
    return " ".join(r.memory.text for r in service.recall(question, k=5))


def test_a_question_about_the_user_gets_his_answer_not_someone_elses_on_the_subject(service, converse):
    converse(
        [
            "Но у меня аллергия на shellfish, креветки особенно, губы раздувает",
            "А Priya арахис вообще не может, peanut allergy жёсткая",
            "Я 3 латте в день пью на смене",
        ]
    )
    mine = recalled(service, "На что у меня аллергия?")
    assert "shellfish" in mine and "peanut" not in mine
    theirs = recalled(service, "What is Priya allergic to?")
    assert "peanut" in theirs and "shellfish" not in theirs


def test_a_question_naming_no_one_for_sure_keeps_everyones_answers(service, converse):
    converse(["I'm allergic to shellfish, shrimp especially", "Вопрос, мама аллергик на собак", "У меня корги"])
    assert "мама" in recalled(service, "Who in my family is allergic to dogs?")


def test_a_birthday_question_gets_the_persons_birthday_not_the_users(service, converse):
    converse(["У меня др 17 февраля, хочу отметить на даче", "У Вити день рождения 14 апреля, что ему подарить?"])
    theirs = recalled(service, "Когда у Вити день рождения?")
    assert "14 апреля" in theirs and "17 февраля" not in theirs


def test_a_sentence_opening_adverb_is_no_one_and_a_pronoun_means_the_one_just_named():
    assert set(whose("Finally got a Pixel 8 in the Currys sale, 499").values()) == {"user"}
    said = whose(
        "ok random q — I've been seeing someone, Aoife, we met at the climbing wall. Her birthday is 27 may.",
        before="Finally got a Pixel 8 in the Currys sale, 499.",
    )
    assert said["Aoife: Her birthday is 27 may"] == "Aoife"


def test_a_clause_opening_with_she_is_the_person_named_before_not_the_pet_it_names():
    said = whose(
        "My sister Judith is visiting in May. She lives in Harrogate with her ridiculous dog Hamish. "
        "She has a bad knee."
    )
    assert set(said.values()) == {"sister Judith"}


def test_what_a_relation_has_is_theirs():
    assert list(whose("У свекрови 9 апреля юбилей, 65").values()) == ["свекровь"]
    assert list(whose("У мамы др 5 мая").values()) == ["мама"]
    assert list(whose("У Оли 9 мая др").values()) == ["Оля"]
    assert list(whose("У меня 3 кота").values()) == ["user"]


def test_a_name_the_dictionary_reads_as_a_word_is_still_a_name_before_its_verb():
    assert "user" not in whose("Дана наконец переехала в Montreal").values()
    # a noun that is no name, and an English word before a verb-like one, stay the user's
    assert list(whose("Хозяйка подняла аренду, с июня по 11к").values()) == ["user"]
    assert list(whose("Piano lessons are on Saturdays now").values()) == ["user"]


@pytest.mark.parametrize(
    "said",
    [
        "Ура наконец то получили ключи от новой хаты в академическом двушка на 3 этаже",
        "Квартира своя на уралмаше ипотеки нет слава богу",
        "Нашёл новую комнату near Ossington station, $950 all inclusive",
        "Found a room in a 2-bed in Drumcondra, moving on the 1st",
    ],
)
def test_a_home_said_in_everyday_words_is_where_one_lives(said):
    assert list(keys(said).values()) == ["home.city"]


def test_a_flat_described_is_no_new_home():
    assert list(keys("В новой квартире на окнах нет штор").values()) == [None]


def test_the_new_home_replaces_the_old_one_said_in_the_same_words(service, converse):
    converse(
        [
            "Квартира своя на уралмаше ипотеки нет слава богу коммуналка тыщ 7 зимой",
            "Ура наконец то получили ключи от новой хаты в академическом двушка на 3 этаже",
        ]
    )
    answer = recalled(service, "где я щас живу")
    assert "академическ" in answer and "уралмаш" not in answer


def test_leaving_for_a_named_place_is_the_new_job(service, converse):
    converse(["Я медсестра в кардиологии, в 34й больнице", "Я увольняюсь: Позвали в Авиценну, частная клиника"])
    answer = recalled(service, "Где я сейчас работаю?")
    assert "Авиценн" in answer and "34й" not in answer
    assert keys("I got the offer: Ухожу в Nordlight Games") == {"I got the offer: Ухожу в Nordlight Games": "job.role"}
    assert keys("Ухожу в отпуск с понедельника") == {"Ухожу в отпуск с понедельника": None}


def test_lessons_in_a_language_are_no_wish_about_answers(service, converse):
    converse(
        [
            "Answer in English like I asked, lol",
            "Anyway, I've started Portuguese lessons on Tuesday mornings at a little language school in the Baixa, "
            "with a lovely teacher called Teresa, and she has set us a short paragraph to write about our families.",
        ]
    )
    pinned = [m.text for m in service.store.list(pinned=True)]
    assert pinned == ["Answer in English like I asked, lol"]


@pytest.mark.parametrize(
    ("said", "topic"),
    [
        ("On another note entirely: would you please forget what I told you about my therapist?", "my therapist"),
        (
            "Oh, and please, that hospital worry from the beginning of March: could you forget all about it?",
            "hospital worry from the beginning of March",
        ),
        ("Про гараж: забудь", "гараж"),
        ("Кстати: забудь", ""),
    ],
)
def test_a_forget_request_after_a_lead_in_names_what_follows_or_else_the_lead_in(said, topic):
    assert forget_query(said) == topic


def test_delete_this_with_a_reason_after_it_forgets_what_the_sentence_before_named(service, converse):
    converse(
        [
            "Секретно: подаюсь на summer internship в Amazon, applied scientist intern",
            "помнишь, я про стажировку секретную рассказывал? сотри это, не прошёл, и вообще не хочу чтобы это "
            "где-то было.",
        ]
    )
    assert "Amazon" not in current_text(service)


def test_money_owed_named_in_a_relative_clause_forgets_the_loan_and_nothing_else(service, converse):
    converse(
        [
            "И вот ещё: заняла у Светки 1500 долларов на кухню, отдавать по 300 в месяц, с марта",
            "Доход ~4600 сейчас",
            "и, кстати, про деньги, которые я кому-то должна была, — забудь. всё отдала, тема закрыта",
        ]
    )
    kept = current_text(service)
    assert "1500" not in kept and "4600" in kept


def test_a_money_story_forgets_the_money_said_in_a_currency_and_not_someone_elses_prices(service, converse):
    converse(
        [
            "Марко занял у меня 500 евро ещё в марте, до сих пор тянет",
            "Сестра Света говорит, у них в аптеке такие рублей за 800 — она медсестра в Самаре",
            "Забудь про ту историю с деньгами и Марко, он всё вернул.",
        ]
    )
    kept = current_text(service)
    assert "500 евро" not in kept and "Самаре" in kept
