"""POST /v1/exchanges/{id}/rating marks a logged exchange good or bad through a real server, as `history rate`
does; a training dataset then takes the good ones."""

from __future__ import annotations

import httpx2 as httpx
import openai
from fake_engine import FakeEngine
from live_server import running_server

from konsilium.memory import ConversationLog
from konsilium.pipeline import TurnPipeline
from konsilium.roles.runtime import RoleService
from konsilium.server import create_app


def test_an_answer_can_be_rated_and_bad_input_is_refused(tmp_path):
    engine = FakeEngine(context_length=4096)
    log = ConversationLog(tmp_path / "conversations.sqlite3")
    pipeline = TurnPipeline(engine, RoleService(engine, base_model_id="konsilium"), None, log)
    with running_server(create_app(engine, pipeline=pipeline)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        answer = client.chat.completions.create(model="konsilium", messages=[{"role": "user", "content": "Hi"}])
        rated = httpx.post(f"{url}/v1/exchanges/{answer.id}/rating", json={"rating": "good"})
        assert rated.status_code == 200 and rated.json()["rating"] == "good"
        assert [ex.id for ex in log.list(rating=1)] == [answer.id]
        missing = httpx.post(f"{url}/v1/exchanges/chatcmpl-nope/rating", json={"rating": "bad"})
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "exchange_not_found"
        wrong = httpx.post(f"{url}/v1/exchanges/{answer.id}/rating", json={"rating": "great"})
        assert wrong.status_code == 400
        assert [ex.id for ex in log.list(rating=1)] == [answer.id]  # unchanged by the refused call
    log.close()
