"""Relaying an engine's token stream to a client, with the exchange log kept exact whatever happens.

`relay` yields the caller's opening event, the engine's text chunks, then the final chunk (with
`finish_reason`), or the exception that ended the stream. It fills the record as it goes and itself records
exchanges that end early: a failure (status "error") and a client that went away (status "cancelled"). A
finished exchange is left for the caller to complete (citations) and commit before it sends the last event.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Iterator

from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.responses import StreamingResponse

from ..engines import GenerationChunk
from ..memory import Exchange


class ClosingStreamingResponse(StreamingResponse):
    """Starlette cancels a stream on disconnect without closing its iterator; close it so the engine is freed."""

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            aclose = getattr(self.body_iterator, "aclose", None)
            if aclose is not None:
                await aclose()


async def relay(tokens: Iterator[GenerationChunk], record: Exchange, answerer, opening: str = "") -> AsyncIterator:
    """`opening` (an event the caller sends first) is yielded inside the guard, so a client gone by then still
    closes the engine stream and leaves a "cancelled" record."""
    parts: list[str] = []
    last: GenerationChunk | None = None
    outcome = "cancelled"  # until the engine finishes or fails: a close or cancel lands in `finally`
    with contextlib.closing(tokens):
        try:
            if opening:
                yield opening
            async for last in iterate_in_threadpool(tokens):
                if "first_token_ms" not in record.timings:
                    record.timings["first_token_ms"] = elapsed_ms(record)
                if last.finish_reason:
                    break
                if last.text:
                    parts.append(last.text)
                    yield last
            outcome = "done"
        except Exception as exc:  # headers are sent: the caller reports it in-band
            outcome = "error"
            record.status, record.error, record.response = "error", str(exc) or type(exc).__name__, "".join(parts)
            await run_in_threadpool(answerer.record, record)
            yield exc
            return
        finally:
            if outcome == "cancelled":
                # The client went away: keep what was said so far. Called directly because a cancelled task
                # cannot await; one SQLite commit on the event loop is the price of losing nothing.
                record.status, record.response = "cancelled", "".join(parts)
                answerer.record(record)
    if last is None or not last.finish_reason:  # an engine that ended without saying why
        counts = (last.prompt_tokens, last.completion_tokens) if last is not None else (0, 0)
        last = GenerationChunk("", "stop", *counts)
    record.response = "".join(parts) + last.text
    record.finish_reason = last.finish_reason
    record.prompt_tokens, record.completion_tokens = last.prompt_tokens, last.completion_tokens
    record.timings["total_ms"] = elapsed_ms(record)
    yield last


def elapsed_ms(record: Exchange) -> float:
    return round((time.time() - record.time) * 1000, 2)


def error_events(message: str) -> list[str]:
    """A failure after the headers went out: reported in-band, then the stream ends, as OpenAI-compatible servers do."""
    from .protocol import ErrorDetail, ErrorResponse

    body = ErrorResponse(error=ErrorDetail(message=message, type="server_error")).model_dump_json()
    return [f"data: {body}\n\n", "data: [DONE]\n\n"]
