"""POST /v1/responses: OpenAI's Responses API over the same turn pipeline as chat completions.

A request becomes the `TurnRequest` a chat request would: `instructions` is a system message first,
`previous_response_id` puts the logged exchange (its messages, then its answer and calls) before the new `input`,
`input` items (messages, `function_call`, `function_call_output`) become chat messages, the flat function tools,
`tool_choice` and `text.format` become chat's `tools`, `tool_choice` and `response_format` and are checked by
`structured.request`. The answer comes back as output items (a `reasoning` item with the model's `<think>` text
as `reasoning_text` first, as vLLM and OpenAI give it, then a `message` with `output_text`, `function_call`s), whole
or as the Responses API's named stream events (`response.created` … `response.completed`; the reasoning as
`response.reasoning_text.delta` / `.done`), each with its `sequence_number`. Reasoning items sent back in `input`
are taken and dropped: a past turn's reasoning is not shown to the model again (Qwen3's template drops it too).
The response id is the logged exchange's id, so a later `previous_response_id` finds it.
"""

from __future__ import annotations

import json
import time
import uuid

from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from ..errors import RequestError
from ..pipeline import ReasoningDelta, TextDelta, ToolCallDelta, Turn, TurnEnd, TurnRequest
from ..structured.request import structured_request
from .errors import APIError
from .protocol import ResponsesRequest
from .serving_base import KONSILIUM_KEYS, ClosingStreamingResponse, OpenAIServing
from .serving_chat import memory_option

# Fields of the Responses API taken without effect: they do not change what the answer is. `include` asks for extra
# output fields we do not produce; `reasoning` (effort) is sent by reasoning-aware clients such as n8n's node and
# has nothing to steer until thinking control lands (the vLLM issue): refusing it would break those clients.
IGNORED = (
    "service_tier",
    "prompt_cache_key",
    "safety_identifier",
    "stream_options",
    "truncation",
    "user",
    "include",
    "reasoning",
)
ROLES = ("system", "developer", "user", "assistant")
TEXT_PARTS = ("input_text", "output_text", "text")


class OpenAIServingResponses(OpenAIServing):
    async def create(self, request: ResponsesRequest, http_request: Request):
        refuse_unknown(request)
        extra = request.konsilium or {}
        response_format = text_format(request.text)
        tool_use, constraint = structured_request(
            flat_tools(request.tools),
            chat_tool_choice(request.tool_choice),
            request.parallel_tool_calls,
            response_format,
        )
        previous = await run_in_threadpool(self._previous, request.previous_response_id)
        if request.instructions:  # they replace the earlier response's (OpenAI carries none over)
            previous = [m for m in previous if m["role"] not in ("system", "developer")]
            previous.insert(0, {"role": "system", "content": request.instructions})
        messages = [*previous, *input_messages(request.input)]
        if not messages:
            raise RequestError("input must hold at least one message", param="input")
        turn_request = TurnRequest(
            endpoint="responses",
            model=request.model,
            params=self.sampling_params(request, request.max_output_tokens, constraint),
            messages=messages,
            retrieval=extra.get("retrieval"),
            memory=memory_option(extra),
            client=request.user,
            tool_use=tool_use,
        )
        turn = await self.prepare(turn_request)
        shape = Shape(request, turn, self.pipeline.engine.count_tokens)
        if request.stream:
            started = await self.start_stream(http_request, turn)
            return ClosingStreamingResponse(shape.events(self, started), media_type="text/event-stream")
        [[result]] = await self.generate(http_request, [turn])
        output = [reasoning_item(f"rs_{uuid.uuid4().hex}", result.reasoning, "completed")] if result.reasoning else []
        if result.content is not None or not result.tool_calls:
            output.append(message_item(f"msg_{uuid.uuid4().hex}", result.content or "", "completed"))
        output += [call_item(call.id, call.name, call.arguments, "completed") for call in result.tool_calls]
        body = shape.response(output, result.finish_reason, result.prompt_tokens, result.completion_tokens)
        return JSONResponse(body)

    def _previous(self, response_id: str | None) -> list[dict]:
        """The earlier exchange's messages, then its answer (text, calls), as chat messages."""
        if response_id is None:
            return []
        log = self.pipeline.log
        exchange = log.get(response_id) if log is not None else None
        if exchange is None:
            raise APIError(
                404,
                f"No response with id {response_id!r} in the conversation log",
                code="previous_response_not_found",
                param="previous_response_id",
            )
        answer: dict = {"role": "assistant", "content": exchange.response}
        if exchange.tool_calls:
            answer = {"role": "assistant", "content": None, "tool_calls": exchange.tool_calls}
        return [*exchange.messages, answer]


def refuse_unknown(request: ResponsesRequest) -> None:
    """Fields this endpoint does not implement are refused by name (empty values ask for nothing: they pass)."""
    for name, value in (request.model_extra or {}).items():
        if name in IGNORED or value in (None, [], {}, False):
            continue
        raise RequestError(
            f"{name} is not supported by /v1/responses; send the request without it",
            param=name,
            code="unsupported_parameter",
        )
    options = request.konsilium
    for key in options or {}:
        if key not in ("retrieval", "memory"):
            known = ", ".join(k for k in KONSILIUM_KEYS if k != "dual")
            raise RequestError(
                f"konsilium.{key} is not a konsilium option here; known: {known}",
                param=f"konsilium.{key}",
                code="unsupported_parameter",
            )


def text_format(text: dict | None) -> dict | None:
    """`text.format` as chat's `response_format`."""
    fmt = (text or {}).get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict):
        raise RequestError("text.format must be an object", param="text.format")
    if fmt.get("type") == "json_schema":
        inner = {key: fmt[key] for key in ("name", "schema", "strict", "description") if key in fmt}
        return {"type": "json_schema", "json_schema": inner}
    return fmt


def flat_tools(tools):
    """Responses' flat function tools ({type, name, parameters, …}) in chat's shape; anything else as it came, for
    `structured.request` to refuse by name."""
    if not isinstance(tools, list):
        return tools
    out = []
    for tool in tools:
        if isinstance(tool, dict) and tool.get("type") == "function" and "function" not in tool:
            fields = ("name", "description", "parameters", "strict")
            tool = {"type": "function", "function": {key: tool[key] for key in fields if tool.get(key) is not None}}
        out.append(tool)
    return out


def chat_tool_choice(choice):
    if isinstance(choice, dict) and choice.get("type") == "function" and "function" not in choice:
        return {"type": "function", "function": {"name": choice.get("name")}}
    return choice


def input_messages(raw) -> list[dict]:
    """`input` as chat messages: a string is one user message; items are messages, calls and call results."""
    if isinstance(raw, str):
        return [{"role": "user", "content": raw}]
    messages: list[dict] = []
    names: dict[str, str] = {}
    for index, item in enumerate(raw):
        where = f"input[{index}]"
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in ROLES:
                raise RequestError(f"{where}.role must be one of {', '.join(ROLES)}", param=f"{where}.role")
            messages.append({"role": role, "content": content_text(item.get("content"), f"{where}.content")})
        elif kind == "function_call":
            call_id, name, arguments = item.get("call_id"), item.get("name"), item.get("arguments", "{}")
            if not isinstance(call_id, str) or not isinstance(name, str):
                raise RequestError(f"{where} needs call_id and name", param=where)
            if not isinstance(arguments, str):
                arguments = json.dumps(arguments, ensure_ascii=False)
            names[call_id] = name
            call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":  # the calls go with the answer they came with
                last.setdefault("tool_calls", []).append(call)
                last["content"] = last["content"] or None
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "reasoning":  # a client managing its own context sends our reasoning items back
            continue
        elif kind == "function_call_output":
            call_id = item.get("call_id")
            if not isinstance(call_id, str):
                raise RequestError(
                    f"{where}.call_id must name the call this is the result of", param=f"{where}.call_id"
                )
            output = item.get("output")
            text = output if isinstance(output, str) else content_text(output, f"{where}.output")
            message = {"role": "tool", "tool_call_id": call_id, "content": text}
            if call_id in names:
                message["name"] = names[call_id]
            messages.append(message)
        else:
            raise RequestError(
                f"{where}.type {kind!r} is not supported: send message, function_call, function_call_output or "
                "reasoning items",
                param=f"{where}.type",
                code="unsupported_parameter",
            )
    return messages


def content_text(content, where: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise RequestError(f"{where} must be a string or a list of input_text parts", param=where)
    parts = []
    for index, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") not in TEXT_PARTS or not isinstance(part.get("text"), str):
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise RequestError(
                f"{where}[{index}] must be an input_text part (only text is taken, not {kind!r})",
                param=f"{where}[{index}]",
            )
        parts.append(part["text"])
    return "".join(parts)


def message_item(item_id: str, text: str, status: str) -> dict:
    content = (
        [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}] if status == "completed" else []
    )
    return {"type": "message", "id": item_id, "status": status, "role": "assistant", "content": content}


def reasoning_item(item_id: str, text: str, status: str) -> dict:
    """vLLM's shape: the text as one `reasoning_text` part, no summary (nothing summarizes it)."""
    content = [{"type": "reasoning_text", "text": text}] if status == "completed" else []
    return {"type": "reasoning", "id": item_id, "summary": [], "content": content, "status": status}


def call_item(call_id: str, name: str, arguments: str, status: str) -> dict:
    item_id = f"fc_{call_id.removeprefix('call_')}"
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


class Shape:
    """The response object of one turn, whole or built up by stream events."""

    def __init__(self, request: ResponsesRequest, turn: Turn, count_tokens=None):
        self.request, self.turn, self.created = request, turn, time.time()
        self.count_tokens = count_tokens  # the engine's tokenizer: how many output tokens were reasoning

    def reasoning_tokens(self, output: list[dict], completion_tokens: int) -> int:
        texts = [part.get("text", "") for item in output if item.get("type") == "reasoning" for part in item["content"]]
        if not texts or self.count_tokens is None:
            return 0
        return min(completion_tokens, sum(self.count_tokens(text) for text in texts if text))

    def response(self, output: list[dict], finish_reason: str | None, prompt_tokens: int, completion_tokens: int):
        turn, request = self.turn, self.request
        cut = finish_reason == "length"
        status = "in_progress" if finish_reason is None else "incomplete" if cut else "completed"
        body = {
            "id": turn.record.id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if cut else None,
            "instructions": request.instructions,
            "max_output_tokens": request.max_output_tokens,
            "model": request.model,
            "output": output,
            "parallel_tool_calls": request.parallel_tool_calls is not False,
            "previous_response_id": request.previous_response_id,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "tool_choice": request.tool_choice or "auto",
            "tools": request.tools or [],
            "text": request.text or {"format": {"type": "text"}},
            "metadata": request.metadata or {},
            "store": True,
            "usage": None
            if finish_reason is None
            else {
                "input_tokens": prompt_tokens,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": completion_tokens,
                "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens(output, completion_tokens)},
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        if turn.show_sources:
            body["sources"] = turn.sources_json()
        if turn.memories:
            body["memories"] = turn.memories_json()
        role = turn.role_json()
        if role is not None:
            body["role"] = role
        return body

    def events(self, serving: OpenAIServing, started):
        """The stream: created, in_progress, each item added / its deltas / done, then completed (or incomplete)."""
        state = _Events(self)
        first = state.event("response.created", response=self.response([], None, 0, 0))
        first += state.event("response.in_progress", response=self.response([], None, 0, 0))
        state.opening = self.turn.opening or ""  # goes out with the message, after any reasoning
        return serving.relay(started, first, state.delta, state.end, on_error=state.error, done=False)


class _Events:
    def __init__(self, shape: Shape):
        self.shape = shape
        self.sequence = 0
        self.output: list[dict] = []
        self.message: dict | None = None  # the message item while it is open, with its text so far
        self.reasoning: dict | None = None  # the reasoning item while it is open, with its text so far
        self.calls: dict[int, dict] = {}  # a call's index in the answer -> its item
        self.done: dict[str, dict] = {}  # an item's id -> the item as completed (reasoning, once the answer starts)
        self.opening = ""  # the role's opening note, not yet sent

    def event(self, kind: str, **fields) -> str:
        body = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return f"event: {kind}\ndata: {json.dumps(body, ensure_ascii=False)}\n\n"

    def text(self, text: str) -> str:
        out = self.close_reasoning()
        if self.message is None:
            text, self.opening = self.opening + text, ""
            self.message = message_item(f"msg_{uuid.uuid4().hex}", "", "in_progress")
            self.message["text"] = ""
            self.output.append(self.message)
            item = {key: value for key, value in self.message.items() if key != "text"}
            out += self.event("response.output_item.added", output_index=len(self.output) - 1, item=item)
            part = {"type": "output_text", "text": "", "annotations": []}
            out += self.event("response.content_part.added", **self._at(self.message), part=part)
        self.message["text"] += text
        return out + self.event("response.output_text.delta", **self._at(self.message), delta=text, logprobs=[])

    def think(self, text: str) -> str:
        out = ""
        if self.reasoning is None:
            self.reasoning = reasoning_item(f"rs_{uuid.uuid4().hex}", "", "in_progress") | {"text": ""}
            self.output.append(self.reasoning)
            item = {key: value for key, value in self.reasoning.items() if key != "text"}
            out += self.event("response.output_item.added", output_index=len(self.output) - 1, item=item)
            part = {"type": "reasoning_text", "text": ""}
            out += self.event("response.content_part.added", **self._at(self.reasoning), part=part)
        self.reasoning["text"] += text
        return out + self.event("response.reasoning_text.delta", **self._at(self.reasoning), delta=text)

    def close_reasoning(self) -> str:
        """The reasoning's done events, once the answer (text or a call) begins or the turn ends."""
        item, self.reasoning = self.reasoning, None
        if item is None:
            return ""
        text, where = item["text"], self._at(item)
        out = self.event("response.reasoning_text.done", **where, text=text)
        out += self.event("response.content_part.done", **where, part={"type": "reasoning_text", "text": text})
        self.done[item["id"]] = reasoning_item(item["id"], text, "completed")
        return out + self.event(
            "response.output_item.done", output_index=where["output_index"], item=self.done[item["id"]]
        )

    def _at(self, item: dict) -> dict:
        return {"item_id": item["id"], "output_index": self.output.index(item), "content_index": 0}

    def delta(self, event: TextDelta | ReasoningDelta | ToolCallDelta) -> str:
        if isinstance(event, ReasoningDelta):
            return self.think(event.text) if event.text else ""
        if isinstance(event, TextDelta):
            return self.text(event.text) if event.text else ""
        out = self.text("") if self.opening else self.close_reasoning()  # the opening goes beside the calls
        if event.index not in self.calls:
            item = call_item(event.id or f"call_{uuid.uuid4().hex}", event.name or "", "", "in_progress")
            self.calls[event.index] = item
            self.output.append(item)
            out += self.event("response.output_item.added", output_index=len(self.output) - 1, item=dict(item))
        item = self.calls[event.index]
        if event.arguments:
            item["arguments"] += event.arguments
            where = {"item_id": item["id"], "output_index": self.output.index(item)}
            out += self.event("response.function_call_arguments.delta", **where, delta=event.arguments)
        return out

    def end(self, end: TurnEnd) -> str:
        answered = self.message is not None or self.calls
        out = self.close_reasoning()
        if end.text or self.opening or not answered:
            out += self.text(end.text)
        done = []
        for index, item in enumerate(self.output):
            if item["id"] in self.done:  # closed when the answer began
                done.append(self.done[item["id"]])
                continue
            if item is self.message:
                text = item.pop("text")
                part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
                where = {"item_id": item["id"], "output_index": index, "content_index": 0}
                out += self.event("response.output_text.done", **where, text=text, logprobs=[])
                out += self.event("response.content_part.done", **where, part=part)
                item = message_item(item["id"], text, "completed")
            else:
                where = {"item_id": item["id"], "output_index": index}
                out += self.event(
                    "response.function_call_arguments.done", **where, name=item["name"], arguments=item["arguments"]
                )
                item = {**item, "status": "completed"}
            out += self.event("response.output_item.done", output_index=index, item=item)
            done.append(item)
        body = self.shape.response(done, end.finish_reason, end.prompt_tokens, end.completion_tokens)
        kind = "response.incomplete" if body["status"] == "incomplete" else "response.completed"
        return out + self.event(kind, response=body)

    def error(self, message: str) -> list[str]:
        return [self.event("error", code="server_error", message=message, param=None)]
