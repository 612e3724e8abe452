"""The engine's text read as the answer: plain text, or content and tool calls, the same way streamed or whole.

A turn that offers tools reads the text with the hermes reader (`structured.hermes`): `<tool_call>` blocks become
`ToolCallDelta`s (id and name first, then argument pieces) and the rest stays text. The Sources tail is for prose
answers only: an answer that calls tools or must be JSON (`response_format`) never gets it in its text (the
`sources` field still lists the notes). A role's opening note goes before prose and beside calls the model chose
to make (`tool_choice` auto), never before JSON or forced calls (`TurnRequest.constrained`).

A chat answer's `<think>…</think>` block is split off first (`thinking.ThinkSplitter`): it comes out as
`ReasoningDelta`s and in `reasoning`, never in the content that is cited, logged as the response or learned from.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..structured.hermes import CallDelta as ToolCallDelta
from ..structured.hermes import ContentDelta as TextDelta
from ..structured.hermes import HermesReader, ToolCall
from .thinking import ThinkSplitter

__all__ = ["AnswerReader", "ReasoningDelta", "TextDelta", "ToolCallDelta"]


@dataclass(frozen=True)
class ReasoningDelta:
    text: str  # a piece of the model's reasoning (`reasoning_content`)


class AnswerReader:
    """One engine call's text in, the answer's events out; `finish` gives the end (tail and finish reason)."""

    def __init__(self, turn):
        tool_use, params = turn.request.tool_use, turn.request.params
        self._turn = turn
        self._hermes = HermesReader(tool_use.parallel) if tool_use is not None and tool_use.active else None
        self._json = params.constraint is not None and params.constraint.json_schema is not None
        self.raw = ""  # the model's own text, as generated
        # Raw completions are the caller's own prompt: their text is never split.
        self._thinking = ThinkSplitter(turn.thinking_open) if turn.request.messages is not None else None

    @property
    def reads_calls(self) -> bool:
        return self._hermes is not None

    @property
    def splits(self) -> bool:
        """Whether the text goes through the reader piece by piece (calls or reasoning may be in it)."""
        return self._hermes is not None or self._thinking is not None

    @property
    def reasoning(self) -> str:
        return self._thinking.reasoning if self._thinking is not None else ""

    @property
    def said(self) -> str:
        """The answer's own text (calls' markup included, the reasoning not), for the log."""
        return self._thinking.content if self._thinking is not None else self.raw

    def feed(self, text: str) -> list:
        self.raw += text
        if self._thinking is None:
            return self._content(text)
        return self._split(self._thinking.feed(text))

    def _split(self, pieces: list[tuple[str, str]]) -> list:
        events: list = []
        for kind, piece in pieces:
            events.extend([ReasoningDelta(piece)] if kind == "reasoning" else self._content(piece))
        return events

    def _content(self, text: str) -> list:
        if self._hermes is None:
            return [TextDelta(text)] if text else []
        return self._hermes.feed(text)

    def finish(self, finish_reason: str) -> tuple[list, str, str]:
        """(the last events, the tail to append, the finish reason): `tool_calls` when the answer made calls."""
        events = self._split(self._thinking.finish()) if self._thinking is not None else []
        events += self._hermes.finish() if self._hermes is not None else []
        calls = self.calls
        tail = "" if calls or self._json else self._turn.tail()
        return events, tail, "tool_calls" if calls and finish_reason == "stop" else finish_reason

    @property
    def calls(self) -> list[ToolCall]:
        return list(self._hermes.calls) if self._hermes is not None else []

    @property
    def content(self) -> str | None:
        """The text beside the calls (None when the calls are all there is); the whole text without tools."""
        return self._hermes.answer if self._hermes is not None else self.said

    @property
    def output(self) -> str:
        """What kind of answer it was, for the log: `tool_calls`, `json` or `text`."""
        return "tool_calls" if self.calls else "json" if self._json else "text"
