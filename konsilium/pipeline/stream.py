"""A streamed turn: text as the engine decides it, and a log record that stays exact whatever happens.

`TurnStream` is a plain (blocking) iterator, so the server can drive it from worker threads and the CLI from its
own loop. The caller shows `turn.opening` first (the record counts it as said). The stream yields `TextDelta`s
(`ReasoningDelta`s for a `<think>` block, and, when the turn offers tools, `ToolCallDelta`s read from the model's
`<tool_call>` blocks: see `answer.py`),
then one `TurnEnd` after the exchange is committed; an engine failure is recorded as "error" and re-raised;
closing it early (a client went away, Ctrl-C) records "cancelled" with what was said so far, and so does its
`Cancellation` (a time limit, a shutdown), which then raises `TurnCancelled`. The adapter stays held until the
stream ends or is closed.
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass

from ..engines import GenerationChunk
from .answer import AnswerReader, ReasoningDelta, TextDelta, ToolCallDelta
from .cancel import Cancellation
from .turn import Turn, TurnPipeline, elapsed_ms, last_counts

__all__ = ["ReasoningDelta", "TextDelta", "ToolCallDelta", "TurnEnd", "TurnStream"]


@dataclass(frozen=True)
class TurnEnd:
    text: str  # the last piece: the engine's final text and the citations
    finish_reason: str  # "stop", "length" or "tool_calls"
    prompt_tokens: int
    completion_tokens: int
    tool_calls: tuple = ()  # every call the answer made (structured.hermes.ToolCall), already sent as deltas


class TurnStream:
    def __init__(self, pipeline: TurnPipeline, turn: Turn, cancel: Cancellation | None = None):
        self.pipeline, self.turn = pipeline, turn
        self.cancel = cancel or Cancellation()
        self._tail = ""  # the citations, once the answer is done (the caller sends the opening before all)
        self._reader = AnswerReader(turn)
        self._queue: collections.deque = collections.deque()  # events read but not yet handed out
        self._last: GenerationChunk | None = None
        self._finished = self._closed = False
        self._lock = threading.Lock()  # close() may come from another thread while __next__ waits
        self._hold = pipeline._holding(turn, self.cancel)
        self._hold.__enter__()  # may wait for a free adapter slot; ModelNotFound / RoleUnavailable pass through
        call = turn.messages if turn.messages is not None else turn.request.prompts[0]
        try:
            self._tokens = pipeline._engine_stream(turn, call)
        except BaseException:
            self._hold.__exit__(None, None, None)
            raise
        self._watch = self.cancel.watching(self._tokens)
        self._watch.__enter__()  # a time limit or a shutdown closes the engine stream, waking a blocked reader

    def __iter__(self) -> TurnStream:
        return self

    def __next__(self) -> TextDelta | ReasoningDelta | ToolCallDelta | TurnEnd:
        if self._closed:
            raise StopIteration
        if self._queue:
            return self._queue.popleft()
        if self._finished:
            raise StopIteration
        record = self.turn.record
        while True:
            try:
                chunk = next(self._tokens)
            except StopIteration:  # closed by the cancellation, or an engine that ended without saying why
                chunk = None
            except Exception as exc:
                if self.cancel.is_set:
                    chunk = None
                else:
                    self._end("error", str(exc) or type(exc).__name__)
                    raise
            if self.cancel.is_set:
                self._end("cancelled", self.cancel.reason)
                raise self.cancel.error()
            if "first_token_ms" not in record.timings:
                record.timings["first_token_ms"] = elapsed_ms(record)
            if chunk is None or chunk.finish_reason:
                self._finish(chunk)
                return self._queue.popleft()
            self._last = chunk
            if chunk.text:
                events = self._reader.feed(chunk.text)  # a tag in the making may hold its text back
                if events:
                    self._queue.extend(events[1:])
                    return events[0]

    def _finish(self, last: GenerationChunk | None) -> None:
        """The end: the last events, then `TurnEnd`, queued once the exchange is committed."""
        record, reader = self.turn.record, self._reader
        if last is None:
            last = GenerationChunk("", "stop", *last_counts(self._last))
        self._last = last
        # A raw completion's last text goes out with the end, as it always has; a chat's is read like the rest.
        events = reader.feed(last.text) if reader.splits else []
        if not reader.splits:
            reader.raw += last.text
        more, tail, finish_reason = reader.finish(last.finish_reason)
        final = tail if reader.splits else last.text + tail
        self._tail = tail
        record.finish_reason = finish_reason
        record.tool_calls = [call.to_json() for call in reader.calls]
        record.output = reader.output
        record.timings["total_ms"] = elapsed_ms(record)
        self._end("ok", None)  # durable before the caller sends the end
        end = TurnEnd(final, finish_reason, last.prompt_tokens, last.completion_tokens, tuple(reader.calls))
        self._queue.extend([*events, *more, end])

    def _end(self, status: str, error: str | None) -> None:
        with self._lock:
            if self._finished or self._closed:
                return
            self._finished = True
        self._commit(status, error)

    def close(self) -> None:
        """Stop early: the engine stops generating, and what was said is kept as "cancelled"."""
        with self._lock:
            if self._finished or self._closed:
                return
            self._closed = True
        self._commit("cancelled", self.cancel.reason or "closed by the caller")

    def _commit(self, status: str, error: str | None) -> None:
        try:
            said = self.turn.opening + self._reader.said + self._tail
            self.pipeline.end_turn(self.turn, status, error, said, self._last, self._reader.reasoning)
        finally:
            self._release()

    def _release(self) -> None:
        try:
            self._watch.__exit__(None, None, None)
            close = getattr(self._tokens, "close", None)
            if close is not None:
                close()
        finally:
            self._hold.__exit__(None, None, None)
