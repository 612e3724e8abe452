"""The OpenAI-compatible server, driven by the official `openai` client against a real uvicorn on a free port.

The server runs on the fake engine (tests/fake_engine.py), whose answers show what it received: what is under test
here is HTTP, streaming, usage and errors. The last test asks the same of the real embedded model."""

from __future__ import annotations

import json

import httpx2
import openai
import pytest
from fake_engine import FakeEngine
from live_server import running_server, wait_for

from konsilium.memory import ConversationLog
from konsilium.server import create_app

MODEL_ID = "konsilium-test"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
ANSWER = "[base] notes=0 system=no | What is the capital of France?"  # the fake engine's answer to QUESTION


@pytest.fixture(scope="module")
def engine():
    return FakeEngine(context_length=2048)


@pytest.fixture(scope="module")
def server_url(engine):
    with running_server(create_app(engine, model_id=MODEL_ID)) as url:
        yield url


@pytest.fixture(scope="module")
def client(server_url):
    return openai.OpenAI(base_url=f"{server_url}/v1", api_key="x", max_retries=0, timeout=60)


def test_models_list_contains_the_model_id(client):
    # `auto` is always listed (the base model answers it while no role is defined): clients show this list
    assert [model.id for model in client.models.list().data] == [MODEL_ID, "auto"]


def test_chat_completion_returns_text_usage_and_finish_reason(client, engine):
    response = client.chat.completions.create(model=MODEL_ID, messages=QUESTION, temperature=0, max_tokens=64)
    choice = response.choices[0]
    assert response.object == "chat.completion" and response.id.startswith("chatcmpl-")
    assert choice.message.role == "assistant" and choice.message.content == ANSWER
    assert engine.last.messages == QUESTION and engine.last.params.max_tokens == 64
    assert choice.finish_reason == "stop"
    assert response.usage.prompt_tokens == engine.count_chat_tokens(QUESTION)
    assert response.usage.completion_tokens == len(ANSWER.split())
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens
    cut = client.chat.completions.create(model=MODEL_ID, messages=QUESTION, max_tokens=3)
    assert cut.choices[0].finish_reason == "length" and cut.usage.completion_tokens == 3
    assert cut.choices[0].message.content == " ".join(ANSWER.split()[:3])
    stopped = client.chat.completions.create(model=MODEL_ID, messages=QUESTION, max_tokens=64, stop=["capital"])
    assert stopped.choices[0].message.content == ANSWER[: ANSWER.index("capital")]
    assert stopped.choices[0].finish_reason == "stop" and engine.last.params.stop == ["capital"]


def test_stream_concatenates_to_the_non_stream_answer(client):
    params = {"model": MODEL_ID, "messages": QUESTION, "temperature": 0, "max_tokens": 8}
    whole = client.chat.completions.create(**params)
    chunks = list(client.chat.completions.create(**params, stream=True, stream_options={"include_usage": True}))
    with_choices = [c for c in chunks if c.choices]
    assert len(with_choices) > 3  # it really streamed, a word at a time
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert with_choices[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in with_choices) == whole.choices[0].message.content
    assert with_choices[-1].choices[0].finish_reason == whole.choices[0].finish_reason == "length"
    assert [c.choices[0].finish_reason for c in with_choices[:-1]] == [None] * (len(with_choices) - 1)
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens == 8
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens


def test_stream_sends_sse_lines_and_done(server_url):
    body = {"model": MODEL_ID, "messages": QUESTION, "temperature": 0, "max_tokens": 4, "stream": True}
    with httpx2.stream("POST", f"{server_url}/v1/chat/completions", json=body, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = response.read().decode()
    events = [event for event in text.split("\n\n") if event]
    assert all(event.startswith("data: ") for event in events)
    assert events[-1] == "data: [DONE]"


def test_closed_stream_frees_the_engine(tmp_path):
    slow = FakeEngine(filler_words=400, chunk_delay_s=0.02)  # 8 s of answer unless it is stopped
    log = ConversationLog(tmp_path / "log.sqlite3")
    with running_server(create_app(slow, model_id=MODEL_ID, conversation_log=log)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=60)
        stream = client.chat.completions.create(model=MODEL_ID, messages=QUESTION, max_tokens=400, stream=True)
        first = next(iter(stream))
        stream.close()  # the client goes away mid-answer: the engine's stream must be closed, not run out
        assert wait_for(lambda: slow.streams_closed_early == 1), "the server did not close the engine's stream"
        assert slow.open_streams == 0
        assert wait_for(lambda: (kept := log.get(first.id)) is not None and kept.status == "cancelled")
        response = client.chat.completions.create(model=MODEL_ID, messages=QUESTION, max_tokens=2)
    assert response.usage.completion_tokens == 2


def test_an_engine_failure_mid_stream_is_reported_in_band_and_logged(tmp_path):
    failing = FakeEngine(fail_after_chunks=3)
    log = ConversationLog(tmp_path / "log.sqlite3")
    body = {"model": MODEL_ID, "messages": QUESTION, "max_tokens": 20, "stream": True}
    with running_server(create_app(failing, model_id=MODEL_ID, conversation_log=log)) as url:
        with httpx2.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=60) as response:
            assert response.status_code == 200  # the headers went out before the failure
            events = [event for event in response.read().decode().split("\n\n") if event]
        assert events[-1] == "data: [DONE]" and '"error"' in events[-2]
        detail = json.loads(events[-2].removeprefix("data: "))["error"]
        assert detail["type"] == "server_error" and detail["message"] and "Traceback" not in detail["message"]
        first = json.loads(events[0].removeprefix("data: "))
        assert wait_for(lambda: (kept := log.get(first["id"])) is not None and kept.status == "error")
        assert log.get(first["id"]).response == "[base] notes=0 system=no"  # the 3 chunks said before the failure
        assert failing.open_streams == 0
        models = httpx2.get(f"{url}/v1/models", timeout=30)
    assert models.status_code == 200  # still serving


def test_unknown_model_is_not_found(client):
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="no-such-model", messages=QUESTION, max_tokens=2)
    assert caught.value.status_code == 404
    assert caught.value.code == "model_not_found"


def test_malformed_json_is_a_400_with_the_error_shape(server_url):
    response = httpx2.post(
        f"{server_url}/v1/chat/completions",
        content=b'{"model": "konsilium-test", "messages": [',
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "code"} and error["type"] == "invalid_request_error"
    assert "Traceback" not in response.text


@pytest.mark.parametrize(
    "overrides",
    [{"temperature": -1}, {"messages": []}, {"max_tokens": 0}, {"top_p": 0}, {"messages": [{"role": "nobody"}]}],
)
def test_invalid_params_are_bad_requests(client, overrides):
    params = {"model": MODEL_ID, "messages": QUESTION, "max_tokens": 2, **overrides}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(**params)
    assert caught.value.status_code == 400
    assert caught.value.body["message"]


def test_prompt_longer_than_the_context_is_a_400(client):
    long_text = "word " * 10_000
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": long_text}], max_tokens=2)
    assert caught.value.code == "context_length_exceeded"


def test_unknown_endpoint_is_openai_shaped(server_url):
    response = httpx2.get(f"{server_url}/v1/nothing-here", timeout=30)
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.real_model
def test_the_real_model_answers_and_streams_the_same_text(embedded_upstream):
    """End to end on the embedded SmolLM2 (the session's konsilium server on it): text, usage, stream."""
    client = openai.OpenAI(base_url=embedded_upstream.base_url, api_key="x", max_retries=0, timeout=120)
    params = {"model": embedded_upstream.model, "messages": QUESTION, "temperature": 0, "max_tokens": 8}
    whole = client.chat.completions.create(**params)
    assert whole.choices[0].message.content.strip() and whole.choices[0].finish_reason in {"stop", "length"}
    assert 0 < whole.usage.completion_tokens <= 8 and whole.usage.prompt_tokens > 0
    chunks = list(client.chat.completions.create(**params, stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole.choices[0].message.content
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
