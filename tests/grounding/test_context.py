"""Notes into the prompt within the model's context, counted with the real tokenizer of the embedded model."""

from __future__ import annotations

import pytest

from konsilium.engines import SamplingParams, load_embedded_default
from konsilium.grounding import ContextLengthExceeded, RetrievalOptions
from konsilium.grounding.context import ground, retrieval_query, with_notes
from konsilium.grounding.knowledge import Passage
from konsilium.pipeline import TurnPipeline, TurnRequest
from konsilium.roles.runtime import RoleService


@pytest.fixture(scope="module")
def engine():
    return load_embedded_default()


def passages(count: int, words: int) -> list[Passage]:
    return [
        Passage(
            "vault",
            f"notes/n{i}.md",
            f"n{i}",
            "Assistant > Part",
            f"passage {i} " + "контекст модели " * words,
            1 - i / 100,
        )
        for i in range(count)
    ]


def fit(engine, messages, found, context=None, reserve=64, share=0.5):
    return ground(
        messages,
        found,
        engine.count_tokens,
        engine.count_chat_tokens,
        context or engine.context_length,
        reserve,
        share,
    )[:2]


QUESTION = [{"role": "user", "content": "Что такое контекст модели?"}]


def test_notes_go_into_the_system_message_numbered_best_first(engine):
    messages, sources = fit(engine, QUESTION, passages(3, 20))
    assert [s.number for s in sources] == [1, 2, 3] and [s.note for s in sources] == [
        f"notes/n{i}.md" for i in range(3)
    ]
    assert messages[0]["role"] == "system" and messages[1:] == QUESTION
    system = messages[0]["content"]
    assert system.index('<note number="1" path="notes/n0.md"') < system.index('<note number="2"')
    assert "[^1]" in system  # the model is told how to cite


def test_the_callers_system_prompt_is_kept_first():
    own = [{"role": "system", "content": "Be brief."}, *QUESTION]
    merged = with_notes(own, ['<note number="1">x</note>'])
    assert merged[0]["content"].startswith("Be brief.\n\n") and len(merged) == 2


@pytest.mark.parametrize("context,reserve", [(1024, 128), (2048, 512), (600, 64)])
def test_prompt_plus_completion_never_overflows_and_the_last_passage_is_trimmed(engine, context, reserve):
    messages, sources = fit(engine, QUESTION, passages(20, 150), context=context, reserve=reserve, share=0.9)
    assert engine.count_chat_tokens(messages) + reserve <= context
    assert sources, "something should fit"
    assert len(sources) < 20
    assert messages[0]["content"].rstrip().endswith("…\n</note>") or engine.count_chat_tokens(messages) + reserve > (
        context - 200
    )


def test_the_share_caps_how_much_of_the_window_notes_take(engine):
    small, _ = fit(engine, QUESTION, passages(20, 150), context=4096, share=0.1)
    large, _ = fit(engine, QUESTION, passages(20, 150), context=4096, share=0.6)
    assert engine.count_chat_tokens(small) <= 0.1 * 4096 + engine.count_chat_tokens(with_notes(QUESTION, [])) + 5
    assert engine.count_chat_tokens(large) > 2 * engine.count_chat_tokens(small)


def test_messages_that_alone_overflow_are_refused_not_cut(engine):
    long = [{"role": "user", "content": "слово " * 3000}]
    with pytest.raises(ContextLengthExceeded, match="maximum context length is 1024"):
        fit(engine, long, passages(2, 10), context=1024)


def test_a_short_follow_up_searches_with_the_question_before_it():
    messages = [
        {"role": "user", "content": "How do I run Qwen3-30B-A3B with vLLM on one GPU?"},
        {"role": "assistant", "content": "Use tensor parallel 1 ..."},
        {"role": "user", "content": "and with LoRA?"},
    ]
    assert retrieval_query(messages) == "How do I run Qwen3-30B-A3B with vLLM on one GPU?\nand with LoRA?"
    messages[-1]["content"] = "and what changes if I enable LoRA adapters for several roles at the same time?"
    assert retrieval_query(messages) == messages[-1]["content"]
    assert retrieval_query([{"role": "system", "content": "x"}]) == ""


@pytest.mark.parametrize(
    "raw,error",
    [
        ("yes", "true, false or an object"),
        ({"collection": "x"}, "unknown field"),
        ({"collections": []}, "non-empty list"),
        ({"k": 0}, "from 1 to 50"),
        ({"k": True}, "from 1 to 50"),
        ({"mode": "magic"}, "one of"),
    ],
)
def test_bad_retrieval_options_are_clear_errors(raw, error):
    with pytest.raises(ValueError, match=error):
        RetrievalOptions.parse(raw, True, 6)


def test_retrieval_options_accept_the_documented_forms():
    assert RetrievalOptions.parse(None, True, 6) == RetrievalOptions(True, None, 6)
    assert RetrievalOptions.parse(False, True, 6).enabled is False
    parsed = RetrievalOptions.parse({"collections": "work", "k": 3, "mode": "bm25"}, True, 6)
    assert (parsed.collections, parsed.k, parsed.mode) == (["work"], 3, "bm25")


def test_without_an_index_the_pipeline_passes_messages_through(engine):
    pipeline = TurnPipeline(engine, RoleService(engine))
    turn = pipeline.prepare(TurnRequest("chat.completions", "konsilium", SamplingParams(max_tokens=8), QUESTION))
    assert turn.messages == QUESTION and turn.sources == [] and turn.tail() == "" and not turn.show_sources


def test_passages_linking_to_the_same_place_share_one_footnote(engine):
    same = [
        Passage("vault", "a.md", "a", "Assistant", "первый кусок", 0.9),
        Passage("vault", "a.md", "a", "User", "вопрос", 0.8),
        Passage("vault", "b.md", "b", "Assistant > Итог", "итог", 0.7),
    ]
    messages, sources = fit(engine, QUESTION, same)
    assert [s.number for s in sources] == [1, 1, 2]
    assert messages[0]["content"].count('<note number="1"') == 2
    from konsilium.grounding import render_sources

    assert render_sources(sources).strip().splitlines()[-2:] == ["[^1]: [[a]]", "[^2]: [[b#Итог]]"]


def test_a_roles_scope_carries_its_folders_and_tags_into_the_search_options():
    from konsilium.grounding.context import RetrievalOptions
    from konsilium.roles.spec import RetrievalScope

    scoped = RetrievalOptions(k=4).within(RetrievalScope(folders=("Sport",), tags=("#training",)))
    assert (scoped.folders, scoped.tags, scoped.k) == (("Sport",), ("training",), 4)
