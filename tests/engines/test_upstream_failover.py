"""Replica failover with real processes: konsilium upstreams on the fake engine, each in a process of its own, killed
with SIGKILL while a front konsilium (openai-upstream over both) is answering through them."""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import openai
import pytest
from live_server import free_port, running_server, wait_for
from upstream_process import MODEL, upstream_process

from konsilium.engines import SamplingParams
from konsilium.engines.openai_upstream import OpenAIUpstreamEngine
from konsilium.server import create_app

QUESTION = [{"role": "user", "content": "how far is the moon?"}]
FILLER = 8
ANSWER = "[base] notes=0 system=no | how far is the moon?" + "".join(f" w{i}" for i in range(FILLER))


@contextlib.contextmanager
def front_over(*options: str):
    """Two upstream processes and a front server over them: (front engine, openai client, {url: process})."""
    with contextlib.ExitStack() as stack:
        processes = {}
        for _ in range(2):
            port = free_port()
            processes[f"http://127.0.0.1:{port}/v1"] = stack.enter_context(upstream_process(port, *options))
        engine = OpenAIUpstreamEngine(list(processes), MODEL, lora_loading="off", dead_s=60)
        url = stack.enter_context(running_server(create_app(engine, model_id="front")))
        yield engine, openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0), processes


def ask(client, stream: bool) -> str:
    if not stream:
        return client.chat.completions.create(model="front", messages=QUESTION).choices[0].message.content
    events = client.chat.completions.create(model="front", messages=QUESTION, stream=True)
    return "".join(event.choices[0].delta.content or "" for event in events if event.choices)


def busy_replica(engine) -> str:
    """The URL of the replica a request is on, once it is on one."""
    assert wait_for(lambda: any(r.in_flight for r in engine.pool.replicas), 20)
    return next(r.url for r in engine.pool.replicas if r.in_flight)


@pytest.mark.parametrize("how", ["streamed", "whole", "engine"])
def test_a_replica_killed_before_it_answered_is_replaced_and_the_client_sees_no_error(how):
    with front_over("--first-delay", "1.5", "--filler", str(FILLER)) as (engine, client, processes):
        if how == "engine":  # the engine's own non-streamed call (a whole answer from the upstream)
            request = partial(engine.generate_chat, QUESTION, SamplingParams(max_tokens=None))
        else:
            request = partial(ask, client, how == "streamed")
        request()  # the first chat asks the upstream what it is: not the request this test follows
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(request)
            dying = busy_replica(engine)
            time.sleep(0.5)  # the upstream has begun its response (headers, the role chunk); no word has come yet
            processes[dying].kill()
            result = answer.result(timeout=60)
        assert (result.text if how == "engine" else result) == ANSWER  # whole, once, from the other replica
        status = {r["url"]: r for r in engine.info()["replicas"]}
        assert not status[dying]["up"] and status[dying]["error"]
        assert request() is not None  # later requests go to the live one without trying the dead one first


def test_requests_keep_succeeding_after_a_replica_process_dies():
    with front_over("--filler", str(FILLER)) as (engine, client, processes):
        assert ask(client, True) == ANSWER and ask(client, False) == ANSWER
        first = next(iter(processes.values()))
        first.kill()
        first.wait(timeout=10)
        answers = [ask(client, stream) for stream in (True, False, True, False)]
        assert answers == [ANSWER] * 4
        # the live replica stays up; the dead one is down once a request tried it (which one a request picks
        # depends on when the earlier streams released their claims)
        assert [r["up"] for r in engine.info()["replicas"]][1] is True


def test_an_upstream_dying_mid_answer_ends_the_stream_with_a_clear_error():
    with front_over("--chunk-delay", "0.3", "--filler", str(FILLER)) as (engine, client, processes):
        events = client.chat.completions.create(model="front", messages=QUESTION, stream=True)
        said = ""
        with pytest.raises(openai.APIError) as failed:
            for event in events:
                piece = event.choices[0].delta.content if event.choices else None
                if piece and not said:
                    processes[busy_replica(engine)].kill()  # a word of the answer is out: the rest cannot come
                said += piece or ""
        message = str(failed.value)
        assert "incomplete" in message and "broke off" in message
        assert said and ANSWER.startswith(said) and said != ANSWER  # what came is the answer's start, not repeated
        assert ask(client, True) == ANSWER  # the other replica serves the next request
