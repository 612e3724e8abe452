"""konsilium in front of another OpenAI-compatible server (openai-upstream engine): same answers, clear failures.
The upstream is a konsilium server on the fake engine: the gateway is under test, not the model."""

from __future__ import annotations

import socket
from types import SimpleNamespace

import openai
import pytest
from fake_engine import FakeEngine
from live_server import running_server

from konsilium.engines.openai_upstream import OpenAIUpstreamEngine
from konsilium.memory import ConversationLog
from konsilium.server import create_app

QUESTION = [{"role": "user", "content": "Name a primary colour."}]


@pytest.fixture(scope="module")
def fake_upstream():
    """A konsilium server on the fake engine, standing as the OpenAI-compatible upstream: (base_url, model)."""
    with running_server(create_app(FakeEngine(), model_id="upstream-model")) as url:
        yield SimpleNamespace(base_url=f"{url}/v1", model="upstream-model")


def test_the_gateway_answers_as_the_upstream_does_and_keeps_the_exchange(fake_upstream, tmp_path):
    direct = openai.OpenAI(base_url=fake_upstream.base_url, api_key="x", max_retries=0, timeout=120)
    expected = direct.chat.completions.create(model=fake_upstream.model, messages=QUESTION, temperature=0, max_tokens=8)
    assert expected.choices[0].message.content.startswith("[base] notes=0 system=no | Name")
    engine = OpenAIUpstreamEngine(fake_upstream.base_url, fake_upstream.model, timeout_s=120)
    log = ConversationLog(tmp_path / "log.sqlite3")
    with running_server(create_app(engine, model_id="gateway", conversation_log=log)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=120)
        answer = client.chat.completions.create(model="gateway", messages=QUESTION, temperature=0, max_tokens=8)
        streamed = list(
            client.chat.completions.create(model="gateway", messages=QUESTION, temperature=0, max_tokens=8, stream=True)
        )
    assert answer.choices[0].message.content == expected.choices[0].message.content
    assert answer.usage.completion_tokens == expected.usage.completion_tokens
    assert (
        "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == expected.choices[0].message.content
    )
    assert log.get(answer.id).response == expected.choices[0].message.content


def test_an_unreachable_upstream_is_a_502_naming_it():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    engine = OpenAIUpstreamEngine(f"http://127.0.0.1:{port}/v1", "m", context_length=4096, timeout_s=5)
    with running_server(create_app(engine, model_id="gateway")) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=60)
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(model="gateway", messages=QUESTION, max_tokens=2)
    assert caught.value.status_code == 502 and f"127.0.0.1:{port}" in caught.value.message
