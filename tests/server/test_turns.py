"""The one turn pipeline through the real app and the official client, on a small fake engine: what a user of
chat, dual, completions and roles relies on, including the defects found by trying it (issue 9)."""

from __future__ import annotations

import openai
import pytest
import yaml
from fake_engine import FakeEngine
from live_server import running_server

from konsilium.config import open_home
from konsilium.engines import AdapterSupport
from konsilium.memory import ConversationLog
from konsilium.roles.registry import RoleRegistry
from konsilium.roles.runtime import RoleService
from konsilium.roles.spec import RoleSpec
from konsilium.server import create_app


class FakeUpstream(FakeEngine):
    """An upstream whose role adapters are other model names, each with its own context window."""

    adapter_support = AdapterSupport.UPSTREAM_MODELS

    def _check_adapter(self, adapter) -> None:
        """Any adapter name is a model the upstream serves."""


ROLES = {
    "adapters": {"tiny": {"path": "adapters/tiny"}},
    "roles": {
        "coach": {
            "description": "Training plans for runners",
            "system_prompt": "You are a running coach.",
            "blocked_topics": ["medicine"],
        },
        "small": {"description": "A model with a short window", "adapters": {"tiny": 1.0}},
    },
}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("turns")
    home_dir = root / "home"
    home_dir.mkdir()
    (home_dir / "konsilium.yaml").write_text(yaml.safe_dump(ROLES), encoding="utf-8")
    home = open_home(home_dir)
    engine = FakeUpstream(context_length=4096, context_lengths={"tiny": 40})
    roles = RoleService(engine, RoleRegistry.open(home), base_model_id="konsilium")
    log = ConversationLog(root / "log.sqlite3")
    app = create_app(engine, roles=roles, conversation_log=log)
    with running_server(app) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=60)
        yield client, engine, log, home


def chat(client, model: str, text: str, **kwargs):
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": text}], **kwargs)


def test_an_empty_prompt_list_is_a_clear_400_not_a_server_error(served):
    client = served[0]
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="konsilium", prompt=[], max_tokens=4)
    assert caught.value.body["param"] == "prompt" and "1 to 16" in caught.value.body["message"]


def test_a_raw_prompt_is_checked_against_the_context_of_the_role_that_answers_it(served):
    client, engine = served[0], served[1]
    prompt = "word " * 60  # fits the base model's 4096 tokens, not the role's 40
    assert client.completions.create(model="konsilium", prompt=prompt, max_tokens=4).choices[0].text
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="small", prompt=prompt, max_tokens=4)
    assert caught.value.code == "context_length_exceeded" and "maximum context length is 40" in str(caught.value)
    assert caught.value.body["param"] == "prompt"
    assert engine.last.adapter is None  # the refused request never reached the engine


def test_a_role_over_an_upstream_runs_on_its_model_name(served):
    client, engine = served[0], served[1]
    reply = client.completions.create(model="small", prompt="hello there", max_tokens=8)
    assert engine.last.adapter == "tiny" and reply.choices[0].text.startswith("[tiny")


def test_a_named_role_declines_its_blocked_topic_and_the_neutral_model_says_so(served):
    client, engine, log = served[0], served[1], served[2]
    reply = chat(client, "coach", "Which medicine helps a sore throat?", max_tokens=16)
    content = reply.choices[0].message.content
    assert content.startswith("> [!note] Neutral answer") and "coach does not answer on 'medicine'" in content
    assert reply.model_extra["role"] == {
        "id": None,
        "label": "neutral",
        "declined": "coach does not answer on 'medicine'",
    }
    assert "running coach" not in str(engine.last.messages)  # the role's prompt stayed out
    assert log.get(reply.id).role is None
    on_topic = chat(client, "coach", "Plan my first 10k run", max_tokens=16)
    assert on_topic.model_extra["role"]["id"] == "coach" and "running coach" in str(engine.last.messages)


def test_dual_choices_say_which_is_neutral_and_which_is_the_role(served):
    client = served[0]
    reply = chat(client, "coach", "Plan my first 10k run", max_tokens=16, extra_body={"dual": True})
    neutral, role = reply.choices
    assert neutral.model_extra["role"] == {"id": None, "label": "neutral"}
    assert role.model_extra["role"]["id"] == "coach" and role.model_extra["role"]["label"] == "neutral"
    plain = chat(client, "coach", "Plan my first 10k run", max_tokens=4)
    assert "role" not in plain.choices[0].model_extra  # a single answer carries its role at the top level only


@pytest.mark.parametrize(
    "param,value",
    [
        ("functions", [{"name": "get_weather", "parameters": {"type": "object"}}]),
        ("function_call", {"name": "get_weather"}),
    ],
)
def test_legacy_functions_are_refused_by_name(served, param, value):  # tools: tests/server/test_tools.py
    client, engine = served[0], served[1]
    before = len(engine.received)
    with pytest.raises(openai.BadRequestError) as caught:
        chat(client, "konsilium", "What is the weather?", max_tokens=4, extra_body={param: value})
    assert caught.value.body["param"] == param and "not supported" in caught.value.body["message"]
    assert len(engine.received) == before


def test_a_stream_names_its_role_and_is_logged_with_the_same_text(served):
    client, log = served[0], served[2]
    stream = chat(client, "coach", "Plan my first 10k run", max_tokens=12, stream=True)
    chunks = list(stream)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert chunks[0].model_extra["role"]["id"] == "coach" and chunks[-1].choices[0].finish_reason == "stop"
    assert log.get(chunks[0].id).response == text


def test_roles_added_while_the_server_runs_are_served_without_a_restart(served):
    client, home = served[0], served[3]
    assert "writer" not in [model.id for model in client.models.list()]
    RoleRegistry.open(home).add_role(RoleSpec("writer", description="Essays", system_prompt="You write essays."))
    assert "writer" in [model.id for model in client.models.list()]
    assert chat(client, "writer", "An essay on rivers", max_tokens=8).model_extra["role"]["id"] == "writer"


class ManyNotes:
    """Stands in for an indexed vault where every question finds many long passages."""

    default_collection = "vault"

    def collections(self) -> list[str]:
        return ["vault"]

    def search(self, query, k, *args, **kwargs):
        from konsilium.grounding.knowledge import Passage

        return [Passage("vault", f"n{i}.md", f"n{i}", "", "word " * 600, 1.0 - i / 100) for i in range(k)]


class GpuFake(FakeEngine):
    def info(self) -> dict:
        return {**super().info(), "device": "cuda"}


def test_prompts_and_answers_are_sized_to_the_engine():
    """A CPU reads prompts slowly: its notes are capped (first token in seconds, not 30-40 s) and an answer with no
    max_tokens is bounded; a GPU engine gets the configured share of its window and OpenAI's "to the end"."""
    from konsilium.engines import SamplingParams
    from konsilium.pipeline import TurnPipeline, TurnRequest

    def prompt_tokens(engine) -> tuple[int, int | None]:
        pipeline = TurnPipeline(engine, RoleService(engine), ManyNotes())
        request = TurnRequest("chat.completions", "konsilium", SamplingParams(max_tokens=None), [QUESTION])
        turn = pipeline.prepare(request)
        return engine.count_chat_tokens(turn.messages), turn.request.params.max_tokens

    cpu_tokens, cpu_answer = prompt_tokens(FakeEngine(context_length=8192))
    gpu_tokens, gpu_answer = prompt_tokens(GpuFake(context_length=8192))
    assert cpu_tokens <= 1024 + 200 and cpu_answer == 256
    assert gpu_tokens > 3000 and gpu_answer is None


QUESTION = {"role": "user", "content": "What do my notes say?"}
