"""LangChain's `ChatOpenAI(...).bind_tools(...)` (the layer n8n's agent node is built on) against a real server:
the call comes back parsed in `AIMessage.tool_calls`, and a round with the tool's result gives the final answer.
The engine is the fake: it calls the first tool with the smallest valid arguments, then answers with the result."""

from __future__ import annotations

import pytest
from fake_engine import FakeEngine
from live_server import running_server

from konsilium.server import create_app

langchain_openai = pytest.importorskip("langchain_openai")
from langchain_core.messages import HumanMessage, ToolMessage  # noqa: E402
from langchain_core.tools import tool  # noqa: E402


@tool
def get_weather(city: str) -> str:
    """The weather in a city now."""
    return f"sunny in {city}"


def test_bind_tools_gets_a_parsed_call_and_a_final_answer_after_the_tool_message():
    engine = FakeEngine(context_length=4096)
    with running_server(create_app(engine, model_id="konsilium")) as url:
        chat = langchain_openai.ChatOpenAI(
            model="konsilium", base_url=f"{url}/v1", api_key="local", max_retries=0, timeout=30, temperature=0
        )
        agent = chat.bind_tools([get_weather])
        question = HumanMessage("What is the weather in Paris?")
        called = agent.invoke([question])
        (call,) = called.tool_calls
        assert call["name"] == "get_weather" and call["args"] == {"city": "x"} and call["id"].startswith("call_")
        assert [t["function"]["name"] for t in engine.last.tools] == ["get_weather"]
        result = get_weather.invoke(call["args"])
        answer = agent.invoke([question, called, ToolMessage(result, tool_call_id=call["id"])])
        assert not answer.tool_calls and answer.content.endswith("tool: sunny in x")
        assert engine.last.messages[-1] == {"role": "tool", "tool_call_id": call["id"], "content": "sunny in x"}
        # Streamed, LangChain puts the call together from OpenAI's deltas the same way.
        chunks = list(agent.stream([question]))
        streamed = sum(chunks[1:], chunks[0])
        assert [(c["name"], c["args"]) for c in streamed.tool_calls] == [("get_weather", {"city": "x"})]
