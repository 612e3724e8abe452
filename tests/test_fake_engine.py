"""The fake engine other tests stand on: it keeps the engine protocol, tells what it received, and is observable."""

from __future__ import annotations

import threading

import pytest
import torch
from fake_engine import FakeEngine, FakeEngineFailure, FakeSlotsEngine

from konsilium.engines import AdapterRequest, AdapterSupport, Engine, SamplingParams

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def test_it_is_an_engine_and_its_answer_shows_what_it_received():
    engine = FakeEngine()
    assert isinstance(engine, Engine) and engine.adapter_support is AdapterSupport.NONE
    plain = engine.generate_chat(QUESTION, SamplingParams())
    assert plain.text == "[base] notes=0 system=no | What is the capital of France?"
    assert (plain.finish_reason, plain.completion_tokens) == ("stop", len(plain.text.split()))
    assert plain.prompt_tokens == engine.count_chat_tokens(QUESTION) == engine.last.prompt_tokens
    grounded = [{"role": "system", "content": '<note number="1">a</note> <note number="2">b</note>'}, *QUESTION]
    assert engine.generate_chat(grounded, SamplingParams()).text.startswith("[base] notes=2 system=yes |")
    assert engine.last.messages == grounded
    assert engine.generate("The capital of France is", SamplingParams()).text == (
        "[base] prompt | The capital of France is"
    )
    with pytest.raises(ValueError):
        engine.generate_chat([{"role": "nobody", "content": "x"}], SamplingParams())
    with pytest.raises(ValueError, match="base model only"):
        engine.generate_chat(QUESTION, SamplingParams(), AdapterRequest("sport"))


def test_max_tokens_stop_strings_and_the_context_are_honoured():
    engine = FakeEngine()
    short = engine.generate_chat(QUESTION, SamplingParams(max_tokens=3))
    assert (short.text, short.finish_reason, short.completion_tokens) == ("[base] notes=0 system=no", "length", 3)
    stopped = engine.generate_chat(QUESTION, SamplingParams(stop=["capital"]))
    assert (stopped.text, stopped.finish_reason) == ("[base] notes=0 system=no | What is the ", "stop")
    engine = FakeEngine(context_length=12)
    room = engine.generate_chat([{"role": "user", "content": "a b c d e f g h"}], SamplingParams(max_tokens=None))
    assert room.prompt_tokens + room.completion_tokens == 12 and room.finish_reason == "length"
    with pytest.raises(ValueError, match="context is 12"):
        engine.generate_chat([{"role": "user", "content": "word " * 20}], SamplingParams())


def test_a_stream_comes_in_several_chunks_that_add_up_to_the_answer():
    engine = FakeEngine(filler_words=5)
    whole = engine.generate_chat(QUESTION, SamplingParams(max_tokens=10))
    chunks = list(engine.stream_chat(QUESTION, SamplingParams(max_tokens=10)))
    assert len(chunks) == 10 and "".join(c.text for c in chunks) == whole.text
    assert [c.finish_reason for c in chunks] == [None] * 9 + ["length"]
    assert [c.completion_tokens for c in chunks] == list(range(1, 11))
    assert engine.open_streams == 0 and engine.streams_finished == 1


def test_closing_a_stream_early_releases_it_and_is_counted():
    engine = FakeEngine(filler_words=50)
    stream = engine.stream_chat(QUESTION, SamplingParams())
    next(stream)
    assert engine.open_streams == 1
    stream.close()
    assert engine.open_streams == 0 and engine.streams_closed_early == 1
    assert list(stream) == []


def test_a_stream_can_fail_mid_way_and_wait_on_a_gate():
    failing = FakeEngine(fail_after_chunks=2)
    stream = failing.stream_chat(QUESTION, SamplingParams())
    assert [next(stream).text, next(stream).text] == ["[base]", " notes=0"]
    with pytest.raises(FakeEngineFailure):
        next(stream)
    gate = threading.Event()
    gated = FakeEngine(gate=gate)
    stream = gated.stream_chat(QUESTION, SamplingParams())
    next(stream)
    later = threading.Timer(0.2, gate.set)
    later.start()
    assert "".join(c.text for c in stream).endswith("France?")
    assert gate.is_set()


def test_the_slots_variant_answers_per_adapter_and_knows_what_is_loaded():
    engine = FakeSlotsEngine(slots=2)
    engine.configure_adapters(slots=2, max_rank=16)
    assert engine.adapter_support is AdapterSupport.SLOTS and isinstance(engine, Engine)

    def weights(seed):
        g = torch.Generator().manual_seed(seed)
        return {"a.lora_A.weight": torch.randn(8, 4, generator=g), "a.lora_B.weight": torch.randn(4, 8, generator=g)}

    class Config:
        r = 8

    with pytest.raises(ValueError, match="not loaded"):
        engine.generate_chat(QUESTION, SamplingParams(), AdapterRequest("sport"))
    engine.load_adapter("sport", Config, weights(1))
    engine.load_adapter("physics", Config, engine.prepare_adapter("physics", Config, weights(2)))
    assert engine.loaded_adapters() == ["physics", "sport"]
    with pytest.raises(RuntimeError, match="no free adapter slot"):
        engine.load_adapter("extra", Config, weights(3))
    answers = {
        name: engine.generate_chat(QUESTION, SamplingParams(), AdapterRequest(name) if name else None).text
        for name in ("sport", "physics", None)
    }
    assert answers["sport"].startswith("[sport#") and answers["physics"].startswith("[physics#")
    assert len(set(answers.values())) == 3 and engine.last.adapter is None
    engine.unload_adapter("sport")
    engine.load_adapter("sport", Config, weights(4))  # same name, other weights: another answer
    assert engine.generate_chat(QUESTION, SamplingParams(), AdapterRequest("sport")).text != answers["sport"]

    class TooBig:
        r = 32

    with pytest.raises(ValueError, match="rank 32"):
        engine.prepare_adapter("big", TooBig, weights(5))
