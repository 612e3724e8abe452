"""Tool calling and structured output through the official `openai` client against a real uvicorn server.

The engine is the fake (tests/fake_engine.py): given tools it answers with a hermes `<tool_call>` in pieces of a few
characters, after a tool result it answers in words, and it honours a constraint with the smallest value the schema
allows. Under test: the OpenAI shapes (tool_calls, finish_reason, streamed deltas), a whole round, the checks on
tools and schemas, tool_choice none, Sources kept out of arguments and JSON, and the log. The real model's
constrained decoding is in test_structured_output.py.
"""

from __future__ import annotations

import json

import httpx2
import openai
import pytest
from fake_engine import FakeEngine
from fake_notes import OneNoteVault as Notes
from live_server import running_server

from konsilium.engines import ConstraintSupport
from konsilium.memory import ConversationLog
from konsilium.server import create_app

MODEL = "konsilium-test"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city now",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "minLength": 2}, "unit": {"enum": ["celsius", "fahrenheit"]}},
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
EXPECTED_ARGUMENTS = {"city": "xx", "unit": "celsius"}  # the fake's smallest valid arguments
PERSON = {
    "type": "json_schema",
    "json_schema": {
        "name": "person",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
            "required": ["name", "age"],
            "additionalProperties": False,
        },
    },
}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    log = ConversationLog(tmp_path_factory.mktemp("tools") / "log.sqlite3")
    engine = FakeEngine(context_length=4096)
    with running_server(create_app(engine, model_id=MODEL, knowledge=Notes(), conversation_log=log)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=60)
        yield client, engine, log, url


def test_a_tool_call_has_an_id_a_name_json_arguments_and_finish_reason_tool_calls(served):
    client, engine, log, _ = served
    response = client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER, TIME])
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.id.startswith("call_") and len(call.id) == 29 and call.type == "function"
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == EXPECTED_ARGUMENTS
    assert [tool["function"]["name"] for tool in engine.last.tools] == ["get_weather", "get_time"]
    kept = log.get(response.id)
    assert kept.output == "tool_calls" and kept.finish_reason == "tool_calls"
    assert kept.tool_calls == [call.model_dump(include={"id", "type", "function"})]


def test_a_streamed_call_comes_as_openai_deltas_and_accumulates_to_the_same_call(served):
    client, *_ = served
    whole = client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER]).choices[0].message
    chunks = list(client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER], stream=True))
    pieces = [c.choices[0].delta.tool_calls[0] for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    first, rest = pieces[0], pieces[1:]
    assert first.index == 0 and first.id.startswith("call_") and first.type == "function"
    assert first.function.name == "get_weather" and first.function.arguments == ""
    assert len(rest) > 3 and all(p.id is None and p.function.name is None for p in rest)  # arguments in pieces
    assert "".join(p.function.arguments for p in rest) == whole.tool_calls[0].function.arguments
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    # The client's own accumulator (what agent frameworks use) puts the pieces together into the same call.
    with client.chat.completions.stream(model=MODEL, messages=ASK, tools=[WEATHER]) as stream:
        final = stream.get_final_completion().choices[0]
    (call,) = final.message.tool_calls
    assert (call.function.name, call.function.arguments) == ("get_weather", whole.tool_calls[0].function.arguments)
    assert call.function.parsed_arguments == EXPECTED_ARGUMENTS and final.finish_reason == "tool_calls"


def test_a_whole_round_call_then_result_then_answer(served):
    client, engine, log, _ = served
    messages = [{"role": "developer", "content": "Use the tools."}, *ASK]
    first = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER])
    call = first.choices[0].message.tool_calls[0]
    messages += [
        first.choices[0].message,  # as agent frameworks append it: the client's own message object
        {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 18}'},
    ]
    final = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER])
    answer = final.choices[0]
    assert answer.finish_reason == "stop" and not answer.message.tool_calls
    assert answer.message.content.startswith('[base] notes=1 system=yes | tool: {"temperature": 18}')
    sent = engine.last.messages
    assert sent[-2]["tool_calls"][0]["id"] == call.id and sent[-2]["content"] is None
    assert sent[-1] == {"role": "tool", "content": '{"temperature": 18}', "tool_call_id": call.id}
    kept = log.get(final.id)
    assert kept.output == "text" and kept.messages[-1]["role"] == "tool"


def test_required_and_named_tool_choice(served):
    client, engine, *_ = served
    required = client.chat.completions.create(model=MODEL, messages=ASK, tools=[TIME, WEATHER], tool_choice="required")
    assert required.choices[0].message.tool_calls[0].function.name == "get_time"
    assert engine.last.params.constraint.forces_calls
    named = client.chat.completions.create(
        model=MODEL,
        messages=ASK,
        tools=[TIME, WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=True,
    )
    assert [c.function.name for c in named.choices[0].message.tool_calls] == ["get_weather"]
    assert [t["function"]["name"] for t in engine.last.params.constraint.tools] == ["get_weather"]
    assert not engine.last.params.constraint.parallel  # one call to the named function


def test_tool_choice_none_is_a_plain_text_answer(served):
    client, engine, *_ = served
    response = client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER], tool_choice="none")
    choice = response.choices[0]
    assert choice.finish_reason == "stop" and choice.message.tool_calls is None
    assert choice.message.content.startswith("[base] notes=1 system=yes | What is the weather in Paris?")
    assert engine.last.tools is None and engine.last.params.constraint is None  # not shown to the model


def test_sources_stay_out_of_tool_arguments_and_json_but_in_the_sources_field(served):
    client, *_ = served
    called = client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER])
    assert called.model_extra["sources"][0]["note"] == "travel/Paris.md"
    assert "Sources" not in called.choices[0].message.tool_calls[0].function.arguments
    shaped = client.chat.completions.create(model=MODEL, messages=ASK, response_format=PERSON)
    content = shaped.choices[0].message.content
    assert json.loads(content) == {"name": "x", "age": 0} and "Sources" not in content
    assert shaped.model_extra["sources"][0]["note"] == "travel/Paris.md"
    chunks = list(client.chat.completions.create(model=MODEL, messages=ASK, response_format=PERSON, stream=True))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == content
    assert [c.model_extra.get("sources") for c in chunks if c.choices and c.choices[0].finish_reason]
    plain = client.chat.completions.create(model=MODEL, messages=ASK)
    assert "Sources: [[Paris]]" in plain.choices[0].message.content  # prose answers still cite


def test_json_object_and_the_log(served):
    client, engine, log, _ = served
    response = client.chat.completions.create(model=MODEL, messages=ASK, response_format={"type": "json_object"})
    assert json.loads(response.choices[0].message.content) == {}
    assert engine.last.params.constraint.json_schema == {"type": "object"}
    assert log.get(response.id).output == "json"  # memory does not learn from it


@pytest.mark.parametrize(
    ("body", "param", "says"),
    [
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "strin"}}}},
            "response_format.json_schema.schema",
            "not a valid JSON schema",
        ),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {"$ref": "#/$defs/no"}},
                }
            },
            "response_format.json_schema.schema",
            "points at nothing",
        ),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"schema": {}}}},
            "response_format.json_schema.name",
            "name must be",
        ),
        ({"response_format": {"type": "xml"}}, "response_format", "response_format must be"),
        (
            {
                "tools": [
                    {
                        **WEATHER,
                        "function": {
                            **WEATHER["function"],
                            "parameters": {"type": "object", "properties": {"city": {"type": 5}}},
                        },
                    }
                ]
            },
            "tools[0].function.parameters",
            "not a valid JSON schema",
        ),
        ({"tools": [WEATHER, WEATHER]}, "tools[1].function.name", "given twice"),
        ({"tools": [{"type": "function", "function": {"name": "bad name"}}]}, "tools[0].function.name", "letters"),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
            "tool_choice",
            "not one of the tools",
        ),
        ({"tool_choice": "required"}, "tool_choice", "needs tools"),
        ({"tools": [WEATHER], "tool_choice": "sometimes"}, "tool_choice", "tool_choice must be"),
    ],
)
def test_bad_tools_and_schemas_are_a_clear_400(served, body, param, says):
    _, _, _, url = served
    request = {"model": MODEL, "messages": ASK, **body}
    response = httpx2.post(f"{url}/v1/chat/completions", json=request, timeout=30)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and says in error["message"] and error["type"] == "invalid_request_error"


def test_an_engine_that_cannot_constrain_refuses_clearly_and_still_takes_auto():
    engine = FakeEngine(constraint_support=ConstraintSupport.NONE)
    with running_server(create_app(engine, model_id=MODEL)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=60)
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER], tool_choice="required")
        assert caught.value.body["param"] == "tool_choice" and "cannot constrain" in caught.value.body["message"]
        auto = client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER])
    assert auto.choices[0].message.tool_calls[0].function.name == "get_weather"


def test_completions_still_refuse_tools_and_formats_by_name(served):
    _, _, _, url = served
    body = {"model": MODEL, "prompt": "hi", "tools": [WEATHER]}
    response = httpx2.post(f"{url}/v1/completions", json=body, timeout=30)
    assert response.status_code == 400 and response.json()["error"]["param"] == "tools"


def test_an_upstream_is_handed_the_tools_and_format_and_its_calls_come_back(served):
    from konsilium.engines.openai_upstream import OpenAIUpstreamEngine

    _, back, _, back_url = served  # a konsilium on the fake engine stands as the OpenAI-compatible upstream
    named = {"type": "function", "function": {"name": "get_weather"}}
    with running_server(create_app(OpenAIUpstreamEngine(f"{back_url}/v1", MODEL), model_id="front")) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=60)
        whole = client.chat.completions.create(model="front", messages=ASK, tools=[WEATHER, TIME], tool_choice=named)
        assert back.last.params.constraint.forces_calls and len(back.last.tools) == 2
        assert back.last.params.constraint.tool_choice == named
        (call,) = whole.choices[0].message.tool_calls
        assert call.function.name == "get_weather" and json.loads(call.function.arguments) == EXPECTED_ARGUMENTS
        chunks = list(
            client.chat.completions.create(model="front", messages=ASK, tools=[WEATHER], tool_choice=named, stream=True)
        )
        pieces = [c.choices[0].delta.tool_calls[0] for c in chunks if c.choices and c.choices[0].delta.tool_calls]
        assert pieces[0].function.name == "get_weather"
        assert "".join(p.function.arguments or "" for p in pieces) == call.function.arguments
        shaped = client.chat.completions.create(model="front", messages=ASK, response_format=PERSON)
        assert json.loads(shaped.choices[0].message.content) == {"name": "x", "age": 0}
        assert back.last.params.constraint.json_schema == PERSON["json_schema"]["schema"]


def test_an_alternative_role_warns_before_prose_and_calls_it_chose_but_never_inside_json(tmp_path):
    import yaml

    from konsilium.config import open_home
    from konsilium.roles.registry import RoleRegistry
    from konsilium.roles.runtime import RoleService

    spec = {"roles": {"skeptic": {"description": "Doubts", "label": "alternative", "disclaimer": "Not neutral."}}}
    (tmp_path / "konsilium.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    engine = FakeEngine()
    roles = RoleService(engine, RoleRegistry.open(open_home(tmp_path)), base_model_id=MODEL)
    with running_server(create_app(engine, roles=roles)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=60)
        shaped = client.chat.completions.create(model="skeptic", messages=ASK, response_format=PERSON)
        called = client.chat.completions.create(model="skeptic", messages=ASK, tools=[WEATHER])
        forced = client.chat.completions.create(model="skeptic", messages=ASK, tools=[WEATHER], tool_choice="required")
    assert json.loads(shaped.choices[0].message.content) and shaped.model_extra["role"]["id"] == "skeptic"
    assert called.choices[0].message.content.startswith("> [!warning] Alternative view: skeptic")
    assert called.choices[0].message.tool_calls and forced.choices[0].message.content is None
