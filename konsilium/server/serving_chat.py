"""POST /v1/chat/completions: grounded in the vault by default, non-stream JSON and server-sent events.

Engine calls block (a forward pass at a time), so they run in worker threads. A stream holds an engine slot
until it ends or is closed, so the token iterator is always closed: at the end, on an error, and when the client
goes away. The exchange is committed to the conversation log before the last event (or the JSON body) is sent.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator

from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ..engines import GenerationChunk, SamplingParams
from ..grounding import Answerer, ContextLengthExceeded, PreparedChat, UnknownCollectionError
from ..memory import Exchange
from .errors import APIError
from .protocol import (
    AssistantMessage,
    ChatCompletionChoice,
    ChatCompletionChunk,
    ChatCompletionChunkChoice,
    ChatCompletionRequest,
    ChatCompletionResponse,
    DeltaMessage,
    ErrorDetail,
    ErrorResponse,
    Usage,
)
from .streaming import ClosingStreamingResponse, relay


class OpenAIServingChat:
    def __init__(self, answerer: Answerer, model_id: str):
        self.answerer, self.engine, self.model_id = answerer, answerer.engine, model_id

    async def create(self, request: ChatCompletionRequest):
        arrived = time.time()
        if request.model != self.model_id:
            raise APIError(404, f"The model '{request.model}' does not exist.", code="model_not_found", param="model")
        params = sampling_params(request)
        options = self._retrieval_options(request)
        messages = [{"role": message.role, "content": message.text()} for message in request.messages]
        prepared = await run_in_threadpool(self._prepare, messages, params, options)
        record = Exchange(
            id=f"chatcmpl-{uuid.uuid4().hex}",
            time=arrived,
            endpoint="chat.completions",
            model=request.model,
            role=None,
            messages=messages,
            response="",
            finish_reason=None,
            sources=prepared.sources_json(),
            client=request.user,
            timings={"retrieval_ms": round(prepared.retrieval_ms, 2)},
        )
        show_sources = options.enabled and self.answerer.knowledge is not None
        if request.stream:
            include_usage = bool(request.stream_options and request.stream_options.include_usage)
            tokens = await run_in_threadpool(self._start_stream, prepared, params)
            events = self._events(tokens, prepared, record, include_usage, show_sources)
            return ClosingStreamingResponse(events, media_type="text/event-stream")
        try:
            result = await run_in_threadpool(self.engine.generate_chat, prepared.messages, params)
        except ValueError as exc:
            raise APIError(400, str(exc)) from exc
        content = result.text + prepared.tail()
        record.response, record.finish_reason = content, result.finish_reason
        record.prompt_tokens, record.completion_tokens = result.prompt_tokens, result.completion_tokens
        record.timings["total_ms"] = round((time.time() - arrived) * 1000, 2)
        await run_in_threadpool(self.answerer.record, record)
        response = ChatCompletionResponse(
            id=record.id,
            model=self.model_id,
            choices=[
                ChatCompletionChoice(message=AssistantMessage(content=content), finish_reason=result.finish_reason)
            ],
            usage=usage(result.prompt_tokens, result.completion_tokens),
        )
        if show_sources:
            response.sources = prepared.sources_json()
        return Response(dump(response), media_type="application/json")

    # --- preparing -----------------------------------------------------------------------------------------

    def _retrieval_options(self, request: ChatCompletionRequest):
        extra = request.konsilium or {}
        if not isinstance(extra, dict):
            raise APIError(400, 'konsilium must be an object, e.g. {"retrieval": false}', param="konsilium")
        try:
            return self.answerer.retrieval_options(extra.get("retrieval"))
        except ValueError as exc:
            raise APIError(400, str(exc), param="konsilium.retrieval") from exc

    def _prepare(self, messages, params, options) -> PreparedChat:
        try:
            return self.answerer.prepare_chat(messages, params, options)
        except ContextLengthExceeded as exc:
            raise APIError(400, str(exc), code="context_length_exceeded", param="messages") from exc
        except UnknownCollectionError as exc:
            raise APIError(400, str(exc), code="collection_not_found", param="konsilium.retrieval") from exc
        except ValueError as exc:  # e.g. a chat template that rejects this order of roles
            raise APIError(400, f"the messages cannot be used with this model: {exc}", param="messages") from exc

    def _start_stream(self, prepared: PreparedChat, params: SamplingParams) -> Iterator[GenerationChunk]:
        try:
            return self.engine.stream_chat(prepared.messages, params)
        except ValueError as exc:
            raise APIError(400, str(exc)) from exc

    # --- streaming -----------------------------------------------------------------------------------------

    async def _events(
        self,
        tokens: Iterator[GenerationChunk],
        prepared: PreparedChat,
        record: Exchange,
        include_usage: bool,
        show_sources: bool,
    ) -> AsyncIterator[str]:
        created = int(time.time())

        def chunk(delta: DeltaMessage, finish_reason=None, sources=None) -> str:
            body = ChatCompletionChunk(
                id=record.id,
                created=created,
                model=self.model_id,
                choices=[ChatCompletionChunkChoice(delta=delta, finish_reason=finish_reason)],
                sources=sources,
            )
            return sse(dump(body))

        opening = chunk(DeltaMessage(role="assistant", content=""))
        async for item in relay(tokens, record, self.answerer, opening):
            if isinstance(item, str):
                yield item
                continue
            if isinstance(item, Exception):
                yield sse(ErrorResponse(error=ErrorDetail(message=record.error, type="server_error")).model_dump_json())
                yield sse("[DONE]")
                return
            if item.finish_reason is None:
                yield chunk(DeltaMessage(content=item.text))
                continue
            final_text = item.text + prepared.tail()
        record.response += prepared.tail()
        await run_in_threadpool(self.answerer.record, record)  # durable before the client sees the end
        sources = prepared.sources_json() if show_sources else None
        yield chunk(DeltaMessage(content=final_text), record.finish_reason, sources=sources)
        if include_usage:
            body = ChatCompletionChunk(
                id=record.id,
                created=created,
                model=self.model_id,
                choices=[],
                usage=usage(record.prompt_tokens, record.completion_tokens),
                sources=sources,
            )
            yield sse(dump(body))
        yield sse("[DONE]")


def dump(body) -> str:
    """JSON as OpenAI sends it (nulls included), without our `sources` where there are none."""
    return body.model_dump_json(exclude={"sources"} if getattr(body, "sources", None) is None else None)


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
