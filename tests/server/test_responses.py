"""POST /v1/responses through the official `openai` client against a real uvicorn server and the fake engine.

Under test: text in and out, `instructions` as the system message, `previous_response_id` from the conversation
log, a tool call as a `function_call` item and a `function_call_output` round, streamed events that the client's
own accumulator puts together into the same answer, `text.format` as a constraint, and the errors.
"""

from __future__ import annotations

import json

import httpx2
import openai
import pytest
from fake_engine import FakeEngine
from live_server import running_server

from konsilium.memory import ConversationLog
from konsilium.server import create_app

MODEL = "konsilium-test"
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city now",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "minLength": 2}, "unit": {"enum": ["celsius", "fahrenheit"]}},
        "required": ["city", "unit"],
        "additionalProperties": False,
    },
    "strict": True,
}
EXPECTED_ARGUMENTS = {"city": "xx", "unit": "celsius"}  # the fake's smallest valid arguments


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    log = ConversationLog(tmp_path_factory.mktemp("responses") / "log.sqlite3")
    engine = FakeEngine(context_length=4096)
    with running_server(create_app(engine, model_id=MODEL, conversation_log=log)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=60)
        yield client, engine, log, url


def test_text_in_text_out_with_instructions_as_the_system_message(served):
    client, engine, log, _ = served
    response = client.responses.create(model=MODEL, input="Hello there", instructions="Be brief.")
    assert response.object == "response" and response.status == "completed" and response.id.startswith("resp_")
    assert response.output_text == "[base] notes=0 system=yes | Hello there"
    (item,) = response.output
    assert item.type == "message" and item.role == "assistant" and item.content[0].annotations == []
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens > 0
    assert engine.last.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello there"},
    ]
    kept = log.get(response.id)
    assert kept.endpoint == "responses" and kept.response == response.output_text


def test_input_items_with_text_parts(served):
    client, engine, *_ = served
    items = [
        {"role": "user", "content": [{"type": "input_text", "text": "Two "}, {"type": "input_text", "text": "parts"}]}
    ]
    response = client.responses.create(model=MODEL, input=items)
    assert response.output_text.endswith("| Two parts")


def test_previous_response_id_continues_the_conversation(served):
    client, engine, *_ = served
    first = client.responses.create(model=MODEL, input="My name is Ada.", instructions="Old rules.")
    second = client.responses.create(model=MODEL, input="What is my name?", previous_response_id=first.id)
    assert second.previous_response_id == first.id
    assert engine.last.messages == [
        {"role": "system", "content": "Old rules."},
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": first.output_text},
        {"role": "user", "content": "What is my name?"},
    ]
    client.responses.create(model=MODEL, input="Again?", previous_response_id=second.id, instructions="New rules.")
    sent = engine.last.messages
    assert sent[0] == {"role": "system", "content": "New rules."} and [m["role"] for m in sent].count("system") == 1
    assert len(sent) == 6


def test_a_tool_call_is_a_function_call_item_and_its_output_round_answers(served):
    client, engine, log, _ = served
    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = client.responses.create(model=MODEL, input=ask, tools=[WEATHER])
    (call,) = first.output
    assert call.type == "function_call" and call.name == "get_weather" and call.status == "completed"
    assert call.call_id.startswith("call_") and json.loads(call.arguments) == EXPECTED_ARGUMENTS
    assert engine.last.tools[0]["function"]["name"] == "get_weather"
    assert log.get(first.id).tool_calls[0]["id"] == call.call_id
    result = {"type": "function_call_output", "call_id": call.call_id, "output": '{"temperature": 18}'}
    final = client.responses.create(model=MODEL, input=[*ask, call, result], tools=[WEATHER])
    assert final.output[0].type == "message" and final.output_text.endswith('| tool: {"temperature": 18}')
    sent = engine.last.messages
    assert sent[-2]["tool_calls"][0]["id"] == call.call_id and sent[-2]["content"] is None
    assert sent[-1] == {
        "role": "tool",
        "content": '{"temperature": 18}',
        "tool_call_id": call.call_id,
        "name": "get_weather",
    }
    # The same round through previous_response_id: the logged call comes before its output.
    chained = client.responses.create(model=MODEL, input=[result], previous_response_id=first.id, tools=[WEATHER])
    assert chained.output_text == final.output_text


def test_streamed_events_accumulate_to_the_same_answer(served):
    client, *_ = served
    whole = client.responses.create(model=MODEL, input="Stream me please", max_output_tokens=64)
    events = list(client.responses.create(model=MODEL, input="Stream me please", max_output_tokens=64, stream=True))
    kinds = [event.type for event in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert text == whole.output_text == events[-1].response.output_text
    with client.responses.stream(model=MODEL, input="Stream me please", max_output_tokens=64) as stream:
        final = stream.get_final_response()
    assert final.output_text == whole.output_text


def test_a_streamed_call(served):
    client, *_ = served
    with client.responses.stream(model=MODEL, input="Weather in Paris?", tools=[WEATHER]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    pieces = [event.delta for event in events if event.type == "response.function_call_arguments.delta"]
    (call,) = final.output
    assert call.type == "function_call" and len(pieces) > 1 and "".join(pieces) == call.arguments
    assert json.loads(call.arguments) == EXPECTED_ARGUMENTS


def test_cut_by_max_output_tokens_is_incomplete(served):
    client, *_ = served
    response = client.responses.create(model=MODEL, input="a long question with many words", max_output_tokens=2)
    assert response.status == "incomplete" and response.incomplete_details.reason == "max_output_tokens"


def test_text_format_json_schema_constrains_the_engine(served):
    client, engine, *_ = served
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    fmt = {"format": {"type": "json_schema", "name": "person", "schema": schema, "strict": True}}
    response = client.responses.create(model=MODEL, input="Who?", text=fmt)
    assert engine.last.params.constraint.json_schema == schema
    assert json.loads(response.output_text) == {"name": "x", "age": 0}


def test_bad_requests_are_400_and_an_unknown_previous_id_is_404(served):
    client, _, _, url = served
    with pytest.raises(openai.BadRequestError, match="background"):
        client.responses.create(model=MODEL, input="x", background=True)
    # what reasoning-aware clients send by default is taken (nothing to steer yet), not refused
    assert client.responses.create(model=MODEL, input="x", reasoning={"effort": "low"}, include=[]).output_text
    with pytest.raises(openai.BadRequestError, match="input_image"):
        client.responses.create(
            model=MODEL, input=[{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]
        )
    with pytest.raises(openai.BadRequestError, match="tools.0..type must be .function"):
        client.responses.create(model=MODEL, input="x", tools=[{"type": "web_search"}])
    with pytest.raises(openai.BadRequestError, match="konsilium.dual"):
        client.responses.create(model=MODEL, input="x", extra_body={"konsilium": {"dual": True}})
    quiet = client.responses.create(
        model=MODEL, input="x", extra_body={"konsilium": {"retrieval": False, "memory": False}}
    )
    assert quiet.status == "completed"
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model=MODEL, input="x", previous_response_id="resp_nope")
    assert caught.value.code == "previous_response_not_found"
    missing = httpx2.post(f"{url}/v1/responses", json={"model": MODEL})
    assert missing.status_code == 400 and "input" in missing.json()["error"]["message"]


def test_a_failure_mid_stream_is_an_error_event_and_the_log_keeps_it(served):
    client, engine, log, _ = served
    engine.fail_after_chunks = 2
    try:
        events = list(client.responses.create(model=MODEL, input="This will break", stream=True))
    finally:
        engine.fail_after_chunks = None
    assert events[0].type == "response.created" and events[-1].type == "error"
    assert "fake engine failed" in events[-1].message
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert log.get(events[0].response.id).status == "error"
