"""The OpenAI-compatible server, driven by the official `openai` client against a real uvicorn on a free port."""

from __future__ import annotations

import httpx2
import openai
import pytest
from live_server import running_server

from konsilium.server import create_app

MODEL_ID = "konsilium-test"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="session")
def server_url():
    from konsilium.engines import load_embedded_default

    with running_server(create_app(load_embedded_default(), model_id=MODEL_ID)) as url:
        yield url


@pytest.fixture(scope="session")
def client(server_url):
    return openai.OpenAI(base_url=f"{server_url}/v1", api_key="x", max_retries=0, timeout=60)


def test_models_list_contains_the_model_id(client):
    assert [model.id for model in client.models.list().data] == [MODEL_ID]


def test_chat_completion_returns_text_usage_and_finish_reason(client):
    response = client.chat.completions.create(model=MODEL_ID, messages=QUESTION, temperature=0, max_tokens=8)
    choice = response.choices[0]
    assert response.object == "chat.completion" and response.id.startswith("chatcmpl-")
    assert choice.message.role == "assistant" and choice.message.content.strip()
    assert choice.finish_reason in {"stop", "length"}
    assert response.usage.prompt_tokens > 0
    assert 0 < response.usage.completion_tokens <= 8
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens


def test_stream_concatenates_to_the_non_stream_answer(client):
    params = {"model": MODEL_ID, "messages": QUESTION, "temperature": 0, "max_tokens": 8}
    whole = client.chat.completions.create(**params)
    chunks = list(client.chat.completions.create(**params, stream=True, stream_options={"include_usage": True}))
    with_choices = [c for c in chunks if c.choices]
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert with_choices[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in with_choices) == whole.choices[0].message.content
    assert with_choices[-1].choices[0].finish_reason == whole.choices[0].finish_reason
    assert [c.choices[0].finish_reason for c in with_choices[:-1]] == [None] * (len(with_choices) - 1)
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
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


def test_closed_stream_frees_the_engine(client):
    stream = client.chat.completions.create(
        model=MODEL_ID, messages=QUESTION, temperature=0, max_tokens=12, stream=True
    )
    next(iter(stream))
    stream.close()  # the client goes away mid-answer; the next request must still be served
    response = client.chat.completions.create(model=MODEL_ID, messages=QUESTION, temperature=0, max_tokens=2)
    assert response.usage.completion_tokens <= 2


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
