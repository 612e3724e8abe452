"""A correction of what was just said ("а не, не во вторник, в четверг", "oh wait scratch the £80, its more like
£95", "ой, перепутала — по четвергам") is stored as the corrected statement, which replaces the wrong one; a
sentence that only looks like one changes nothing."""

from __future__ import annotations

import pytest

from konsilium.config import MemorySettings
from konsilium.memory import ConversationLog
from konsilium.memory.extract import extract
from konsilium.memory.service import MemoryService


@pytest.mark.parametrize(
    ("message", "before", "expected"),
    [
        # the old value named, the statement in the previous message
        ("а не сорян не во вторник, в четверг. перепутал", "да пересдача по матану во вторник", ["в четверг"]),
        ("actually, not Tuesday — Thursday", "My Spanish lesson is on Tuesday at 5pm", ["on Thursday at 5pm"]),
        ("oh wait scratch the £80, its more like £95 now", "budget about £80 at aldi, 4 of us", ["£95 at aldi"]),
        ("не 2000, а 5000 ме", "терапевт сказала пить витамин д 2000 ме в день", ["5000 ме в день"]),
        # a word saying it was wrong, the new value alone
        ("sorry, I meant Thursday", "My Spanish lesson is on Tuesday at 5pm", ["on Thursday at 5pm"]),
        ("а, нет, за 120", "Купил мотоцикл за 140 тыс", ["за 120 тыс"]),
        ("точнее 14 марта", "У Вики др 12 марта", ["14 марта"]),
    ],
)
def test_a_correction_says_the_previous_statement_again_with_the_new_value(message, before, expected):
    statements = extract([message], before=before).statements
    assert len(statements) == 1
    fixed = statements[0]
    assert all(part in fixed.text for part in expected)
    assert fixed.update and fixed.corrects  # a change of the stored statement, which it names


def test_a_correction_in_the_same_message_fixes_its_statement_and_the_rest_is_read_on():
    said = (
        "я записалась в бассейн «Юность», хожу по вторникам, в 19:00... ой, простите, перепутала — по четвергам, "
        "в 19:00, абонемент на 8 занятий стоит 3 600 руб. Не вредно ли плавать при повышенном давлении?"
    )
    texts = [s.text for s in extract([said]).statements]
    assert "Хожу по четвергам, в 19:00" in texts
    assert not [t for t in texts if "вторник" in t or "перепутала" in t]
    assert "Абонемент на 8 занятий стоит 3 600 руб" in texts


@pytest.mark.parametrize(
    ("message", "before"),
    [
        ("I don't work on Mondays, only Tuesdays", "I work from home on Mondays"),
        ("wait no ill be at work til 4 and its a drive", "so thursdays i'll need to get her at half 4"),
        ("Я не курю, уже 3 года", "Курил 10 лет"),
        ("sorry, I meant Thursday", "I love pizza"),  # nothing of its kind to correct
    ],
)
def test_what_only_looks_like_a_correction_changes_no_earlier_statement(message, before):
    for statement in extract([message], before=before).statements:
        assert not statement.corrects
        assert statement.text.lower() != before.lower()


@pytest.fixture
def service(tmp_path):
    from konsilium.index.embedder import UniversalSentenceEncoderEmbedder

    log = ConversationLog(tmp_path / "conversations.sqlite3")
    yield MemoryService(log, MemorySettings(), embedder=UniversalSentenceEncoderEmbedder())
    log.close()


def test_the_corrected_memory_replaces_the_wrong_one_which_keeps_its_history(service, converse):
    converse(["да пересдача по матану во вторник", "а не сорян не во вторник, в четверг. перепутал"])
    current = [m.text for m in service.store.list("current", limit=None)]
    assert current == ["Пересдача по матану в четверг"]
    (wrong,) = service.store.list("superseded", limit=None)
    assert wrong.text == "Пересдача по матану во вторник"
    hits = service.recall("Когда у меня пересдача по матану?", k=3)
    assert [h.memory.text for h in hits] == ["Пересдача по матану в четверг"]
