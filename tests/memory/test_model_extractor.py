"""`memory.extractor: model`: a capable engine reads the exchange and answers JSON; its facts go through the same
decisions as the rules' (supersede by subject and meaning); an answer that does not parse falls back to the rules,
so nothing said is lost. The engine is a stand-in answering fixed JSON (a 30B model does not run here)."""

from __future__ import annotations

import json
import time

import pytest

from konsilium.config import MemorySettings, open_home
from konsilium.engines import GenerationResult
from konsilium.memory import ConversationLog, Exchange
from konsilium.memory.extractors import ModelExtractor, RulesExtractor, make_extractor, parse_model_answer
from konsilium.memory.service import MemoryService


class ScriptedEngine:
    """Answers each extraction prompt with the next scripted text, and keeps the prompts it got."""

    def __init__(self, *answers: str):
        self.answers, self.prompts = list(answers), []

    def generate_chat(self, messages, params, adapter=None):
        self.prompts.append(messages[-1]["content"])
        return GenerationResult(self.answers.pop(0), "stop", 10, 10)


@pytest.fixture(scope="module")
def embedder():
    from konsilium.index.embedder import UniversalSentenceEncoderEmbedder

    return UniversalSentenceEncoderEmbedder()


def exchange(i: int, text: str) -> Exchange:
    return Exchange(
        f"chatcmpl-{i}",
        time.time() + i,
        "chat.completions",
        "konsilium",
        None,
        [{"role": "user", "content": text}],
        "ok",
        "stop",
        [],
    )


def test_the_models_facts_are_stored_and_superseded_like_the_rules_ones(tmp_path, embedder):
    engine = ScriptedEngine(
        json.dumps(
            {
                "facts": [
                    {"text": "Igor owns an RTX 3090", "about": "friend Igor", "kind": "person", "key": "gpu"},
                    {"text": "The user works as a teacher", "about": "user", "kind": "work", "key": "job"},
                ]
            }
        ),
        "Sure! ```json\n"
        + json.dumps(
            {
                "facts": [
                    {
                        "text": "The user is now a methodologist",
                        "about": "user",
                        "kind": "work",
                        "key": "job",
                        "update": True,
                    }
                ]
            }
        )
        + "\n```",
        json.dumps({"facts": [], "forget": ["friend Igor's GPU"]}),
    )
    with ConversationLog(tmp_path / "c.sqlite3") as log:
        service = MemoryService(
            log, MemorySettings(extractor="model"), embedder=embedder, extractor=ModelExtractor(engine)
        )
        for i, text in enumerate(
            ["My friend Igor has an RTX 3090. I teach.", "I'm a methodologist now.", "Forget about Igor's GPU."]
        ):
            log.record(exchange(i, text))
            service.catch_up()
        current = {(m.about, m.text) for m in service.store.list()}
        origins = {m.origin for m in service.store.list(None)}
    assert current == {("user", "The user is now a methodologist")}
    assert "My friend Igor has an RTX 3090. I teach." in engine.prompts[0]  # the model saw the user's words
    assert origins == {"model"}


def test_a_malformed_answer_falls_back_to_the_rules(tmp_path, embedder):
    with ConversationLog(tmp_path / "c.sqlite3") as log:
        service = MemoryService(log, embedder=embedder, extractor=ModelExtractor(ScriptedEngine("I think {not json")))
        log.record(exchange(1, "Я живу в Казани."))
        service.catch_up()
        assert [m.text for m in service.store.list()] == ["Я живу в Казани"]


def test_parse_keeps_only_well_formed_facts():
    parsed = parse_model_answer(
        '{"facts": [{"text": ""}, {"text": "I like tea", "kind": "weird", "key": 5}, 3], "forget": ["x", 7]}'
    )
    assert [(s.text, s.kind, s.key) for s in parsed.statements] == [("I like tea", "fact", None)]
    assert [f.query for f in parsed.forgets] == ["x"]
    with pytest.raises(ValueError):
        parse_model_answer("no json here")


@pytest.mark.parametrize(
    ("kind", "choice", "expected"),
    [
        ("transformers", "auto", RulesExtractor),
        ("openai-upstream", "auto", ModelExtractor),
        ("vllm", "rules", RulesExtractor),
        ("transformers", "model", ModelExtractor),
    ],
)
def test_the_setting_chooses_the_extractor(tmp_path, kind, choice, expected):
    (tmp_path / "konsilium.yaml").write_text(f"engine: {{kind: {kind}}}\nmemory: {{extractor: {choice}}}\n")
    assert isinstance(make_extractor(open_home(tmp_path), engine=ScriptedEngine()), expected)
