"""Thinking mode through the real server and the official `openai` client: a `<think>` block comes back as
`reasoning_content` (whole and streamed, before the content), stays out of the answer, its Sources, log search and
memory, is kept in the log's own field, follows the request's switches (konsilium.thinking, chat_template_kwargs,
`/no_think`) and a role's `thinking:`, and stops at a thinking budget with the answer after it. The Responses API
gives it as a `reasoning` output item before the message (whole, and as `response.reasoning_text.*` events that the
client's own accumulator puts together), and takes such an item back in `input` without showing it to the model.

The engine is the fake with a reasoning block before its usual answer (the block's `</think>` arrives split in two
chunks, as a tokenizer may cut it); it thinks unless told `enable_thinking: false`.
"""

from __future__ import annotations

import openai
import pytest
import yaml
from fake_engine import FakeEngine
from fake_notes import OneNoteVault as Notes
from live_server import running_server

from konsilium.cli.history_cmd import to_json
from konsilium.config import open_home
from konsilium.engines.openai_upstream import OpenAIUpstreamEngine
from konsilium.memory import ConversationLog
from konsilium.pipeline.thinking import ThinkSplitter, soft_switch, split
from konsilium.roles.registry import RoleRegistry
from konsilium.roles.runtime import RoleService
from konsilium.server import create_app

MODEL = "konsilium-test"
THOUGHT = ["<think>", "\nThe", " user", " asks;", " Zanzibar", " is", " unrelated.", "\n</th", "ink>", "\n\n"]
REASONING = "The user asks; Zanzibar is unrelated."


class ThinkingFake(FakeEngine):
    """Reasons before answering unless the template is told not to; a prompt that ends with a closed block (a spent
    budget) is answered with `after budget`."""

    def render_chat_prompt(self, messages, params, tools=None) -> str:
        return self.apply_chat_template(messages, tools)

    def stream(self, prompt, params, adapter=None):
        if prompt.endswith("</think>\n\n"):
            from fake_engine import FakeStream

            return FakeStream(self, self._answer("prompt", prompt, None, ["after", "budget"], params, adapter))
        return super().stream(prompt, params, adapter)

    def _answer(self, kind, prompt, messages, words, params, adapter, tools=None, raw=False, **rest):
        answer = super()._answer(kind, prompt, messages, words, params, adapter, tools, raw, **rest)
        if kind == "chat" and not raw and params.thinking is not False:
            answer.pieces[:0] = THOUGHT
            answer.record.text = "".join(answer.pieces)
        return answer


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("thinking")
    roles = {
        "roles": {
            "quiet": {"description": "answers without thinking", "thinking": False},
            "coach": {"description": "training plans", "label": "alternative", "disclaimer": "Not medical advice."},
        }
    }
    (root / "konsilium.yaml").write_text(yaml.safe_dump(roles), encoding="utf-8")
    log = ConversationLog(root / "log.sqlite3")
    engine = ThinkingFake(context_length=4096)
    roles = RoleService(engine, RoleRegistry.open(open_home(root)), base_model_id=MODEL)
    app = create_app(engine, model_id=MODEL, knowledge=Notes(), conversation_log=log, roles=roles)
    with running_server(app) as url:
        yield openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=60), engine, log, url


@pytest.fixture(scope="module")
def front(served):
    """A konsilium over the first one as its upstream: the reasoning arrives as `reasoning_content` there."""
    engine = OpenAIUpstreamEngine(f"{served[3]}/v1", MODEL, timeout_s=60)
    with running_server(create_app(engine, model_id="front")) as url:
        yield openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=60)


def ask(client, text="What is the weather in Paris?", **extra):
    return client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": text}], **extra)


def test_the_reasoning_comes_back_apart_from_the_answer_and_is_kept_apart_in_the_log(served):
    client, _, log, _ = served
    response = ask(client)
    message = response.choices[0].message
    assert message.model_extra["reasoning_content"] == REASONING
    assert message.content.startswith("[base] notes=1 system=yes | What is the weather in Paris?")
    assert "Zanzibar" not in message.content and "think>" not in message.content
    assert "Sources: [[Paris]]" in message.content  # the Sources tail follows the answer, not the reasoning
    record = log.get(response.id)
    assert record.reasoning == REASONING and "Zanzibar" not in record.response
    assert log.list(search="Zanzibar") == []  # what conversations are recalled from holds no reasoning
    assert to_json(record)["reasoning"] == REASONING  # `konsilium history show --json`


def test_streamed_reasoning_comes_first_as_reasoning_content_deltas(served):
    client, _, log, _ = served
    reasoning, content, order = "", "", []
    for chunk in ask(client, stream=True):
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        if (delta.model_extra or {}).get("reasoning_content"):
            reasoning += delta.model_extra["reasoning_content"]
            order.append("reasoning")
        if delta.content:
            content += delta.content
            order.append("content")
        last_id = chunk.id
    assert reasoning == REASONING
    assert order.index("content") > len(order) - order[::-1].index("reasoning") - 1  # all reasoning, then content
    assert content.startswith("[base] notes=1") and "Zanzibar" not in content and "think>" not in content
    record = log.get(last_id)
    assert record.reasoning == REASONING and record.response == content


@pytest.mark.parametrize(
    "extra",
    [
        {"extra_body": {"konsilium": {"thinking": False}}},
        {"extra_body": {"chat_template_kwargs": {"enable_thinking": False}}},
    ],
)
def test_thinking_off_reaches_the_template_and_gives_no_reasoning(served, extra):
    client, engine, _, _ = served
    message = ask(client, **extra).choices[0].message
    assert engine.last.params.thinking is False
    assert "reasoning_content" not in message.model_extra and message.content.startswith("[base]")


def test_the_soft_switch_is_honoured_and_taken_off_the_question(served):
    client, engine, log, _ = served
    response = ask(client, "What is the weather in Paris? /no_think")
    assert engine.last.params.thinking is False
    assert engine.last.messages[-1]["content"] == "What is the weather in Paris?"
    assert response.choices[0].message.content.startswith("[base] notes=1 system=yes | What is the weather in Paris?")
    assert log.get(response.id).messages[-1]["content"].endswith("/no_think")  # the log keeps what was sent
    ask(client, "And tomorrow? /think", extra_body={"konsilium": {"thinking": False}})
    assert engine.last.params.thinking is False  # the request's own setting wins over the switch


def test_a_role_that_does_not_think(served):
    client, engine, _, _ = served
    response = client.chat.completions.create(model="quiet", messages=[{"role": "user", "content": "Hi"}])
    assert engine.last.params.thinking is False
    assert "reasoning_content" not in response.choices[0].message.model_extra


def test_a_thinking_budget_closes_the_block_and_the_answer_follows(served):
    client, engine, log, _ = served
    response = ask(client, extra_body={"konsilium": {"thinking_budget": 2}})
    message = response.choices[0].message
    assert message.model_extra["reasoning_content"] == "The user"
    assert message.content.startswith("[base] after budget")
    assert engine.last.prompt.endswith("The user\n</think>\n\n")  # the answer continued from the closed block
    assert log.get(response.id).reasoning == "The user"
    streamed = "".join(
        c.choices[0].delta.model_extra.get("reasoning_content") or ""
        for c in ask(client, stream=True, extra_body={"konsilium": {"thinking_budget": 2}})
        if c.choices
    )
    assert streamed == "The user"
    short = ask(client, max_tokens=5, extra_body={"konsilium": {"thinking_budget": 2}})
    assert short.choices[0].message.content.startswith("[base] after\n") and short.choices[0].finish_reason == "length"
    assert short.usage.completion_tokens == 5  # 3 thinking ("<think>", "The", "user") + 2 of the answer


def test_an_upstreams_reasoning_content_is_kept_and_thinking_off_is_passed_on(served, front):
    _, engine, _, _ = served
    message = front.chat.completions.create(model="front", messages=[{"role": "user", "content": "Hi"}])
    assert message.choices[0].message.model_extra["reasoning_content"] == REASONING
    assert "Zanzibar" not in message.choices[0].message.content
    streamed = [
        c.choices[0].delta
        for c in front.chat.completions.create(model="front", messages=[{"role": "user", "content": "Hi"}], stream=True)
        if c.choices
    ]
    assert "".join((d.model_extra or {}).get("reasoning_content") or "" for d in streamed) == REASONING
    assert "Zanzibar" not in "".join(d.content or "" for d in streamed)
    front.chat.completions.create(
        model="front", messages=[{"role": "user", "content": "Hi"}], extra_body={"konsilium": {"thinking": False}}
    )
    assert engine.last.params.thinking is False  # sent on as chat_template_kwargs.enable_thinking


def test_the_responses_api_gives_the_reasoning_as_an_item_before_the_message(served):
    client, engine, log, _ = served
    response = client.responses.create(model=MODEL, input="What is the weather in Paris?")
    reasoning, message = response.output
    assert reasoning.type == "reasoning" and reasoning.summary == [] and reasoning.status == "completed"
    assert [(part.type, part.text) for part in reasoning.content] == [("reasoning_text", REASONING)]
    assert message.type == "message" and response.output_text.startswith("[base] notes=1 system=yes | What is")
    assert "Zanzibar" not in response.output_text and "think>" not in response.output_text
    assert log.get(response.id).reasoning == REASONING
    usage = response.usage  # the reasoning's share of the output, counted with the engine's tokenizer
    assert 0 < usage.output_tokens_details.reasoning_tokens < usage.output_tokens
    # A client keeping its own context sends the items back; the model is not shown its old reasoning.
    history = [item.model_dump(exclude_none=True) for item in response.output]
    again = client.responses.create(model=MODEL, input=[*history, {"role": "user", "content": "And tomorrow?"}])
    assert again.output_text.startswith("[base]") and "Zanzibar" not in str(engine.last.messages)
    quiet = client.responses.create(model="quiet", input="Hi")  # a role that does not think: no reasoning item
    assert [item.type for item in quiet.output] == ["message"]
    assert quiet.usage.output_tokens_details.reasoning_tokens == 0


def test_the_responses_api_streams_the_reasoning_before_the_answer(served):
    client, _, log, _ = served
    with client.responses.stream(model=MODEL, input="What is the weather in Paris?") as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [event.type for event in events]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    deltas = [event.delta for event in events if event.type == "response.reasoning_text.delta"]
    assert "".join(deltas) == REASONING and len(deltas) > 1  # piece by piece, as the model thinks
    (done,) = [event for event in events if event.type == "response.reasoning_text.done"]
    assert done.text == REASONING and done.output_index == 0
    assert kinds.index("response.output_text.delta") > done.sequence_number  # all the reasoning, then the answer
    assert kinds[2:4] == ["response.output_item.added", "response.content_part.added"]
    assert events[2].item.type == "reasoning" and events[3].part.type == "reasoning_text"
    reasoning, message = final.output  # the client's accumulator builds the same items as the whole response
    assert reasoning.content[0].text == REASONING and message.type == "message"
    assert final.output_text.startswith("[base] notes=1") and "Zanzibar" not in final.output_text
    assert log.get(final.id).reasoning == REASONING
    assert 0 < final.usage.output_tokens_details.reasoning_tokens < final.usage.output_tokens


def test_a_roles_opening_note_follows_the_reasoning_in_the_message(served):
    client, *_ = served
    whole = client.responses.create(model="coach", input="How do I train?")
    with client.responses.stream(model="coach", input="How do I train?") as stream:
        streamed = stream.get_final_response()
    for response in (whole, streamed):
        assert [item.type for item in response.output] == ["reasoning", "message"]
        assert response.output_text.startswith("> [!warning]") and "Not medical advice." in response.output_text
        assert response.output[0].content[0].text == REASONING
    assert streamed.output_text == whole.output_text


def test_bad_thinking_options_are_refused_by_name(served):
    client, _, _, _ = served
    for bad, param in (
        ({"thinking": "yes"}, "konsilium.thinking"),
        ({"thinking_budget": 0}, "konsilium.thinking_budget"),
    ):
        with pytest.raises(openai.BadRequestError) as caught:
            ask(client, extra_body={"konsilium": bad})
        assert caught.value.body["param"] == param


def test_the_splitter_holds_tags_split_across_chunks_and_knows_a_block_opened_in_the_prompt():
    splitter = ThinkSplitter()
    pieces = [p for text in ("<th", "ink>a b</", "think>\n\nanswer <b>") for p in splitter.feed(text)]
    pieces += splitter.finish()
    assert ("".join(t for k, t in pieces if k == "reasoning"), "".join(t for k, t in pieces if k == "content")) == (
        "a b",
        "answer <b>",
    )
    assert split("thought\n</think>\n\nanswer", opened=True) == ("thought", "answer")
    assert split("no block at all") == ("", "no block at all")
    assert soft_switch([{"role": "user", "content": "hi /think"}]) == ([{"role": "user", "content": "hi"}], True)
    assert soft_switch([{"role": "user", "content": "a/b"}])[1] is None


def test_a_local_engine_hands_enable_thinking_to_the_chat_template():
    from konsilium.engines import SamplingParams
    from konsilium.engines.protocol import ChatViaTemplate
    from konsilium.structured.template import render

    class Tokenizer:  # the template call as transformers makes it
        chat_template = "{% if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>{% endif %}"

        def apply_chat_template(self, messages, chat_template=None, **kwargs):
            self.kwargs = kwargs
            return "prompt"

    class Local(ChatViaTemplate):  # rendering as the transformers and vllm engines do (without loading torch)
        tokenizer = Tokenizer()

        def apply_chat_template(self, messages, tools=None, **template_args):
            return render(self.tokenizer, messages, tools, None, **template_args)

    engine, messages = Local(), [{"role": "user", "content": "Hi"}]
    engine.render_chat_prompt(messages, SamplingParams(thinking=False))
    assert engine.tokenizer.kwargs["enable_thinking"] is False
    engine.render_chat_prompt(messages, SamplingParams())
    assert "enable_thinking" not in engine.tokenizer.kwargs  # unset: the template's own default


@pytest.fixture(scope="module")
def long_thinker():
    """A konsilium upstream whose fake reasons for 300 words (it has no prompt of its own to continue from, so it
    cannot hold a budget itself), and a front konsilium over it: (front client, upstream's engine)."""
    engine = FakeEngine(thinking_words=300, chunk_delay_s=0.002)
    with running_server(create_app(engine, model_id=MODEL)) as upstream:
        front_engine = OpenAIUpstreamEngine(f"{upstream}/v1", MODEL, timeout_s=60)
        with running_server(create_app(front_engine, model_id="front")) as url:
            yield openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=60), engine


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_thinking_budget_holds_through_an_upstream_and_the_answer_follows(long_thinker, stream):
    client, upstream = long_thinker
    budget = {"konsilium": {"thinking_budget": 30}}
    question = [{"role": "user", "content": "how far is the moon?"}]
    closed_early = upstream.streams_closed_early
    answer = client.chat.completions.create(model="front", messages=question, stream=stream, extra_body=budget)
    if stream:
        deltas = [c.choices[0].delta for c in answer if c.choices]
        reasoning = "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas)
        content = "".join(d.content or "" for d in deltas)
    else:
        reasoning, content = (
            answer.choices[0].message.model_extra["reasoning_content"],
            answer.choices[0].message.content,
        )
    thought = reasoning.split()
    assert thought == [f"t{i}" for i in range(len(thought))] and 3 < len(thought) <= 30  # cut, in order
    assert content == "[base] notes=0 system=no | how far is the moon?"  # the answer came after the cut
    assert upstream.streams_closed_early == closed_early + 1  # the long reasoning was not read to its end
    continued = upstream.last.messages[-1]  # the answer was asked for after the cut reasoning, closed
    assert continued["role"] == "assistant" and continued["content"].endswith(f"t{len(thought) - 1}\n</think>\n\n")
    whole = client.chat.completions.create(model="front", messages=question, max_tokens=400)  # no budget: all of it
    assert len(whole.choices[0].message.model_extra["reasoning_content"].split()) == 300
