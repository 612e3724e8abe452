"""Issue 10: Sources only when a note is relevant. Fused scores are normalized per query, so the cut is on each
passage's raw dense cosine (`retrieval.min_relevance`), over a real index and the real bundled embedders: an
on-topic question gets its note in the prompt and cited, an off-topic one gets no notes block and no Sources,
while a search still shows everything ranked."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from fake_engine import FakeEngine

from konsilium.config import open_home
from konsilium.engines import SamplingParams
from konsilium.grounding import Knowledge
from konsilium.grounding.context import relevant
from konsilium.grounding.knowledge import Passage
from konsilium.index.indexer import Indexer
from konsilium.pipeline import TurnPipeline, TurnRequest
from konsilium.roles.runtime import RoleService

NOTES = {
    "Kitchen/Sourdough starter.md": "# Sourdough starter\nFeed the sourdough starter every day with equal weights of "
    "rye flour and water. Keep the jar at room temperature; it is ready to bake with when it doubles in 6 hours.",
    "Bike/Chain care.md": "# Chain care\nClean the bicycle chain with a degreaser every 300 km, then oil each link "
    "and wipe off the excess. A worn chain stretches and wears the cassette.",
    "Work/Standup.md": "# Standup notes\nThe deploy pipeline failed twice this week because the staging database "
    "migration timed out. Action: split the migration into batches.",
}


def ask(knowledge, text: str):
    engine = FakeEngine(context_length=8192)
    pipeline = TurnPipeline(engine, RoleService(engine), knowledge)
    request = TurnRequest(
        "chat.completions", "konsilium", SamplingParams(max_tokens=8), [{"role": "user", "content": text}]
    )
    turn = pipeline.prepare(request)
    answer = pipeline.generate(turn)[0].content
    system = turn.messages[0]["content"] if turn.messages[0]["role"] == "system" else ""
    return turn, answer, system


@pytest.fixture(scope="module")
def knowledge(tmp_path_factory, embedder):
    root = tmp_path_factory.mktemp("relevance")
    vault = root / "vault"
    for name, text in NOTES.items():
        (vault / name).parent.mkdir(parents=True, exist_ok=True)
        (vault / name).write_text(text, encoding="utf-8")
    home = open_home(root / "home")
    Indexer(home, embedder=embedder).run([vault])
    return Knowledge(open_home(root / "home"))


def test_the_default_cutoff_is_the_calibrated_one(knowledge):
    assert knowledge.min_relevance == 0.25


def test_an_on_topic_question_is_grounded_in_its_note_and_cites_it(knowledge):
    turn, answer, system = ask(knowledge, "How often should I feed my sourdough starter?")
    assert turn.sources and turn.sources[0].note == "Kitchen/Sourdough starter.md"
    assert {s.note for s in turn.sources} <= {"Kitchen/Sourdough starter.md"}  # the others are off-topic for it
    assert system.count("<note ") == len(turn.sources)  # cited exactly what was given to the model
    assert "Sources: [[Sourdough starter]]" in answer and "[[Chain care]]" not in answer


@pytest.mark.parametrize("question", ["What is the capital of France?", "What is 17 times 23?"])
def test_an_off_topic_question_gets_no_notes_and_no_sources(knowledge, question):
    turn, answer, system = ask(knowledge, question)
    assert turn.sources == [] and turn.tail() == "" and "Sources" not in answer
    assert "<note" not in system and answer.startswith("[base] notes=0 system=no |")
    assert turn.record.sources == []
    # A search is not an answer: it still shows everything, ranked, with the relevance it was cut on.
    passages = knowledge.search(question, 10)
    assert len(passages) == 3 and all(p.relevance < knowledge.min_relevance for p in passages)


def test_zero_disables_the_cutoff(knowledge, tmp_path):
    home = Path(shutil.copytree(knowledge.home.root, tmp_path / "home"))
    settings = yaml.safe_load((home / "konsilium.yaml").read_text(encoding="utf-8")) or {}
    settings.setdefault("retrieval", {})["min_relevance"] = 0
    (home / "konsilium.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    unfiltered = Knowledge(open_home(home))
    assert unfiltered.min_relevance == 0
    turn, answer, _ = ask(unfiltered, "What is the capital of France?")
    assert len(turn.sources) == 3 and "Sources:" in answer


def test_relevance_is_the_raw_cosine_and_unknown_in_bm25_mode(knowledge):
    hybrid = knowledge.search("clean the bicycle chain", 3)
    dense = {p.note: p.score for p in knowledge.search("clean the bicycle chain", 3, mode="dense")}
    assert all(p.relevance == pytest.approx(dense[p.note]) for p in hybrid)
    assert hybrid[0].score >= hybrid[0].relevance  # fused scores are on another scale
    assert all(p.relevance is None for p in knowledge.search("chain", 3, mode="bm25"))


def test_passages_of_unknown_relevance_are_kept():
    passages = [Passage("v", "a.md", "a", "", "x", 1.0, 0.6), Passage("v", "b.md", "b", "", "y", 0.9, 0.1)]
    unknown = Passage("v", "c.md", "c", "", "z", 0.8)
    assert [p.note for p in relevant([*passages, unknown], 0.25)] == ["a.md", "c.md"]
    assert relevant(passages, 0) == passages


def test_a_russian_vault_on_the_multilingual_embedder(indexed_steps):
    """The sample vault's notes (USE-m3 by `auto`): its own question is grounded, general knowledge is not."""
    steps = Knowledge(open_home(indexed_steps.home))
    assert yaml.safe_load((indexed_steps.home / "index" / "vault.meta.json").read_text())["model"] == "use-m3"
    turn, answer, _ = ask(steps, "Какая видеокарта и сколько видеопамяти нужно под локальную модель?")
    assert turn.sources and "Sources:" in answer
    for question in ("Какая столица Франции?", "Как испечь блины на молоке?", "What is the capital of France?"):
        turn, answer, system = ask(steps, question)
        assert turn.sources == [] and "Sources" not in answer and "<note" not in system, question
