"""Chat messages with tools, tool calls and tool results, rendered through the model's own chat template.

Templates that know tools (Qwen2.5/3, SmolLM2-1.7B, Llama 3.1, Hermes: their source mentions `tools`) get the tool
definitions as `tools=` and the messages as transformers expects them (a call's arguments as an object). A template
that knows none (the embedded SmolLM2-135M's, the ChatML fallback) gets them the way Qwen2.5's template writes
them, which is what our `hermes` reader and grammar expect: the tools as a `# Tools` block in the system message,
an assistant's calls as `<tool_call>` blocks in its text, and tool results as a user turn of `<tool_response>`
blocks. `developer` messages are system messages to every template.
"""

from __future__ import annotations

import json

from .hermes import END, START

TOOLS_PROMPT = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{tools}\n</tools>\n\n"
    "For each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{{"name": <function-name>, "arguments": <args-json-object>}}\n</tool_call>'
)


def knows_tools(template: str | None) -> bool:
    """Whether a chat template renders tools and tool calls itself."""
    return bool(template) and "tools" in template and "tool_call" in template


def render(
    tokenizer, messages: list[dict], tools: list[dict] | None = None, template: str | None = None, **template_args
) -> str:
    """The prompt for `messages` (and `tools`), ending where the assistant speaks. `template`: a template to use
    instead of the tokenizer's own (None: its own); `template_args` reach it (enable_thinking)."""
    native = knows_tools(template or getattr(tokenizer, "chat_template", None))
    messages = native_messages(messages) if native else hermes_messages(messages, tools)
    extra = {**template_args, **({"tools": list(tools)} if tools and native else {})}
    return tokenizer.apply_chat_template(
        messages, chat_template=template, tokenize=False, add_generation_prompt=True, **extra
    )


def native_messages(messages: list[dict]) -> list[dict]:
    """Messages as transformers' templates take them: arguments as objects, no None content."""
    out = []
    for message in messages:
        message = _plain(message)
        if message.get("tool_calls"):
            message["tool_calls"] = [
                {"type": "function", "id": call.get("id"), "function": {**call["function"], "arguments": _object(call)}}
                for call in message["tool_calls"]
            ]
        out.append(message)
    return out


def hermes_messages(messages: list[dict], tools: list[dict] | None) -> list[dict]:
    """Messages for a template that knows no tools: calls and results as text, the tools in the system message."""
    out: list[dict] = []
    for message in messages:
        message = _plain(message)
        if message["role"] == "tool":
            block = f"<tool_response>\n{message['content']}\n</tool_response>"
            if out and out[-1].get("_results"):  # consecutive results share one user turn
                out[-1]["content"] += "\n" + block
            else:
                out.append({"role": "user", "content": block, "_results": True})
            continue
        calls = message.pop("tool_calls", None)
        if calls:
            blocks = "\n".join(call_text(call["function"]["name"], _object(call)) for call in calls)
            message["content"] = f"{message['content']}\n{blocks}" if message["content"] else blocks
        message.pop("tool_call_id", None)
        out.append(message)
    for message in out:
        message.pop("_results", None)
    if tools:
        listing = "\n".join(json.dumps(tool, ensure_ascii=False) for tool in tools)
        prompt = TOOLS_PROMPT.format(tools=listing)
        if out and out[0]["role"] == "system":
            out[0] = {**out[0], "content": f"{out[0]['content']}\n\n{prompt}" if out[0]["content"] else prompt}
        else:
            out.insert(0, {"role": "system", "content": prompt})
    return out


def call_text(name: str, arguments) -> str:
    """One call as the model writes it (and as the grammar makes it write it)."""
    body = json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)
    return f"{START}\n{body}\n{END}"


def _plain(message: dict) -> dict:
    message = dict(message)
    if message.get("role") == "developer":
        message["role"] = "system"
    content = message.get("content")
    message["content"] = "" if content is None else content
    return message


def _object(call: dict):
    """A call's arguments as an object (templates dump them again); the text itself if it is not JSON."""
    arguments = call.get("function", {}).get("arguments")
    if not isinstance(arguments, str):
        return arguments if arguments is not None else {}
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments
