"""The parts of tool calling and structured output that need no model: reading hermes calls (in any pieces), the
request's fields as a constraint, the chat template with tools, the grammar, what the vLLM and upstream engines
are handed, and what memory and training do with tool and JSON exchanges."""

from __future__ import annotations

import json
import random
import time

import pytest
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from transformers import PreTrainedTokenizerFast

from konsilium.engines.protocol import Constraint
from konsilium.errors import RequestError
from konsilium.memory import Exchange
from konsilium.memory.recall import new_user_text
from konsilium.memory.service import learns_from
from konsilium.structured import hermes, template
from konsilium.structured.grammar import closed, lark_grammar
from konsilium.structured.request import structured_request

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
TEXTS = [
    'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "n": {"a": 1}}}\n</tool_call>',
    '<tool_call>\n{"name": "a", "arguments": {}}\n</tool_call>\n<tool_call>\n{"name": "b", "arguments": {"x": "}}"}}'
    "\n</tool_call>\n",
    '<tool_call>\n{"arguments": {"x": 1}, "name": "written_backwards"}\n</tool_call>',
    "no calls, only <tool and < signs",
    '<tool_call>\n{"name": "cut_short", "arguments": {"city": "Par',
    "<tool_call>not a call</tool_call> and text after",
    '<tool_call>\n{"name": "no_outer_brace", "arguments": {"a": 1}\n</tool_call>',
]


# --- reading calls -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", TEXTS)
def test_calls_read_in_any_pieces_equal_the_whole_read(text):
    whole = hermes.read(text)
    expected = ([(c.name, c.arguments) for c in whole.calls], whole.answer)
    shuffle = random.Random(0)
    for _ in range(100):
        reader, events, at = hermes.HermesReader(), [], 0
        while at < len(text):
            size = shuffle.randint(1, 7)
            events += reader.feed(text[at : at + size])
            at += size
        events += reader.finish()
        assert ([(c.name, c.arguments) for c in reader.calls], reader.answer) == expected
        streamed: dict[int, list[str]] = {}
        for event in events:
            if isinstance(event, hermes.CallDelta):
                name, arguments = streamed.setdefault(event.index, ["", ""])
                streamed[event.index] = [event.name or name, arguments + event.arguments]
                assert (event.id is not None) == (event.name is not None)  # id and name come first, once
        assert [tuple(v) for _, v in sorted(streamed.items())] == expected[0]
        assert "".join(e.text for e in events if isinstance(e, hermes.ContentDelta)) == whole.content


def test_what_the_reader_makes_of_each_text():
    results = [hermes.read(text) for text in TEXTS]
    assert [(c.name, json.loads(c.arguments)) for c in results[0].calls] == [
        ("get_weather", {"city": "Paris", "n": {"a": 1}})
    ]
    assert results[0].answer == "Let me check."
    assert [c.arguments for c in results[1].calls] == ["{}", '{"x": "}}"}'] and results[1].answer is None
    assert results[2].calls[0].name == "written_backwards" and json.loads(results[2].calls[0].arguments) == {"x": 1}
    assert results[3].calls == [] and results[3].answer == TEXTS[3]
    assert results[4].calls[0].arguments == '{"city": "Par'  # cut by max_tokens: what there is
    assert results[5].calls == [] and results[5].answer == TEXTS[5]  # unreadable: kept as the model wrote it
    assert results[6].calls[0].arguments == '{"a": 1}'
    assert [c.name for c in hermes.read(TEXTS[1], parallel=False).calls] == ["a"]
    assert all(c.id.startswith("call_") and len(c.id) == 29 for c in results[1].calls)


# --- the request's fields ------------------------------------------------------------------------------------


def test_tool_choice_and_response_format_as_a_constraint():
    use, constraint = structured_request([WEATHER, TIME])
    assert use.choice == "auto" and use.for_engine() == [WEATHER, TIME] and constraint is None
    use, constraint = structured_request([WEATHER, TIME], "none")
    assert not use.active and constraint is None
    _, constraint = structured_request([WEATHER, TIME], "required", False)
    assert constraint.forces_calls and len(constraint.tools) == 2 and not constraint.parallel
    assert constraint.tool_choice == "required"
    _, constraint = structured_request([WEATHER, TIME], {"type": "function", "function": {"name": "get_time"}})
    assert [t["function"]["name"] for t in constraint.tools] == ["get_time"] and constraint.forces_calls
    assert constraint.tool_choice == {"type": "function", "function": {"name": "get_time"}}
    fmt = {"type": "json_schema", "json_schema": {"name": "p", "schema": {"type": "object"}, "strict": True}}
    _, constraint = structured_request(response_format=fmt)
    assert constraint.json_schema == {"type": "object"} and not constraint.tools and constraint.response_format == fmt
    _, constraint = structured_request([WEATHER], response_format=fmt)  # auto: a call or the JSON
    assert constraint.json_schema == {"type": "object"} and constraint.tools and not constraint.forces_calls
    assert structured_request(response_format={"type": "text"}) == (structured_request()[0], None)
    with pytest.raises(ValueError, match="needs a JSON schema"):
        Constraint()


def test_schemas_are_checked_against_the_meta_schema_with_the_place_of_the_fault():
    bad = {"type": "object", "properties": {"age": {"type": "integer", "minimum": "zero"}}}
    with pytest.raises(RequestError) as caught:
        structured_request(response_format={"type": "json_schema", "json_schema": {"name": "p", "schema": bad}})
    assert caught.value.param == "response_format.json_schema.schema" and caught.value.code == "invalid_schema"
    assert "properties/age/minimum" in str(caught.value)
    remote = {"$ref": "https://example.com/schema.json"}
    with pytest.raises(RequestError, match="points outside the schema"):
        structured_request(response_format={"type": "json_schema", "json_schema": {"name": "p", "schema": remote}})
    with pytest.raises(RequestError, match="must describe an object"):
        structured_request([{"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}])


# --- the chat template ---------------------------------------------------------------------------------------

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
KNOWS_TOOLS = (
    "{% if tools %}TOOLS:{% for t in tools %} {{ t['function']['name'] }}{% endfor %}\n{% endif %}"
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}{% if m.tool_calls %}"
    "{% for c in m.tool_calls %} CALL {{ c['function']['name'] }} {{ c['function']['arguments'] | tojson }}"
    "{% endfor %}{% endif %}\n{% endfor %}assistant:"
)
ROUND = [
    {"role": "developer", "content": "Be brief."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    ]},
    {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature": 18}'},
    {"role": "tool", "tool_call_id": "call_2", "content": '{"humidity": 40}'},
]  # fmt: skip


def tokenizer_with(chat_template: str) -> PreTrainedTokenizerFast:
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(WordLevel({"[UNK]": 0}, unk_token="[UNK]")))
    tokenizer.chat_template = chat_template
    return tokenizer


def test_a_template_without_tools_gets_them_hermes_style():
    prompt = template.render(tokenizer_with(CHATML), ROUND, [WEATHER])
    system, rest = prompt.split("<|im_end|>\n", 1)
    assert system.startswith("<|im_start|>system\nBe brief.\n\n# Tools") and '"name": "get_weather"' in system
    assert '<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}' in rest
    assert (
        "<|im_start|>user\n<tool_response>\n"
        '{"temperature": 18}\n</tool_response>\n<tool_response>\n{"humidity": 40}\n</tool_response><|im_end|>'
    ) in rest  # two results, one user turn
    assert rest.endswith("<|im_start|>assistant\n") and "developer" not in prompt


def test_a_template_that_knows_tools_gets_them_itself():
    prompt = template.render(tokenizer_with(KNOWS_TOOLS), ROUND, [WEATHER])
    assert prompt.startswith("TOOLS: get_weather") and "system: Be brief." in prompt  # developer: system
    assert 'assistant:  CALL get_weather {"city": "Paris"}' in prompt  # arguments as an object, dumped once
    assert 'tool: {"temperature": 18}' in prompt and "# Tools" not in prompt and "<tool_call>" not in prompt


# --- the grammar and the engines' arguments ------------------------------------------------------------------


def test_the_grammar_forces_hermes_calls_and_compiles():
    import llguidance

    _, constraint = structured_request([WEATHER, TIME], "required", False)
    lark = lark_grammar(constraint)
    assert 'call: "<tool_call>\\n" call_body "\\n</tool_call>"' in lark and "start: calls" in lark
    assert "calls: call\n" in lark  # parallel_tool_calls false: one call
    assert llguidance.LLMatcher.validate_grammar(llguidance.LLMatcher.grammar_from_lark(lark)) == ""
    assert closed({"type": "object", "properties": {"a": {"type": "object", "properties": {}}}}) == {
        "type": "object",
        "properties": {"a": {"type": "object", "properties": {}, "additionalProperties": False}},
        "additionalProperties": False,
    }
    assert "additionalProperties" not in closed({"type": "object", "patternProperties": {"^x": {}}, "properties": {}})


def test_what_vllm_is_handed():
    from konsilium.engines.vllm_engine import structured_outputs_kwargs

    assert structured_outputs_kwargs(None) == {}
    _, required = structured_request([WEATHER], "required")
    assert structured_outputs_kwargs(required) == {"grammar": lark_grammar(required)}
    _, json_object = structured_request(response_format={"type": "json_object"})
    assert structured_outputs_kwargs(json_object) == {"json_object": True}
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    _, shaped = structured_request(
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}}
    )
    assert structured_outputs_kwargs(shaped) == {"json": schema}


def test_what_an_upstream_is_handed_and_how_its_streamed_calls_come_back():
    from types import SimpleNamespace as NS

    from konsilium.engines import SamplingParams
    from konsilium.engines.openai_upstream import _CallsAsText, _structured

    use, constraint = structured_request([WEATHER], {"type": "function", "function": {"name": "get_weather"}})
    assert _structured(SamplingParams(constraint=constraint), use.for_engine()) == {
        "tools": [WEATHER],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": False,
    }
    assert _structured(SamplingParams(), [WEATHER]) == {"tools": [WEATHER], "tool_choice": "auto"}
    fmt = {"type": "json_object"}
    assert _structured(SamplingParams(constraint=structured_request(response_format=fmt)[1]), None) == {
        "response_format": fmt
    }

    def delta(index, name=None, arguments=None, content=None):
        call = NS(index=index, function=NS(name=name, arguments=arguments))
        return NS(delta=NS(content=content, tool_calls=[call] if index is not None else None))

    calls = _CallsAsText()
    events = [
        delta(None, content="Sure."),
        delta(0, "get_weather", ""),
        delta(0, None, '{"ci'),
        delta(0, None, 'ty": 1}'),
    ]
    events += [delta(1, "get_time", "")]
    text = "".join(calls.text_of(event) for event in events) + calls.close()
    read = hermes.read(text)
    assert read.answer == "Sure." and [(c.name, c.arguments) for c in read.calls] == [
        ("get_weather", '{"city": 1}'),
        ("get_time", "{}"),
    ]


# --- the log, memory and training ----------------------------------------------------------------------------


def test_tool_results_and_json_turns_teach_memory_nothing_and_are_no_training_chat():
    from konsilium.training.sources import Collected, Limits, collect_exchanges

    assert new_user_text(ROUND) == []  # the last user words were before the assistant's call; a tool is no user
    exchange = Exchange(
        id="chatcmpl-1",
        time=time.time(),
        endpoint="chat.completions",
        model="m",
        role=None,
        messages=[{"role": "user", "content": "My name is Anna, extract: Bob is 31"}],
        response='{"name": "Bob"}',
        finish_reason="stop",
        sources=[],
        output="json",
    )
    assert not learns_from(exchange)
    exchange.output = "text"
    assert learns_from(exchange)
    collected = Collected()
    calls = Exchange(**{**exchange.__dict__, "id": "c2", "output": "tool_calls", "response": "<tool_call>..."})
    results = Exchange(**{**exchange.__dict__, "id": "c3", "messages": ROUND, "response": "It is 18 degrees."})
    collect_exchanges([calls, results, exchange], Limits(), collected)
    assert [s.source for s in collected.samples] == ["log:chatcmpl-1"]
    assert collected.dropped["a tool-calling or JSON exchange (not a chat to learn from)"] == 2
