"""The openai-upstream engine against a real upstream: a konsilium server on the embedded default, over HTTP."""

from __future__ import annotations

import socket
import time

import openai
import pytest

from konsilium.engines import (
    AdapterRequest,
    AdapterSupport,
    Engine,
    SamplingParams,
    UpstreamError,
    load_embedded_default,
)
from konsilium.engines.openai_upstream import OpenAIUpstreamEngine
from konsilium.grounding.knowledge import Passage

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
GREEDY = SamplingParams(max_tokens=24, temperature=0)


@pytest.fixture(scope="session")
def local():
    return load_embedded_default()


@pytest.fixture(scope="session")
def upstream(embedded_upstream):
    return OpenAIUpstreamEngine(embedded_upstream.base_url, embedded_upstream.model, timeout_s=120)


@pytest.fixture(scope="session")
def greedy_answer(upstream):
    return upstream.generate_chat(QUESTION, GREEDY)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_it_is_an_engine_and_describes_the_upstream(upstream, embedded_upstream):
    assert isinstance(upstream, Engine)
    info = upstream.info()
    assert info["engine"] == "openai-upstream" and info["device"] == "remote"
    assert info["path"] == embedded_upstream.base_url and info["model"] == embedded_upstream.model
    assert {"gguf_file", "architecture", "dtype", "parameters"} <= set(info)


def test_greedy_chat_equals_the_local_engine(local, greedy_answer):
    direct = local.generate_chat(QUESTION, GREEDY)
    assert greedy_answer.text == direct.text and greedy_answer.text.strip()
    assert greedy_answer.finish_reason == direct.finish_reason
    assert greedy_answer.completion_tokens == direct.completion_tokens
    assert greedy_answer.prompt_tokens == direct.prompt_tokens  # the upstream's usage, not our estimate


def test_stream_concatenates_to_the_answer_and_ends_with_usage(upstream, greedy_answer):
    chunks = list(upstream.stream_chat(QUESTION, GREEDY))
    assert "".join(c.text for c in chunks) == greedy_answer.text
    assert [c.finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    last = chunks[-1]
    assert last.finish_reason == greedy_answer.finish_reason
    assert last.prompt_tokens == greedy_answer.prompt_tokens
    assert last.completion_tokens == greedy_answer.completion_tokens
    running = [c.completion_tokens for c in chunks]
    assert running == sorted(running)


def test_max_tokens_is_honoured(upstream):
    result = upstream.generate_chat(QUESTION, SamplingParams(max_tokens=3, temperature=0))
    assert result.completion_tokens == 3 and result.finish_reason == "length"


def test_stop_is_honoured(upstream, greedy_answer):
    words = greedy_answer.text.split()
    assert len(words) >= 3, greedy_answer.text
    stop = words[2]
    result = upstream.generate_chat(QUESTION, SamplingParams(max_tokens=24, temperature=0, stop=[stop]))
    assert result.text == greedy_answer.text[: greedy_answer.text.index(stop)]
    assert result.finish_reason == "stop"
    streamed = list(upstream.stream_chat(QUESTION, SamplingParams(max_tokens=24, temperature=0, stop=[stop])))
    assert "".join(c.text for c in streamed) == result.text and streamed[-1].finish_reason == "stop"


def test_plain_prompt_goes_to_completions(upstream, local):
    prompt = local.apply_chat_template(QUESTION)
    try:
        result = upstream.generate(prompt, GREEDY)
    except UpstreamError as exc:
        if exc.status == 404:
            pytest.skip("this konsilium server has no /v1/completions yet")
        raise
    direct = local.generate(prompt, GREEDY)
    assert (result.text, result.finish_reason, result.completion_tokens) == (
        direct.text,
        direct.finish_reason,
        direct.completion_tokens,
    )
    chunks = list(upstream.stream(prompt, GREEDY))
    assert "".join(c.text for c in chunks) == direct.text
    assert chunks[-1].finish_reason == direct.finish_reason and chunks[-1].completion_tokens == direct.completion_tokens


def test_closing_a_stream_early_leaves_the_upstream_usable(upstream, greedy_answer):
    long = SamplingParams(max_tokens=64, temperature=0)
    stream = upstream.stream_chat(QUESTION, long)
    assert next(stream).text
    stream.close()
    assert stream._events.response.is_closed  # the HTTP stream itself is gone, not just our iterator
    upstream.stream_chat(QUESTION, long).close()  # closed before reading anything
    assert upstream.generate_chat(QUESTION, GREEDY) == greedy_answer


def test_unreachable_upstream_fails_fast_naming_the_url():
    url = f"http://127.0.0.1:{closed_port()}/v1"
    engine = OpenAIUpstreamEngine(url, "any-model", timeout_s=30)
    started = time.monotonic()
    with pytest.raises(UpstreamError, match="127.0.0.1") as caught:
        engine.generate_chat(QUESTION, GREEDY)
    assert time.monotonic() - started < 5
    assert url.removesuffix("/v1") in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(UpstreamError):
        list(engine.stream_chat(QUESTION, GREEDY))
    with pytest.raises(UpstreamError, match="cannot reach"):
        OpenAIUpstreamEngine(url, None)  # no model given: it asks the upstream, which is not there


def test_upstream_rejection_is_a_value_error_with_its_message(upstream):
    long = [{"role": "user", "content": "word " * 10_000}]
    with pytest.raises(ValueError, match="maximum context length"):
        upstream.generate_chat(long, SamplingParams(max_tokens=2))
    with pytest.raises(ValueError, match="maximum context length"):
        upstream.stream_chat(long, SamplingParams(max_tokens=2))


def test_an_adapter_request_names_another_upstream_model(upstream, embedded_upstream):
    assert upstream.adapter_support is AdapterSupport.UPSTREAM_MODELS
    with pytest.raises(UpstreamError) as caught:
        upstream.generate_chat(QUESTION, GREEDY, AdapterRequest("no-such-adapter"))
    assert caught.value.status == 404 and "404" in str(caught.value) and embedded_upstream.url in str(caught.value)
    assert upstream.model == embedded_upstream.model  # the engine's own model is untouched
    named = AdapterRequest(embedded_upstream.model)
    assert upstream.generate_chat(QUESTION, SamplingParams(max_tokens=2), named).completion_tokens >= 1


class OneNote:
    """Stands in for the upstream's indexed vault: every question finds this note."""

    default_collection = "vault"

    def collections(self) -> list[str]:
        return ["vault"]

    def search(self, query, k, *args, **kwargs) -> list[Passage]:
        return [Passage("vault", "Hardware/GPU.md", "GPU", "", "My GPU is an RTX 4090 with 24 GB.", 1.0)]


def test_a_konsilium_upstream_is_asked_for_a_plain_answer_so_sources_are_not_doubled():
    from live_server import running_server

    from konsilium.server import create_app

    app = create_app(load_embedded_default(), model_id="grounded-upstream", knowledge=OneNote())
    short = SamplingParams(max_tokens=3, temperature=0)
    with running_server(app) as url:
        direct = openai.OpenAI(base_url=f"{url}/v1", api_key="x").chat.completions.create(
            model="grounded-upstream", messages=QUESTION, max_tokens=3
        )
        assert "Sources:" in direct.choices[0].message.content  # a plain client gets the upstream's citations
        engine = OpenAIUpstreamEngine(f"{url}/v1", "grounded-upstream")
        answer = engine.generate_chat(QUESTION, short)
        streamed = "".join(chunk.text for chunk in engine.stream_chat(QUESTION, short))
    assert "Sources:" not in answer.text and "[[" not in answer.text
    assert "Sources:" not in streamed and "[[" not in streamed


def test_model_and_context_come_from_the_upstream_or_the_config(embedded_upstream):
    asked = OpenAIUpstreamEngine(embedded_upstream.base_url, None)
    assert asked.model == embedded_upstream.model and asked.models() == [embedded_upstream.model, "auto"]
    assert asked.context_length == 8192  # konsilium's model card names no length: the fallback
    assert OpenAIUpstreamEngine(embedded_upstream.base_url, "m", context_length=1234).context_length == 1234


def test_no_openai_credentials_from_the_environment_reach_the_upstream(monkeypatch, embedded_upstream):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-for-this-server")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-private")
    engine = OpenAIUpstreamEngine(embedded_upstream.base_url, embedded_upstream.model)
    assert engine._client.api_key == "EMPTY" and engine._client.organization is None
    assert OpenAIUpstreamEngine(embedded_upstream.base_url, "m", api_key="k")._client.api_key == "k"


ENGLISH = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [
        {"role": "system", "content": "You answer from the user's notes, citing them as [[links]]."},
        {"role": "user", "content": "Summarise my notes on LoRA adapters, rank 16 vs 64, in 3 bullet points."},
        {"role": "assistant", "content": "1. Rank 16 trains faster.\n2. Rank 64 fits more.\n3. Both load in vLLM."},
        {"role": "user", "content": "And the memory cost at 7B parameters, fp16 (2 bytes each)?"},
    ],
]
RUSSIAN = [
    [{"role": "user", "content": "Какая столица Франции? Ответь одним предложением."}],
    [
        {"role": "system", "content": "Отвечай по заметкам пользователя и ссылайся на них как [[ссылки]]."},
        {"role": "user", "content": "Съешь же ещё этих мягких французских булок, да выпей чаю. Что это за фраза?"},
        {"role": "assistant", "content": "Это панграмма: в ней есть все 33 буквы русского алфавита."},
        {"role": "user", "content": "Сколько токенов она занимает в модели на 135 млн параметров?"},
    ],
]


@pytest.mark.parametrize("messages", ENGLISH + RUSSIAN)
def test_token_estimates_are_upper_bounds(upstream, local, messages):
    assert upstream.count_chat_tokens(messages) >= local.count_chat_tokens(messages)
    for message in messages:
        assert upstream.count_tokens(message["content"]) >= local.count_tokens(message["content"])
    prompt = upstream.apply_chat_template(messages)
    assert prompt.endswith("<|im_start|>assistant\n") and all(m["content"] in prompt for m in messages)
