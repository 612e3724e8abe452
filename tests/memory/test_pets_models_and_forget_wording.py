"""A pronoun that can only mean the pet just mentioned, a change to a thing one owns that names no model, whose
allergy "у Алинки" is, and forget requests worded as people word them ("scrap whatever I said about…", "same for
X, forget that part", "in feb")."""

from __future__ import annotations

import pytest

from konsilium.memory.extract import extract
from konsilium.memory.forget_requests import forget_query, month_told


def whose(message: str) -> dict[str, str]:
    return {s.text: s.about for s in extract([message]).statements}


def current_text(service) -> str:
    return " ".join(m.text for m in service.store.list("current", limit=None))


def recalled(service, question: str) -> str:
    return " ".join(r.memory.text for r in service.recall(question, k=5))


def test_a_pronoun_no_person_can_take_is_the_pet_just_mentioned():
    said = whose(
        "Были у ветеринара с котёнком, прививка. Ржали всем кабинетом — оказалось наша девочка вообще мальчик))) "
        "Теперь он Мурзик, дети переименовали"
    )
    assert said["Кот: Теперь он Мурзик, дети переименовали"] == "user"
    assert whose("We adopted a puppy last week. He is called Rex.")["Puppy: He is called Rex"] == "user"
    # a person named before keeps the pronoun
    assert list(whose("Мой брат Глеб завёл собаку. Он пожарный.").values()) == ["брат Глеб", "брат Глеб"]


def test_the_pets_new_name_comes_back_for_a_question_about_the_pet(service, converse):
    converse(
        [
            "Мы котёнка взяли: серая, 2 мес, назвали Муся. Чем кормить?",
            "Были у ветеринара с котёнком, прививка. Ржали всем кабинетом — оказалось наша девочка вообще "
            "мальчик))) Теперь он Мурзик, дети переименовали",
        ]
    )
    assert "Мурзик" in recalled(service, "Как зовут нашего кота?")


def test_a_new_phone_said_without_its_model_leaves_the_model_named_before(service, converse):
    converse(
        [
            "Мне на 8 Марта дети подарили новый телефон, Honor, большой, экран как у планшета.",
            "Пишу вам прямо с дачи, с нового телефона. Как укрыть розы?",
        ]
    )
    assert "Honor" in recalled(service, "Какой у меня сейчас телефон?")


def test_what_someone_has_after_a_clause_naming_no_one_is_theirs():
    said = whose("Тока без арахиса, у Алинки аллергия на арахис, в прошлом году скорую вызывали")
    assert "user" not in said.values()
    assert list(whose("Купила торт, у Оли ДР").values()) == ["Оля"]


@pytest.mark.parametrize(
    ("said", "topic"),
    [
        (
            "also unrelated, scrap whatever I said about my pay at the old job, no need to keep that.",
            "my pay at the old job",
        ),
        (
            "btw the counselling thing I told you about in feb — please don't keep any of that, delete it.",
            "the counselling",
        ),
        # "that part" names nothing: what it is the same for does
        (
            "and same for the money I borrowed from my friend back home, forget that part, it's sorted now",
            "the money I borrowed from my friend back home",
        ),
        ("forget that part", ""),
    ],
)
def test_a_forget_request_names_its_topic_however_it_is_worded(said, topic):
    assert forget_query(said) == topic


def test_a_month_said_short_is_when_it_was_told():
    assert month_told("the counselling thing I told you about in feb — delete it") == 2
    assert month_told("forget the stuff I mentioned back in Sept") == 9


def test_forgetting_the_crypto_forgets_the_bitcoin_and_nothing_said_beside_it(service, converse):
    converse(
        [
            "Ещё нюанс: я должен другу Артёму 2300$, он мне занял на переезд. И есть 0.4 BTC, лежит с 2021, не трогаю.",
            "И the crypto stuff — забудь, pls, like it never happened.",
        ]
    )
    current = current_text(service)
    assert "BTC" not in current
    assert "2300" in current


def test_forgetting_what_holds_two_things_named_takes_it_whoever_it_is_about(service, converse):
    converse(
        [
            "Рустем на даче поставил на калитку кодовый замок, код 4471, я вам пишу, чтобы не забыть.",
            "А у меня уже руки чешутся по даче, рассаду купила.",
            "Ещё одно: цифры от калитки на даче, что я вам писала, — сотрите, пожалуйста.",
        ]
    )
    current = current_text(service)
    assert "4471" not in current
    assert "руки чешутся" in current and "Рассаду" in current
