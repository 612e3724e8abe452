"""POST /v1/chat/completions: grounded in the vault by default, non-stream JSON and server-sent events.

Engine calls block (a forward pass at a time), so they run in worker threads. A stream holds an engine slot
until it ends or is closed, so the token iterator is always closed: at the end, on an error, and when the client
goes away. The exchange is committed to the conversation log before the last event (or the JSON body) is sent.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ..engines import GenerationChunk, SamplingParams
from ..grounding import Answerer, ContextLengthExceeded, PreparedChat, UnknownCollectionError
from ..grounding.context import retrieval_query
from ..memory import Exchange
from ..roles.guard import disclaimer, with_role_prompt
from ..roles.runtime import Resolution, RoleService
from .errors import APIError
from .protocol import (
    AssistantMessage,
    ChatCompletionChoice,
    ChatCompletionChunk,
    ChatCompletionChunkChoice,
    ChatCompletionRequest,
    ChatCompletionResponse,
    DeltaMessage,
    Usage,
)
from .role_access import resolve_model, start_held, using_role, with_adapter
from .streaming import ClosingStreamingResponse, error_events, relay


@dataclass
class Turn:
    """One answer being made: who answers (role, engine, adapter), from what prompt, and its log record."""

    resolution: Resolution
    prepared: PreparedChat
    params: SamplingParams
    record: Exchange
    show_sources: bool
    opening: str  # text the answer starts with (an alternative view's label)


class OpenAIServingChat:
    def __init__(self, answerer: Answerer, model_id: str, roles: RoleService | None = None):
        self.answerer, self.engine, self.model_id = answerer, answerer.engine, model_id
        self.roles = roles or RoleService(answerer.engine, base_model_id=model_id)

    async def create(self, request: ChatCompletionRequest):
        arrived = time.time()
        messages = [{"role": message.role, "content": message.text()} for message in request.messages]
        extra = request.konsilium or {}
        if not isinstance(extra, dict):
            raise APIError(400, 'konsilium must be an object, e.g. {"retrieval": false}', param="konsilium")
        dual = bool(extra.get("dual", getattr(request, "dual", False)))
        resolution = await run_in_threadpool(self._resolve, request.model, retrieval_query(messages))
        if dual and request.stream:
            raise APIError(400, "dual answers are not streamed; send stream: false", param="dual")
        turn = await self._turn(request, extra, messages, resolution, arrived)
        if request.stream:
            include_usage = bool(request.stream_options and request.stream_options.include_usage)
            tokens = await run_in_threadpool(self._start_stream, turn)
            return ClosingStreamingResponse(self._events(tokens, turn, include_usage), media_type="text/event-stream")
        answers = [turn]
        if dual:  # the neutral answer first, then the role's, side by side as two choices
            if resolution.role is None:
                raise APIError(400, "dual needs a role: ask for a role's model id (or auto that picks one)")
            neutral = Resolution(self.model_id, None, None, engine=self.engine)
            answers.insert(0, await self._turn(request, extra, messages, neutral, arrived))
        results = [await run_in_threadpool(self._generate, answer) for answer in answers]
        choices = []
        for index, (answer, result) in enumerate(zip(answers, results, strict=True)):
            content = answer.opening + result.text + answer.prepared.tail()
            record = answer.record
            record.response, record.finish_reason = content, result.finish_reason
            record.prompt_tokens, record.completion_tokens = result.prompt_tokens, result.completion_tokens
            record.timings["total_ms"] = round((time.time() - arrived) * 1000, 2)
            await run_in_threadpool(self.answerer.record, record)
            choices.append(
                ChatCompletionChoice(
                    index=index, message=AssistantMessage(content=content), finish_reason=result.finish_reason
                )
            )
        response = ChatCompletionResponse(
            id=turn.record.id,
            model=request.model,
            choices=choices,
            usage=usage(sum(r.prompt_tokens for r in results), sum(r.completion_tokens for r in results)),
        )
        if turn.show_sources:
            response.sources = turn.prepared.sources_json()
        response.role = _role_json(turn.resolution)
        return Response(dump(response), media_type="application/json")

    # --- preparing -----------------------------------------------------------------------------------------

    def _resolve(self, model: str, query: str) -> Resolution:
        return resolve_model(self.roles, model, query)

    async def _turn(self, request, extra: dict, messages: list[dict], resolution: Resolution, arrived: float) -> Turn:
        role = resolution.role
        params = sampling_params(request)
        params = with_adapter(self.roles, resolution, params)
        try:
            options = self.answerer.retrieval_options(extra.get("retrieval")).within(role.retrieval if role else None)
        except ValueError as exc:
            raise APIError(400, str(exc), param="konsilium.retrieval") from exc
        prompt = with_role_prompt(messages, role)
        prepared = await run_in_threadpool(self._prepare, prompt, params, options)
        record = Exchange(
            id=f"chatcmpl-{uuid.uuid4().hex}",
            time=arrived,
            endpoint="chat.completions",
            model=request.model,
            role=resolution.role_id,
            messages=messages,
            response="",
            finish_reason=None,
            sources=prepared.sources_json(),
            client=request.user,
            timings={"retrieval_ms": round(prepared.retrieval_ms, 2)},
        )
        if resolution.route is not None:
            record.timings["route_score"] = round(resolution.route.score, 4)
        show_sources = options.enabled and self.answerer.knowledge is not None
        return Turn(resolution, prepared, params, record, show_sources, disclaimer(role))

    def _prepare(self, messages, params, options) -> PreparedChat:
        try:
            return self.answerer.prepare_chat(messages, params, options)
        except ContextLengthExceeded as exc:
            raise APIError(400, str(exc), code="context_length_exceeded", param="messages") from exc
        except UnknownCollectionError as exc:
            raise APIError(400, str(exc), code="collection_not_found", param="konsilium.retrieval") from exc
        except ValueError as exc:  # e.g. a chat template that rejects this order of roles
            raise APIError(400, f"the messages cannot be used with this model: {exc}", param="messages") from exc

    def _generate(self, turn: Turn):
        try:
            with self._using(turn.resolution):
                return turn.resolution.engine.generate_chat(turn.prepared.messages, turn.params)
        except ValueError as exc:
            raise APIError(400, str(exc)) from exc

    def _start_stream(self, turn: Turn) -> Iterator[GenerationChunk]:
        engine = turn.resolution.engine
        return start_held(
            self.roles, turn.resolution, lambda: engine.stream_chat(turn.prepared.messages, turn.params), None
        )

    def _using(self, resolution: Resolution):
        return using_role(self.roles, resolution)

    async def _events(self, tokens: Iterator[GenerationChunk], turn: Turn, include_usage: bool) -> AsyncIterator[str]:
        created, record, prepared = int(time.time()), turn.record, turn.prepared
        role = _role_json(turn.resolution)

        def chunk(delta: DeltaMessage, finish_reason=None, **extra) -> str:
            body = ChatCompletionChunk(
                id=record.id,
                created=created,
                model=record.model,
                choices=[ChatCompletionChunkChoice(delta=delta, finish_reason=finish_reason)],
                **extra,
            )
            return sse(dump(body))

        opening = chunk(DeltaMessage(role="assistant", content=turn.opening), role=role)
        async for item in relay(tokens, record, self.answerer, opening):
            if isinstance(item, str):
                yield item
                continue
            if isinstance(item, Exception):
                for event in error_events(record.error):
                    yield event
                return
            if item.finish_reason is None:
                yield chunk(DeltaMessage(content=item.text))
                continue
            final_text = item.text + prepared.tail()
        record.response = turn.opening + record.response + prepared.tail()
        await run_in_threadpool(self.answerer.record, record)  # durable before the client sees the end
        sources = prepared.sources_json() if turn.show_sources else None
        yield chunk(DeltaMessage(content=final_text), record.finish_reason, sources=sources, role=role)
        if include_usage:
            body = ChatCompletionChunk(
                id=record.id,
                created=created,
                model=record.model,
                choices=[],
                usage=usage(record.prompt_tokens, record.completion_tokens),
                sources=sources,
                role=role,
            )
            yield sse(dump(body))
        yield sse("[DONE]")


def _role_json(resolution: Resolution) -> dict | None:
    if resolution.role is None and resolution.route is None:
        return None
    body = {"id": resolution.role_id, "label": resolution.role.label if resolution.role else "neutral"}
    if resolution.route is not None:
        body["routing"] = resolution.route.to_json()
    return body

    # --- streaming -----------------------------------------------------------------------------------------


def dump(body) -> str:
    """JSON as OpenAI sends it (nulls included), without our own fields (`sources`, `role`) where unset."""
    empty = {name for name in ("sources", "role") if name in type(body).model_fields and getattr(body, name) is None}
    return body.model_dump_json(exclude=empty or None)


def sampling_params(request) -> SamplingParams:
    try:
        return SamplingParams(
            max_tokens=getattr(request, "max_completion_tokens", None) or request.max_tokens,
            temperature=1.0 if request.temperature is None else request.temperature,
            top_p=1.0 if request.top_p is None else request.top_p,
            stop=request.stop_list(),
            seed=request.seed,
        )
    except ValueError as exc:
        raise APIError(400, str(exc)) from exc


def sse(data: str) -> str:
    return f"data: {data}\n\n"


def usage(prompt_tokens: int, completion_tokens: int) -> Usage:
    return Usage(
        prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, total_tokens=prompt_tokens + completion_tokens
    )
