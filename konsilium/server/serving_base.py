"""What every OpenAI endpoint shares (vLLM's `OpenAIServing`): request checks, sampling params, usage, SSE framing,
and relaying a streamed turn with in-band errors.

The turn itself (role, notes, prompt, generation, citations, log) is the pipeline's; an endpoint only translates
between OpenAI's shapes and `TurnRequest` / `TurnResult` / the stream's events. Errors raised by the pipeline
(`RequestError`, `ModelNotFoundError`, `RoleUnavailableError`, `UpstreamError`) become OpenAI error bodies in
`app.py`'s handlers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import Request
from starlette.responses import StreamingResponse

from ..config import ServerSection
from ..engines import SamplingParams
from ..errors import RequestError, ServerBusyError
from ..pipeline import TextDelta, ToolCallDelta, Turn, TurnEnd, TurnPipeline, TurnRequest, TurnResult
from ..pipeline.cancel import Cancellation, InFlight, TurnCancelled
from .errors import APIError
from .protocol import ErrorDetail, ErrorResponse, Usage

# Parameters of OpenAI's API that change what an answer is, where this endpoint does not implement them: ignoring
# them silently would hand an agent a plain-text answer it cannot use, so they are refused by name. (Chat
# completions take tools, tool_choice, parallel_tool_calls and response_format as fields of their own.)
UNSUPPORTED = {
    "tools": "tools are taken by /v1/chat/completions; send the request there",
    "tool_choice": "tool_choice is taken by /v1/chat/completions; send the request there",
    "parallel_tool_calls": "parallel_tool_calls is taken by /v1/chat/completions; send the request there",
    "functions": "the legacy functions parameter is not supported; send tools instead",
    "function_call": "the legacy function_call parameter is not supported; send tool_choice instead",
    "logprobs": "logprobs are not supported yet; send the request without logprobs",
    "top_logprobs": "logprobs are not supported yet; send the request without top_logprobs",
    "response_format": "response_format is taken by /v1/chat/completions; send the request there (or without it)",
}
# Values of those parameters that ask for nothing beyond a plain answer (compared with their JSON type: 0 is not
# false here).
HARMLESS = {
    "logprobs": (False,),
    "top_logprobs": (0,),
    "response_format": ({"type": "text"},),
}
# What the `konsilium` extra body field may hold.
KONSILIUM_KEYS = ("dual", "retrieval", "memory", "thinking", "thinking_budget")


class ClosingStreamingResponse(StreamingResponse):
    """Starlette cancels a stream on disconnect without closing its iterator; close it so the engine is freed."""

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            aclose = getattr(self.body_iterator, "aclose", None)
            if aclose is not None:
                await aclose()


@dataclass
class ServingLimits:
    """How long one answer may take and how many may be in progress; every turn the server runs is in `in_flight`
    so a shutdown can stop them all."""

    request_timeout_s: float
    max_pending: int
    in_flight: InFlight = field(default_factory=InFlight)

    @classmethod
    def from_config(cls, server=None) -> ServingLimits:
        """From the typed `server` section (None: its defaults, which live there only)."""
        server = server if server is not None else ServerSection()
        return cls(server.request_timeout_s, server.max_pending_requests)

    def admit(self, what: str = "") -> Cancellation:
        """A cancellation for new work (a turn, or a task's run), counted in flight; refused past `max_pending`
        (429, try again soon). `what`: the work refused, for the message."""
        if len(self.in_flight) >= self.max_pending:
            raise ServerBusyError(
                f"the server is answering {len(self.in_flight)} requests and tasks (server.max_pending_requests); "
                f"{what or 'try again'} shortly"
            )
        cancel = Cancellation()
        self.in_flight.add(cancel)
        return cancel


class OpenAIServing:
    def __init__(self, pipeline: TurnPipeline, limits: ServingLimits | None = None):
        self.pipeline = pipeline
        self.limits = limits or ServingLimits.from_config()

    # --- one turn's life: admitted, limited in time, stopped when its client goes away --------------------------

    def admit(self) -> Cancellation:
        return self.limits.admit()

    def release(self, cancel: Cancellation, deadline=None) -> None:
        if deadline is not None:
            deadline.cancel()
        self.limits.in_flight.discard(cancel)

    def deadline(self, cancel: Cancellation):
        limit = self.limits.request_timeout_s
        reason = f"the answer took longer than the server's limit of {limit:g} s (server.request_timeout_s)"
        return asyncio.get_running_loop().call_later(limit, cancel.set, reason, True)

    async def generate(self, http_request: Request, turns: list[Turn]) -> list[list[TurnResult]]:
        """Non-streamed answers, one turn after another; stopped (and logged as cancelled) when the client goes
        away, the time limit passes or the server shuts down."""
        cancel = self.admit()
        deadline = self.deadline(cancel)
        watcher = asyncio.ensure_future(_cancel_on_disconnect(http_request, cancel))
        try:
            return [await run_in_threadpool(self.pipeline.generate, turn, cancel) for turn in turns]
        except TurnCancelled as exc:
            raise _cancelled_error(exc) from None
        finally:
            watcher.cancel()
            self.release(cancel, deadline)

    async def start_stream(self, http_request: Request, turn: Turn):
        """(stream, cancel, deadline) for a streamed answer; `relay` releases them when the stream ends. Starting
        may wait for an adapter slot: the time limit runs from here, and a client that goes away meanwhile (no
        stream yet to notice it) cancels the wait."""
        cancel = self.admit()
        deadline = self.deadline(cancel)
        watcher = asyncio.ensure_future(_cancel_on_disconnect(http_request, cancel))
        try:
            stream = await run_in_threadpool(self.pipeline.stream, turn, cancel)
        except TurnCancelled as exc:
            self.release(cancel, deadline)
            raise _cancelled_error(exc) from None
        except BaseException:
            self.release(cancel, deadline)
            raise
        finally:
            watcher.cancel()  # from here on the streaming response notices a client that leaves
        return stream, cancel, deadline

    @staticmethod
    def refuse_unsupported(request) -> None:
        extra = request.model_extra or {}
        for name, reason in UNSUPPORTED.items():
            value = extra.get(name)
            if value in (None, [], {}) or any(type(value) is type(ok) and value == ok for ok in HARMLESS.get(name, ())):
                continue
            raise RequestError(reason, param=name, code="unsupported_parameter")
        options = getattr(request, "konsilium", None) or extra.get("konsilium")
        if options is None:
            return
        if not isinstance(options, dict):
            raise RequestError('konsilium must be an object, e.g. {"retrieval": false}', param="konsilium")
        for key in options:
            if key not in KONSILIUM_KEYS:
                raise RequestError(
                    f"konsilium.{key} is not a konsilium option; known: {', '.join(KONSILIUM_KEYS)}",
                    param=f"konsilium.{key}",
                    code="unsupported_parameter",
                )

    @staticmethod
    def sampling_params(request, max_tokens: int | None, constraint=None) -> SamplingParams:
        try:
            return SamplingParams(
                max_tokens=max_tokens,
                temperature=1.0 if request.temperature is None else request.temperature,
                top_p=1.0 if request.top_p is None else request.top_p,
                stop=request.stop_list(),
                seed=request.seed,
                constraint=constraint,
            )
        except ValueError as exc:
            raise RequestError(str(exc)) from exc

    async def prepare(self, request: TurnRequest, resolution=None):
        """Resolve and ground in a worker thread (the index and the tokenizer block)."""
        return await run_in_threadpool(self.pipeline.prepare, request, resolution)

    async def relay(
        self,
        started,
        opening: str | None,
        on_delta: Callable[[TextDelta | ToolCallDelta], str],
        on_end: Callable[[TurnEnd], str],
        usage_event: Callable[[Usage], str] | None = None,
        on_error: Callable[[str], list[str]] | None = None,
        done: bool = True,
    ) -> AsyncIterator[str]:
        """SSE events of a streamed turn (`started` from `start_stream`): the opening, a chunk per delta, the last
        chunk, the usage chunk when asked for (`stream_options.include_usage`), then `[DONE]`. The stream is closed
        whatever happens: at the end (a no-op), on an error or a time limit (reported in-band: the headers are
        gone), and when the client goes away (the turn is then logged as cancelled with what was said). The Responses
        API gives its own `on_error` events and no `[DONE]` (`done=False`)."""
        stream, cancel, deadline = started
        try:
            if opening is not None:
                yield opening
            async for event in iterate_in_threadpool(stream):
                if not isinstance(event, TurnEnd):
                    yield on_delta(event)
                    continue
                yield on_end(event)
                if usage_event is not None:
                    yield usage_event(usage(event.prompt_tokens, event.completion_tokens))
                if done:
                    yield sse("[DONE]")
        except Exception as exc:
            for item in (on_error or error_events)(str(exc) or type(exc).__name__):
                yield item
        finally:
            stream.close()
            self.release(cancel, deadline)


async def _cancel_on_disconnect(http_request: Request, cancel: Cancellation) -> None:
    """The body is read; the next ASGI message is the client leaving (or the response being done)."""
    while True:
        message = await http_request.receive()
        if message["type"] == "http.disconnect":
            cancel.set("the client went away")
            return


def _cancelled_error(exc: TurnCancelled) -> APIError:
    if exc.timed_out:  # not retried by clients (x-should-retry): the same request would take as long again
        return APIError(504, exc.reason, code="request_timeout", headers={"x-should-retry": "false"})
    return APIError(503, exc.reason, code="cancelled")


def dump(body) -> str:
    """JSON as OpenAI sends it (nulls included), without our own fields (`sources`, `memories`, `role`) where
    unset."""
    fields = type(body).model_fields
    exclude: dict = {
        name: True for name in ("sources", "memories", "role") if name in fields and getattr(body, name) is None
    }
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
