"""`auto` is a model id even before any role exists (clients such as Open WebUI offer only what /v1/models lists):
it answers with the base model and says so in the response's `role.routing`."""

from __future__ import annotations

import openai
import pytest
from fake_engine import FakeEngine
from live_server import running_server

from konsilium.roles.runtime import RoleService
from konsilium.server import create_app

QUESTION = [{"role": "user", "content": "Какая у меня видеокарта?"}]


@pytest.fixture(scope="module")
def client():
    engine = FakeEngine()
    app = create_app(engine, roles=RoleService(engine))  # no registry: no roles, and no embedder to route with
    with running_server(app) as url:
        yield openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=60)


def test_models_lists_auto_without_roles(client):
    assert [model.id for model in client.models.list().data] == ["konsilium", "auto"]


def test_auto_without_roles_is_the_base_model_and_says_so(client):
    base = client.chat.completions.create(model="konsilium", messages=QUESTION, max_tokens=16)
    auto = client.chat.completions.create(model="auto", messages=QUESTION, max_tokens=16)
    assert auto.model == "auto"
    assert auto.choices[0].message.content == base.choices[0].message.content  # the base model answered
    role = auto.model_extra["role"]
    assert role["id"] is None and role["label"] == "neutral"
    assert role["routing"]["role"] is None and role["routing"]["reason"] == "no roles to choose from"


def test_auto_without_roles_streams_too(client):
    chunks = list(client.chat.completions.create(model="auto", messages=QUESTION, max_tokens=16, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).startswith("[base] ")
