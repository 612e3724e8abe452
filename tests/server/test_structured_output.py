"""Constrained decoding on the real embedded model (SmolLM2-135M, konsilium's transformers engine), through the
official `openai` client against the session's server on it (`embedded_upstream`).

A 135M model left to itself rarely writes JSON that a schema accepts; under the grammar every answer must parse
and validate: `response_format` json_schema (strict) over the benchmark's varied schemas, `tool_choice` required
and a named function (the arguments validate against the tool's parameters; the named call streamed, its deltas
put together as OpenAI's are). Four requests at a time, so constrained rows decode in shared forwards, each under
its own grammar. Greedy, small max_tokens.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import jsonschema
import openai
import pytest

from benchmarks.structured_output import SCHEMAS, TOOL_QUESTION, TOOLS, messages_for, response_format

pytestmark = pytest.mark.real_model
MAX_TOKENS = 64
PARAMETERS = {tool["function"]["name"]: tool["function"]["parameters"] for tool in TOOLS}
NAMED = {"type": "function", "function": {"name": "get_time"}}
CONCURRENT = 4  # rows under different grammars share forwards; more rows cost more than they save on 2 cores


@pytest.fixture(scope="module")
def answers(embedded_upstream):
    """Every request of this module, sent together: {schema name | "required" | "named": answer}."""
    client = openai.OpenAI(base_url=embedded_upstream.base_url, api_key="x", max_retries=0, timeout=300)
    common = {"model": embedded_upstream.model, "temperature": 0, "max_tokens": MAX_TOKENS}
    calls = {"messages": [{"role": "user", "content": TOOL_QUESTION}], "tools": TOOLS, **common}

    def ask(name: str):
        if name == "required":
            return client.chat.completions.create(tool_choice="required", **calls)
        if name == "named":  # streamed
            return list(client.chat.completions.create(tool_choice=NAMED, stream=True, **calls))
        return client.chat.completions.create(
            messages=messages_for(SCHEMAS[name][1]), response_format=response_format(name), **common
        )

    names = [*SCHEMAS, "required", "named"]
    with ThreadPoolExecutor(CONCURRENT) as pool:
        return dict(zip(names, pool.map(ask, names), strict=True))


def test_json_schema_answers_parse_and_validate_for_every_schema(answers):
    assert len(SCHEMAS) >= 8
    for name, (schema, _) in SCHEMAS.items():
        content = answers[name].choices[0].message.content
        jsonschema.validate(json.loads(content), schema)  # raises, naming the schema's complaint
        assert answers[name].choices[0].finish_reason == "stop", (name, content)


def test_required_tool_choice_gives_calls_whose_arguments_validate(answers):
    answer = answers["required"].choices[0]
    assert answer.finish_reason == "tool_calls" and answer.message.tool_calls
    for call in answer.message.tool_calls:
        jsonschema.validate(json.loads(call.function.arguments), PARAMETERS[call.function.name])


def test_a_named_function_is_called_and_its_streamed_arguments_validate(answers):
    chunks = [chunk for chunk in answers["named"] if chunk.choices]
    pieces = [chunk.choices[0].delta.tool_calls[0] for chunk in chunks if chunk.choices[0].delta.tool_calls]
    assert pieces[0].id and pieces[0].function.name == "get_time" and len(pieces) > 2
    assert {piece.index for piece in pieces} == {0} and chunks[-1].choices[0].finish_reason == "tool_calls"
    arguments = "".join(piece.function.arguments or "" for piece in pieces)
    jsonschema.validate(json.loads(arguments), PARAMETERS["get_time"])


def test_a_schema_the_grammar_cannot_follow_is_a_clear_400(embedded_upstream, answers):
    client = openai.OpenAI(base_url=embedded_upstream.base_url, api_key="x", max_retries=0, timeout=60)
    lookbehind = {"type": "object", "properties": {"code": {"type": "string", "pattern": "(?<=A)B"}}}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=embedded_upstream.model,
            messages=messages_for("A code?"),
            response_format={"type": "json_schema", "json_schema": {"name": "code", "schema": lookbehind}},
            max_tokens=8,
        )
    error = caught.value.body
    assert error["param"] == "response_format.json_schema.schema" and error["code"] == "invalid_schema"
    assert "cannot be used for constrained decoding" in error["message"] and "look-around" in error["message"]
