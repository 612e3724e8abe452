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


def test_a_request_asked_as_a_question_names_only_what_to_forget():
    said = "and the stuff i told u about priya's treatment, can u forget that pls. she told me in confidence"
    assert forget_query(said) == "priya's treatment"
