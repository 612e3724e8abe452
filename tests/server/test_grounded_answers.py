"""Grounded answers over a real index, the conversation log, completions and embeddings, driven by `openai`.

The index, the embedder and the log are real; the generator is the fake engine (tests/fake_engine.py), whose answer
says how many `<note>` blocks reached its system message. The last test does the same on the real embedded model."""

from __future__ import annotations

import re
import time

import numpy as np
import openai
import pytest
from fake_engine import FakeEngine
from live_server import running_server

from konsilium.config import ServerSection, open_home
from konsilium.grounding import Knowledge
from konsilium.memory import ConversationLog
from konsilium.server import create_app
from konsilium.server.settings import ServerSettings

QUESTION = [{"role": "user", "content": "Какая видеокарта и сколько видеопамяти нужно под локальную модель?"}]
GREEDY = {"model": "konsilium", "messages": QUESTION, "temperature": 0, "max_tokens": 12}
SETTINGS = ServerSettings(ServerSection(context_chunks=2, context_share=0.25))
NOTES_GIVEN = re.compile(r"^\[base\] notes=(\d+) system=(yes|no) \|")  # how the fake engine's answer starts


@pytest.fixture(scope="module")
def served(indexed_steps, tmp_path_factory):
    log = ConversationLog(tmp_path_factory.mktemp("grounded") / "log.sqlite3")
    knowledge = Knowledge(open_home(indexed_steps.home))
    engine = FakeEngine(context_length=8192)
    app = create_app(engine, knowledge=knowledge, conversation_log=log, settings=SETTINGS)
    with running_server(app) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=120)
        yield client, log, knowledge, indexed_steps.vault, engine


def test_answer_cites_the_notes_it_was_given_and_lists_them_as_sources(served):
    client, log, _, vault, engine = served
    response = client.chat.completions.create(**GREEDY)
    sources = response.model_extra["sources"]
    assert 1 <= len(sources) <= 2
    assert all((vault / source["note"]).is_file() for source in sources)
    assert sources[0]["note"] == "steps/25_под_мою_видеокарта_как.md"  # the note about the user's graphics card
    content = response.choices[0].message.content
    given = NOTES_GIVEN.match(content)
    assert given and given.groups() == (str(len(sources)), "yes")  # the passages were in the system message
    system = engine.last.messages[0]["content"]
    assert all(f'path="{source["note"]}"' in system for source in sources)
    footnotes = re.findall(r"^\[\^(\d+)\]: \[\[(.+?)\]\]$", content, flags=re.M)
    assert [int(n) for n, _ in footnotes] == list(range(1, len(footnotes) + 1))
    assert {target.split("#")[0] for _, target in footnotes} == {s["note"].removesuffix(".md") for s in sources}
    assert "Sources: [[25_под_мою_видеокарта_как]]" in content


def test_the_stream_carries_the_same_answer_and_sources_on_its_last_chunk(served):
    client, *_ = served
    whole = client.chat.completions.create(**GREEDY)
    chunks = list(client.chat.completions.create(**GREEDY, stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishing = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finishing) == 1 and finishing[0].model_extra["sources"] == whole.model_extra["sources"]
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens


def test_retrieval_can_be_turned_off_per_request(served):
    client, *_ = served
    grounded = client.chat.completions.create(**GREEDY)
    plain = client.chat.completions.create(**GREEDY, extra_body={"konsilium": {"retrieval": False}})
    assert "sources" not in plain.model_extra
    assert "[^1]:" not in plain.choices[0].message.content
    assert NOTES_GIVEN.match(plain.choices[0].message.content).groups() == ("0", "no")
    assert plain.usage.prompt_tokens < grounded.usage.prompt_tokens  # the notes were really in the prompt


def test_retrieval_scoped_to_an_unknown_collection_is_a_400(served):
    client, *_ = served
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(**GREEDY, extra_body={"konsilium": {"retrieval": {"collections": ["nope"]}}})
    assert caught.value.code == "collection_not_found" and "vault" in caught.value.message


def test_every_exchange_is_in_the_log_when_the_response_arrives(served):
    client, log, *_ = served
    response = client.chat.completions.create(**GREEDY, user="n8n-agent")
    kept = log.get(response.id)
    assert kept is not None and kept.endpoint == "chat.completions"
    assert kept.response == response.choices[0].message.content
    assert kept.messages == QUESTION and kept.client == "n8n-agent"
    assert kept.sources == response.model_extra["sources"]
    assert (kept.prompt_tokens, kept.completion_tokens) == (
        response.usage.prompt_tokens,
        response.usage.completion_tokens,
    )
    assert kept.timings["total_ms"] >= kept.timings["retrieval_ms"] >= 0
    streamed = list(client.chat.completions.create(**GREEDY, stream=True))
    kept = log.get(streamed[0].id)
    assert kept.status == "ok" and kept.response == "".join(c.choices[0].delta.content or "" for c in streamed)
    assert kept.timings["first_token_ms"] <= kept.timings["total_ms"]


def test_a_stream_closed_by_the_client_is_kept_as_cancelled(served):
    _, log, knowledge, _, _ = served
    slow = FakeEngine(context_length=8192, filler_words=400, chunk_delay_s=0.02)  # 8 s unless it is stopped
    app = create_app(slow, knowledge=knowledge, conversation_log=log, settings=SETTINGS)
    with running_server(app) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=120)
        stream = client.chat.completions.create(**{**GREEDY, "max_tokens": 400}, stream=True)
        first = next(iter(stream))
        stream.close()
        deadline = time.monotonic() + 30
        while ((kept := log.get(first.id)) is None or slow.open_streams) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert kept is not None and kept.status == "cancelled"
    assert slow.streams_closed_early == 1  # the engine was stopped, not left to run out
    assert slow.last.text.startswith(kept.response)  # what was said before the client left


def test_completions_answer_a_raw_prompt_and_are_logged(served):
    client, log, *_ = served
    params = {"model": "konsilium", "prompt": "The capital of France is", "max_tokens": 5, "temperature": 0}
    whole = client.completions.create(**params)
    assert whole.object == "text_completion" and whole.choices[0].text == "[base] prompt | The capital"
    assert whole.choices[0].finish_reason == "length" and whole.usage.completion_tokens == 5
    assert whole.usage.prompt_tokens == 5  # the raw prompt, no template and no notes
    streamed = list(client.completions.create(**params, stream=True))
    assert "".join(c.choices[0].text for c in streamed if c.choices) == whole.choices[0].text
    kept = log.get(whole.id)
    assert kept.endpoint == "completions" and kept.response == whole.choices[0].text
    many = client.completions.create(**{**params, "prompt": ["One, two,", "Paris is in"], "max_tokens": 20})
    assert [c.index for c in many.choices] == [0, 1]
    assert [c.text for c in many.choices] == ["[base] prompt | One, two,", "[base] prompt | Paris is in"]


def test_embeddings_come_from_the_index_embedder(served):
    client, _, knowledge, _, _ = served
    texts = ["видеокарта и VRAM", "a note about n8n"]
    response = client.embeddings.create(model="konsilium-embed", input=texts)  # base64 on the wire by default
    expected = knowledge.embedder().embed(texts)
    got = np.array([item.embedding for item in response.data], dtype=np.float32)
    assert got.shape == expected.shape and np.allclose(got, expected, atol=1e-5)
    as_floats = client.embeddings.create(model="konsilium-embed", input=texts[0], encoding_format="float")
    assert np.allclose(as_floats.data[0].embedding, expected[0], atol=1e-5)
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="text-embedding-3-small", input="x")
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="konsilium-embed", input=["ok", "  "])


@pytest.mark.real_model
def test_the_real_model_answers_from_the_notes_within_its_context(served):
    """End to end on the embedded SmolLM2: the notes fit its real tokenizer's window and the answer cites them."""
    from konsilium.engines import load_embedded_default

    _, log, knowledge, _, _ = served
    app = create_app(load_embedded_default(), knowledge=knowledge, conversation_log=log, settings=SETTINGS)
    with running_server(app) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=300)
        response = client.chat.completions.create(**GREEDY)
    sources = response.model_extra["sources"]
    assert sources and sources[0]["note"] == "steps/25_под_мою_видеокарта_как.md"
    content = response.choices[0].message.content
    assert "Sources: [[25_под_мою_видеокарта_как]]" in content and re.search(r"^\[\^1\]: \[\[", content, flags=re.M)
    assert 0 < response.usage.completion_tokens <= 12 and response.usage.prompt_tokens > 200
    assert log.get(response.id).response == content
