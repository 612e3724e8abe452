"""POST /v1/chat/completions on one engine: non-stream JSON and server-sent events.

Engine calls block (a forward pass at a time), so they run in worker threads. A stream holds the engine's lock
until it ends or is closed, so the token iterator is always closed: at the end, on an error, and when the client
goes away.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator

from fastapi.responses import StreamingResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from ..engines import Engine, GenerationChunk, SamplingParams
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


class ClosingStreamingResponse(StreamingResponse):
    """Starlette cancels a stream on disconnect without closing its iterator; close it so the engine is freed."""

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            aclose = getattr(self.body_iterator, "aclose", None)
            if aclose is not None:
                await aclose()


class OpenAIServingChat:
    def __init__(self, engine: Engine, model_id: str):
        self.engine, self.model_id = engine, model_id

    async def create(self, request: ChatCompletionRequest):
        if request.model != self.model_id:
            raise APIError(404, f"The model '{request.model}' does not exist.", code="model_not_found", param="model")
        params = self._sampling_params(request)
        messages = [{"role": message.role, "content": message.text()} for message in request.messages]
        prompt = await run_in_threadpool(self._prompt, messages, params)
        request_id = f"chatcmpl-{uuid.uuid4().hex}"
        if request.stream:
            include_usage = bool(request.stream_options and request.stream_options.include_usage)
            tokens = await run_in_threadpool(self._start_stream, prompt, params)
            return ClosingStreamingResponse(
                self._events(tokens, request_id, include_usage), media_type="text/event-stream"
            )
        try:
            result = await run_in_threadpool(self.engine.generate, prompt, params)
        except ValueError as exc:
            raise APIError(400, str(exc)) from exc
        return ChatCompletionResponse(
            id=request_id,
            model=self.model_id,
            choices=[
                ChatCompletionChoice(message=AssistantMessage(content=result.text), finish_reason=result.finish_reason)
            ],
            usage=_usage(result.prompt_tokens, result.completion_tokens),
        )

    # --- preparing -----------------------------------------------------------------------------------------

    @staticmethod
    def _sampling_params(request: ChatCompletionRequest) -> SamplingParams:
        try:
            return SamplingParams(
                max_tokens=request.max_completion_tokens or request.max_tokens,
                temperature=1.0 if request.temperature is None else request.temperature,
                top_p=1.0 if request.top_p is None else request.top_p,
                stop=request.stop_list(),
                seed=request.seed,
            )
        except ValueError as exc:
            raise APIError(400, str(exc)) from exc

    def _prompt(self, messages: list[dict], params: SamplingParams) -> str:
        try:
            prompt = self.engine.apply_chat_template(messages)
        except Exception as exc:  # a template that rejects these messages (e.g. role order) is the caller's input
            raise APIError(400, f"the messages cannot be rendered with the model's chat template: {exc}") from exc
        n_prompt, context = self.engine.count_tokens(prompt), self.engine.context_length
        wanted = n_prompt + (params.max_tokens or 1)
        if wanted > context:
            raise APIError(
                400,
                f"This model's maximum context length is {context} tokens. However, you requested {wanted} tokens "
                f"({n_prompt} in the messages, {wanted - n_prompt} in the completion). "
                "Please reduce the length of the messages or completion.",
                code="context_length_exceeded",
                param="messages",
            )
        return prompt

    def _start_stream(self, prompt: str, params: SamplingParams) -> Iterator[GenerationChunk]:
        try:
            return self.engine.stream(prompt, params)
        except ValueError as exc:
            raise APIError(400, str(exc)) from exc

    # --- streaming -----------------------------------------------------------------------------------------

    async def _events(
        self, tokens: Iterator[GenerationChunk], request_id: str, include_usage: bool
    ) -> AsyncIterator[str]:
        created = int(time.time())

        def chunk(delta: DeltaMessage, finish_reason=None) -> str:
            body = ChatCompletionChunk(
                id=request_id,
                created=created,
                model=self.model_id,
                choices=[ChatCompletionChunkChoice(delta=delta, finish_reason=finish_reason)],
            )
            return _sse(body.model_dump_json())

        with contextlib.closing(tokens):
            yield chunk(DeltaMessage(role="assistant", content=""))
            last = None
            try:
                async for last in iterate_in_threadpool(tokens):
                    if last.text or last.finish_reason:
                        yield chunk(DeltaMessage(content=last.text), last.finish_reason)
            except Exception as exc:  # headers are sent: report in-band, as OpenAI-compatible servers do
                error = ErrorResponse(error=ErrorDetail(message=str(exc) or type(exc).__name__, type="server_error"))
                yield _sse(error.model_dump_json())
                yield _sse("[DONE]")
                return
            if include_usage and last is not None:
                usage = ChatCompletionChunk(
                    id=request_id,
                    created=created,
                    model=self.model_id,
                    choices=[],
                    usage=_usage(last.prompt_tokens, last.completion_tokens),
                )
                yield _sse(usage.model_dump_json())
            yield _sse("[DONE]")


def _sse(data: str) -> str:
    return f"data: {data}\n\n"


def _usage(prompt_tokens: int, completion_tokens: int) -> Usage:
    return Usage(
        prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, total_tokens=prompt_tokens + completion_tokens
    )
