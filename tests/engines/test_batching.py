"""Continuous batching in the transformers engine, on the real embedded model: batched requests give what they
give alone, and closing or failing one request leaves the others (and the scheduler) alone."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from konsilium.engines import SamplingParams, load_embedded_default

QUESTIONS = [
    "List three colors.",
    "Hi",
    "Write a long story about a dragon who learns to bake bread in a small mountain village.",
    "What is the capital of France?",
]


@pytest.fixture(scope="module")
def engine():
    engine = load_embedded_default()
    yield engine
    engine.configure_batching()  # the session shares this engine: leave it as it was


@pytest.fixture(scope="module")
def prompts(engine):
    return [engine.apply_chat_template([{"role": "user", "content": q}]) for q in QUESTIONS]


def batched(engine, requests: list[tuple[str, SamplingParams]]) -> list:
    """Start every stream before reading any (the scheduler runs without waiting for readers), then read them."""
    before = engine._scheduler.batch_sizes.copy()
    streams = [engine.stream(prompt, params) for prompt, params in requests]
    results = [list(stream) for stream in streams]
    steps = engine._scheduler.batch_sizes - before
    assert max(steps, default=0) >= 2, f"the requests never shared a forward pass: {steps}"
    return results


def joined(chunks) -> tuple:
    last = chunks[-1]
    return "".join(c.text for c in chunks), last.finish_reason, last.prompt_tokens, last.completion_tokens


def test_greedy_batched_equals_alone_with_different_lengths_and_budgets(engine, prompts):
    requests = [(p, SamplingParams(max_tokens=n, temperature=0)) for p, n in zip(prompts, (10, 4, 12, 7), strict=True)]
    alone = [joined(list(engine.stream(p, params))) for p, params in requests]
    together = [joined(chunks) for chunks in batched(engine, requests)]
    assert together == alone


def test_stop_string_and_seeded_sampling_among_greedy_requests(engine, prompts):
    greedy = SamplingParams(max_tokens=10, temperature=0)
    story = joined(list(engine.stream(prompts[2], greedy)))[0]
    stop = story.split()[3]  # a word the greedy story really contains
    with_stop = SamplingParams(max_tokens=10, temperature=0, stop=[stop])
    sampled = SamplingParams(max_tokens=10, temperature=0.9, top_p=0.9, seed=7)
    requests = [(prompts[2], with_stop), (prompts[0], sampled), (prompts[3], greedy), (prompts[1], sampled)]
    alone = [joined(list(engine.stream(p, params))) for p, params in requests]
    together = [joined(chunks) for chunks in batched(engine, requests)]
    assert together == alone
    assert together[0][0] == story[: story.index(stop)] and together[0][1] == "stop"


def test_closing_one_stream_leaves_the_others_running(engine, prompts):
    params = SamplingParams(max_tokens=8, temperature=0)
    alone = joined(list(engine.stream(prompts[0], params)))
    closed = engine.stream(prompts[2], SamplingParams(max_tokens=64, temperature=0))
    kept = engine.stream(prompts[0], params)
    first = next(closed)
    closed.close()
    closed.close()  # idempotent
    assert first.finish_reason is None and list(closed) == []
    assert joined(list(kept)) == alone


def test_close_from_another_thread_wakes_a_blocked_reader(engine, prompts):
    stream = engine.stream(prompts[2], SamplingParams(max_tokens=64, temperature=0))
    got, started = [], threading.Event()

    def read():
        for chunk in stream:
            got.append(chunk)
            started.set()

    reader = threading.Thread(target=read)
    reader.start()
    assert started.wait(60)
    stream.close()
    reader.join(30)
    assert not reader.is_alive()
    assert got and got[-1].finish_reason is None  # ended by the close, not by its budget


def test_a_failing_request_fails_alone(engine, prompts):
    # A temperature this small makes the scaled logits infinite: torch.multinomial raises on that row only.
    broken = SamplingParams(max_tokens=6, temperature=1e-40)
    params = SamplingParams(max_tokens=6, temperature=0)
    alone = joined(list(engine.stream(prompts[0], params)))
    failing, fine = engine.stream(prompts[1], broken), engine.stream(prompts[0], params)
    with pytest.raises(RuntimeError, match="generation failed"):
        list(failing)
    assert joined(list(fine)) == alone


def test_a_failing_forward_reaches_every_caller_and_the_scheduler_survives(engine, prompts):
    params = SamplingParams(max_tokens=6, temperature=0)

    def fail_batched_steps(module, args):  # fault injection on the real model: only forwards of several rows
        if args[0].shape[0] > 1:
            raise torch.OutOfMemoryError("injected")

    hook = engine.model.lm_head.register_forward_pre_hook(fail_batched_steps)
    try:
        with engine._scheduler._cond:  # admitted together: none can finish alone before the others join it
            streams = [engine.stream(p, params) for p in prompts[:3]]
        deadline = time.monotonic() + 60
        for stream in streams:
            with pytest.raises(RuntimeError, match="injected"):
                list(stream)
            assert time.monotonic() < deadline
    finally:
        hook.remove()
    assert engine.generate(prompts[0], SamplingParams(max_tokens=2, temperature=0)).completion_tokens == 2


def test_serial_mode_and_a_small_token_budget_queue_requests(engine, prompts):
    params = SamplingParams(max_tokens=4, temperature=0)
    alone = [joined(list(engine.stream(p, params))) for p in prompts[:3]]
    longest = max(engine.count_tokens(p) for p in prompts[:3]) + 4
    for settings in ({"max_batch_size": 1}, {"max_batch_tokens": longest}):
        engine.configure_batching(**settings)
        try:
            streams = [engine.stream(p, params) for p in prompts[:3]]
            assert [joined(list(s)) for s in streams] == alone
            assert set(engine._scheduler.batch_sizes) == {1}  # never two at once
        finally:
            engine.configure_batching()


def test_a_request_closed_while_queued_never_runs(engine, prompts):
    engine.configure_batching(max_batch_size=1)
    try:
        params = SamplingParams(max_tokens=4, temperature=0)
        first, queued = engine.stream(prompts[0], params), engine.stream(prompts[2], params)
        queued.close()
        tokens = joined(list(first))[3] + engine.generate(prompts[3], params).completion_tokens
        assert list(queued) == []
        assert sum(engine._scheduler.batch_sizes.values()) == tokens - 2  # each ran prefill + decode steps, no more
    finally:
        engine.configure_batching()


def test_requests_closed_before_their_prefill_never_read_their_prompts(engine, prompts):
    """Clients that give up while earlier prompts are read cost nothing: their own prompts are never read."""
    scheduler = engine._scheduler
    params = SamplingParams(max_tokens=2, temperature=0)
    engine.generate(prompts[1], SamplingParams(max_tokens=1))  # the worker is set up (its probe uses the model)
    with scheduler.model_lock:  # the model is busy: the worker will wait in the first prompt's forward pass
        with scheduler._cond:  # all three are admitted together, before any prefill
            before = scheduler.prefills
            first, *given_up = (engine.stream(p, params) for p in (prompts[0], prompts[2], prompts[3]))
        deadline = time.monotonic() + 30
        while scheduler.prefills == before and time.monotonic() < deadline:
            time.sleep(0.01)
        assert scheduler.prefills == before + 1  # the first prompt's forward waits for the model
        for stream in given_up:
            stream.close()
    assert joined(list(first))[3] == 2
    assert scheduler.prefills == before + 1 and all(list(stream) == [] for stream in given_up)


def test_batch_invariant_mode_pads_a_lone_request_too(engine, prompts):
    engine.configure_batching(batch_invariant=True)
    try:
        params = SamplingParams(max_tokens=6, temperature=0)
        alone = joined(list(engine.stream(prompts[3], params)))
        scheduler = engine._scheduler
        assert scheduler._padded_rows(1) == scheduler._multiple  # a lone request runs with a batch's row count
        together = batched(engine, [(prompts[3], params), (prompts[0], params), (prompts[1], params)])
        assert joined(together[0]) == alone
    finally:
        engine.configure_batching()
