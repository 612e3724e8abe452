"""What every OpenAI endpoint shares (vLLM's `OpenAIServing`): request checks, sampling params, usage, SSE framing,
and relaying a streamed turn with in-band errors.

The turn itself (role, notes, prompt, generation, citations, log) is the pipeline's; an endpoint only translates
between OpenAI's shapes and `TurnRequest` / `TurnResult` / the stream's events. Errors raised by the pipeline
(`RequestError`, `ModelNotFoundError`, `RoleUnavailableError`, `UpstreamError`) become OpenAI error bodies in
`app.py`'s handlers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable

from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.responses import StreamingResponse

from ..engines import SamplingParams
from ..errors import RequestError
from ..pipeline import TextDelta, TurnEnd, TurnPipeline, TurnRequest
from .protocol import ErrorDetail, ErrorResponse, Usage

# Parameters of OpenAI's API that change what an answer is; until they are implemented, ignoring them silently
# would hand an agent a plain-text answer it cannot use, so they are refused by name.
UNSUPPORTED = {
    "tools": "tool calling is not supported yet; send the request without tools",
    "tool_choice": "tool calling is not supported yet; send the request without tool_choice",
    "functions": "function calling is not supported yet; send the request without functions",
    "function_call": "function calling is not supported yet; send the request without function_call",
    "parallel_tool_calls": "tool calling is not supported yet; send the request without parallel_tool_calls",
}


class ClosingStreamingResponse(StreamingResponse):
    """Starlette cancels a stream on disconnect without closing its iterator; close it so the engine is freed."""

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            aclose = getattr(self.body_iterator, "aclose", None)
            if aclose is not None:
                await aclose()


class OpenAIServing:
    def __init__(self, pipeline: TurnPipeline):
        self.pipeline = pipeline

    @staticmethod
    def refuse_unsupported(request) -> None:
        extra = request.model_extra or {}
        for name, reason in UNSUPPORTED.items():
            if extra.get(name) not in (None, [], {}):
                raise RequestError(reason, param=name, code="unsupported_parameter")

    @staticmethod
    def sampling_params(request, max_tokens: int | None) -> SamplingParams:
        try:
            return SamplingParams(
                max_tokens=max_tokens,
                temperature=1.0 if request.temperature is None else request.temperature,
                top_p=1.0 if request.top_p is None else request.top_p,
                stop=request.stop_list(),
                seed=request.seed,
            )
        except ValueError as exc:
            raise RequestError(str(exc)) from exc

    async def prepare(self, request: TurnRequest, resolution=None):
        """Resolve and ground in a worker thread (the index and the tokenizer block)."""
        return await run_in_threadpool(self.pipeline.prepare, request, resolution)

    async def relay(
        self,
        stream,
        opening: str | None,
        on_delta: Callable[[TextDelta], str],
        on_end: Callable[[TurnEnd], Iterable[str]],
    ) -> AsyncIterator[str]:
        """SSE events of a streamed turn. The stream is closed whatever happens: at the end (a no-op), on an
        error (reported in-band: the headers are gone), and when the client goes away (the turn is then logged
        as cancelled with what was said)."""
        try:
            if opening is not None:
                yield opening
            async for event in iterate_in_threadpool(stream):
                if isinstance(event, TurnEnd):
                    for item in on_end(event):
                        yield item
                else:
                    yield on_delta(event)
        except Exception as exc:
            for item in error_events(str(exc) or type(exc).__name__):
                yield item
        finally:
            stream.close()


def dump(body) -> str:
    """JSON as OpenAI sends it (nulls included), without our own fields (`sources`, `role`) where unset."""
    fields = type(body).model_fields
    exclude: dict = {name: True for name in ("sources", "role") if name in fields and getattr(body, name) is None}
    choices = getattr(body, "choices", None)
    if choices and "role" in type(choices[0]).model_fields and all(choice.role is None for choice in choices):
        exclude["choices"] = {"__all__": {"role"}}  # a choice names its role only in dual answers
    return body.model_dump_json(exclude=exclude or None)


def sse(data: str) -> str:
    return f"data: {data}\n\n"


def usage(prompt_tokens: int, completion_tokens: int) -> Usage:
    return Usage(
        prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, total_tokens=prompt_tokens + completion_tokens
    )


def error_events(message: str) -> list[str]:
    """A failure after the headers went out: reported in-band, then the stream ends, as OpenAI-compatible servers do."""
    body = ErrorResponse(error=ErrorDetail(message=message, type="server_error")).model_dump_json()
    return [sse(body), sse("[DONE]")]
