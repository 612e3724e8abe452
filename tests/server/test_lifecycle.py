"""An answer's life on the server: stopped when its client goes away (streamed or not), never longer than the
server's time limit, and refused with 429 past the bound on answers in progress. Real server, official client,
a slow fake engine (the engine's own cancellation is tested in tests/engines)."""

from __future__ import annotations

import time

import httpx2
import openai
import pytest
from fake_engine import FakeEngine
from live_server import running_server, wait_for

from konsilium.config import ServerSection
from konsilium.memory import ConversationLog
from konsilium.server import create_app
from konsilium.server.settings import ServerSettings

QUESTION = [{"role": "user", "content": "Tell me everything."}]


@pytest.fixture
def slow(tmp_path):
    """(engine, log, url) of a server whose answers take ~10 s (400 words, 25 ms each)."""

    def serve(**server):
        engine = FakeEngine(filler_words=400, chunk_delay_s=0.025)
        log = ConversationLog(tmp_path / "log.sqlite3")
        app = create_app(engine, conversation_log=log, settings=ServerSettings(ServerSection(**server)))
        return engine, log, running_server(app)

    return serve


def latest(log: ConversationLog):
    rows = log.list(limit=1)
    return rows[0] if rows else None


def test_a_non_streamed_answer_stops_when_its_client_goes_away_and_is_kept_as_cancelled(slow):
    engine, log, server = slow()
    with server as url:
        impatient = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=0.6)
        started = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            impatient.chat.completions.create(model="konsilium", messages=QUESTION, max_tokens=400)
        assert wait_for(lambda: engine.streams_closed_early == 1, 5)  # the engine stopped well before its ~10 s
        assert time.monotonic() - started < 5
        assert wait_for(lambda: latest(log) is not None)
        kept = latest(log)
        assert kept.status == "cancelled" and kept.error == "the client went away"
        assert kept.response and kept.completion_tokens > 0  # what was said before it went


def test_no_answer_outlives_the_time_limit(slow):
    engine, log, server = slow(request_timeout_s=0.5)
    with server as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=30)
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(model="konsilium", messages=QUESTION, max_tokens=400)
        assert caught.value.status_code == 504 and caught.value.code == "request_timeout"
        assert caught.value.response.headers["x-should-retry"] == "false"  # it would take as long again
        assert "server.request_timeout_s" in caught.value.message
        with pytest.raises(openai.APIError, match="request_timeout_s"):  # a stream ends with an in-band error
            list(client.chat.completions.create(model="konsilium", messages=QUESTION, max_tokens=400, stream=True))
        assert wait_for(lambda: engine.open_streams == 0, 5)
        assert [row.status for row in log.list(limit=2)] == ["cancelled", "cancelled"]


def test_past_the_bound_on_answers_in_progress_a_client_is_told_to_retry(slow):
    engine, _, server = slow(max_pending_requests=1)
    with server as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=30)
        holding = client.chat.completions.create(model="konsilium", messages=QUESTION, max_tokens=400, stream=True)
        next(iter(holding))
        refused = httpx2.post(
            f"{url}/v1/chat/completions", json={"model": "konsilium", "messages": QUESTION, "max_tokens": 2}
        )
        assert refused.status_code == 429 and refused.headers["retry-after"] == "2"
        assert refused.json()["error"]["code"] == "server_busy"
        holding.close()
        assert wait_for(lambda: engine.open_streams == 0, 5)
        assert client.chat.completions.create(model="konsilium", messages=QUESTION, max_tokens=2).choices
