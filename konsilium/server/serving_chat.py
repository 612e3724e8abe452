"""POST /v1/chat/completions: grounded in the vault by default, non-stream JSON and server-sent events.

The turn pipeline does the work (role, notes, prompt, generation, citations, log); this module speaks OpenAI's
chat shapes. `dual: true` answers twice, neutral first, each choice labelled with who answered; `dual: "sport@1"`
answers first as that model id instead (two versions of a role side by side: `model: "sport@2", dual: "sport@1"`).

Tools (`tools`, `tool_choice`, `parallel_tool_calls`) and `response_format` are checked and turned into what the
model is shown and what its text must be by `structured.request`; the answer's `tool_calls` come from the
pipeline, whole or as OpenAI's streamed deltas (the id and name first, then the arguments in pieces).
"""

from __future__ import annotations

import time
from dataclasses import replace

from fastapi.responses import Response
from starlette.requests import Request

from ..errors import ModelNotFoundError, RequestError
from ..pipeline import ReasoningDelta, TextDelta, ToolCallDelta, Turn, TurnEnd, TurnRequest
from ..roles.runtime import Resolution
from ..structured.request import structured_request
from .errors import APIError
from .protocol import (
    AssistantMessage,
    ChatCompletionChoice,
    ChatCompletionChunk,
    ChatCompletionChunkChoice,
    ChatCompletionRequest,
    ChatCompletionResponse,
    DeltaFunctionCall,
    DeltaMessage,
    DeltaToolCall,
    FunctionCall,
    ToolCall,
    Usage,
)
from .serving_base import ClosingStreamingResponse, OpenAIServing, dump, sse, usage


class OpenAIServingChat(OpenAIServing):
    async def create(self, request: ChatCompletionRequest, http_request: Request):
        if isinstance(request.konsilium, dict) and "tools" in request.konsilium:  # opt-in: the council's own tools
            from .serving_tasks import builtin_tools_answer

            return await builtin_tools_answer(self, request, http_request)
        self.refuse_unsupported(request)  # also: `konsilium` is an object of known options
        extra = request.konsilium or {}
        dual = dual_option(extra.get("dual", (request.model_extra or {}).get("dual", False)))
        if dual and request.stream:
            raise RequestError("dual answers are not streamed; send stream: false", param="dual")
        tool_use, constraint = structured_request(
            request.tools, request.tool_choice, request.parallel_tool_calls, request.response_format
        )
        params = self.sampling_params(request, request.max_completion_tokens or request.max_tokens, constraint)
        turn_request = TurnRequest(
            endpoint="chat.completions",
            model=request.model,
            params=replace(params, **thinking_options(extra, request.chat_template_kwargs)),
            messages=[message.as_turn_message() for message in request.messages],
            retrieval=extra.get("retrieval"),
            memory=memory_option(extra),
            client=request.user,
            tool_use=tool_use,
        )
        turn = await self.prepare(turn_request)
        if request.stream:
            include_usage = bool(request.stream_options and request.stream_options.include_usage)
            started = await self.start_stream(http_request, turn)
            return ClosingStreamingResponse(self._events(started, turn, include_usage), media_type="text/event-stream")
        turns = [turn]
        if dual is True:  # the neutral answer first, then the role's, side by side as two choices
            if turn.resolution.role is None:
                raise RequestError(
                    "dual needs a role: ask for a role's model id (or auto that picks one)", param="dual"
                )
            neutral = Resolution(self.pipeline.roles.base_model_id, None, None)
            turns.insert(0, await self.prepare(turn_request, neutral))
        elif dual:  # another model id first (its own record and prompt), e.g. the role's previous version
            try:
                turns.insert(0, await self.prepare(replace(turn_request, model=dual)))
            except ModelNotFoundError as exc:
                raise APIError(404, str(exc), code="model_not_found", param="dual") from exc
        results = [answers[0] for answers in await self.generate(http_request, turns)]
        choices = [
            ChatCompletionChoice(
                index=index,
                message=AssistantMessage(
                    content=result.content, reasoning_content=result.reasoning, tool_calls=tool_calls(result.tool_calls)
                ),
                finish_reason=result.finish_reason,
                role=_choice_role(each) if dual else None,
            )
            for index, (each, result) in enumerate(zip(turns, results, strict=True))
        ]
        response = ChatCompletionResponse(
            id=turn.record.id,
            model=request.model,
            choices=choices,
            usage=usage(sum(r.prompt_tokens for r in results), sum(r.completion_tokens for r in results)),
            sources=turn.sources_json() if turn.show_sources else None,
            memories=turn.memories_json() if turn.memories else None,
            role=turn.role_json(),
        )
        return Response(dump(response), media_type="application/json")

    def _events(self, started, turn: Turn, include_usage: bool):
        created, record = int(time.time()), turn.record
        role, sources = turn.role_json(), turn.sources_json() if turn.show_sources else None
        memories = turn.memories_json() if turn.memories else None

        def chunk(delta: DeltaMessage, finish_reason=None, **extra) -> str:
            body = ChatCompletionChunk(
                id=record.id,
                created=created,
                model=record.model,
                choices=[ChatCompletionChunkChoice(delta=delta, finish_reason=finish_reason)],
                **extra,
            )
            return sse(dump(body))

        def on_delta(event: TextDelta | ReasoningDelta | ToolCallDelta) -> str:
            if isinstance(event, ReasoningDelta):
                return chunk(DeltaMessage(reasoning_content=event.text))
            if isinstance(event, TextDelta):
                return chunk(DeltaMessage(content=event.text))
            function = DeltaFunctionCall(name=event.name, arguments=event.arguments)
            kind = "function" if event.id else None
            piece = DeltaToolCall(index=event.index, id=event.id, type=kind, function=function)
            return chunk(DeltaMessage(tool_calls=[piece]))

        def on_end(end: TurnEnd) -> str:
            content = None if end.tool_calls and not end.text else end.text
            extra = {"sources": sources, "memories": memories, "role": role}
            return chunk(DeltaMessage(content=content), end.finish_reason, **extra)

        def usage_event(counts: Usage) -> str:
            body = ChatCompletionChunk(
                id=record.id,
                created=created,
                model=record.model,
                choices=[],
                usage=counts,
                sources=sources,
                memories=memories,
                role=role,
            )
            return sse(dump(body))

        calls_possible = turn.request.tool_use is not None and turn.request.tool_use.active
        # OpenAI opens an answer that may be tool calls with `content: null`, a text answer with "".
        content = turn.opening or (None if calls_possible else "")
        opening = chunk(DeltaMessage(role="assistant", content=content), role=role)
        return self.relay(started, opening, on_delta, on_end, usage_event if include_usage else None)


def tool_calls(calls) -> list[ToolCall] | None:
    """An answer's calls (structured.hermes.ToolCall) in the response's shape; None when it made none."""
    if not calls:
        return None
    return [ToolCall(id=call.id, function=FunctionCall(name=call.name, arguments=call.arguments)) for call in calls]


def dual_option(value) -> bool | str:
    """`dual`: true (neutral first), false (or null), or the model id that answers first."""
    if value is None:
        return False
    if isinstance(value, bool) or (isinstance(value, str) and value.strip()):
        return value.strip() if isinstance(value, str) else value
    raise RequestError('dual must be true, false or a model id (e.g. "sport@1")', param="dual")


def thinking_options(extra: dict, template_kwargs: dict | None) -> dict:
    """`konsilium.thinking` / `thinking_budget`, or vLLM's `chat_template_kwargs.enable_thinking`, as sampling
    settings (absent: the soft switch, the role or the template decides)."""
    thinking = extra.get("thinking")
    if thinking is None and isinstance(template_kwargs, dict):
        thinking = template_kwargs.get("enable_thinking")
    if thinking is not None and not isinstance(thinking, bool):
        raise RequestError("konsilium.thinking must be true or false", param="konsilium.thinking")
    budget = extra.get("thinking_budget")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 1):
        raise RequestError(
            "konsilium.thinking_budget must be a whole number of tokens, at least 1", param="konsilium.thinking_budget"
        )
    return {"thinking": thinking, "thinking_budget": budget}


def memory_option(extra: dict) -> bool | None:
    """`konsilium.memory`: false keeps this exchange out of memory (none offered, nothing learned)."""
    value = extra.get("memory")
    if value is not None and not isinstance(value, bool):
        raise RequestError("konsilium.memory must be true or false", param="konsilium.memory")
    return value


def _choice_role(turn: Turn) -> dict:
    """Who gave this choice of a dual answer: the neutral base model or the role (`sport@1` for a version), with
    its label."""
    return turn.role_json() or {"id": None, "label": "neutral"}
