"""Tool calls in the model's text, hermes-style (Qwen, Hermes, SmolLM2): what vLLM's `hermes` tool parser reads.

    Let me look that up.
    <tool_call>
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    </tool_call>

`HermesReader` reads the text as it is generated and turns it into events: `ContentDelta` for text outside the
calls, `CallDelta` for a call: first its id and name (once `{"name": "...", "arguments":` has been read), then its
arguments in pieces, as OpenAI streams them. A whole text read at once gives the same content and the same calls,
to the character, as the same text read in any pieces: the non-stream answer and the accumulated stream agree.

A call's arguments are the model's own JSON text (not parsed and dumped again, which would change what was
streamed). A call that does not start with its name (`{"arguments": ..., "name": ...}`) is held until it closes and
read as JSON then; one that cannot be read at all stays in the content as text, so nothing the model said is lost.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field

START, END = "<tool_call>", "</tool_call>"
# The head of a call: from here on, what follows is the arguments' JSON text.
_HEAD = re.compile(r'\s*\{\s*"name"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"arguments"\s*:\s*(?=\S)')
# What may close a call: the object's `}`, whitespace and the start of `</tool_call>`; held until known.
_CLOSING = re.compile(r"(?:\s*\}\s*|\s*)(?:" + "|".join(re.escape(END[:k]) for k in range(len(END), 0, -1)) + r")?\Z")


def call_id() -> str:
    """An id in OpenAI's form (`call_` and 24 characters)."""
    return f"call_{uuid.uuid4().hex[:24]}"


@dataclass(frozen=True)
class ContentDelta:
    text: str


@dataclass(frozen=True)
class CallDelta:
    """A piece of call `index`: the first one carries `id` and `name`, the next ones more `arguments`."""

    index: int
    arguments: str = ""
    id: str | None = None
    name: str | None = None


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as OpenAI carries it

    def to_json(self) -> dict:
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass
class _Open:
    """The call being read: its text after `<tool_call>`, and how much of its arguments went out."""

    text: str = ""
    head: int | None = None  # where the arguments start in `text`, once the name is known
    sent: int = 0  # characters of the arguments already sent
    call: ToolCall | None = None


@dataclass
class HermesReader:
    """Text in, events out. `parallel=False` keeps the first call only (later ones are dropped, not shown as text)."""

    parallel: bool = True
    calls: list[ToolCall] = field(default_factory=list)
    content: str = ""  # the text outside the calls sent so far
    _pending: str = ""  # text not yet classified (a possible start of `<tool_call>`)
    _blank: str = ""  # whitespace held back: sent only if more text follows it
    _open: _Open | None = None
    _dropping: bool = False

    def feed(self, text: str) -> list:
        self._pending += text
        events: list = []
        while self._pending:
            if self._open is None:
                at = self._pending.find(START)
                if at < 0:
                    keep = partial_suffix(self._pending, START)
                    self._text(self._pending[: len(self._pending) - keep], events)
                    self._pending = self._pending[len(self._pending) - keep :]
                    break
                self._text(self._pending[:at], events)
                self._pending = self._pending[at + len(START) :]
                self._open = _Open()
                self._dropping = bool(self.calls) and not self.parallel
                continue
            self._open.text += self._pending
            self._pending = ""
            end = self._open.text.find(END)
            if end < 0:
                self._advance(events)
                break
            self._pending = self._open.text[end + len(END) :]
            self._open.text = self._open.text[:end]
            self._close(events)
        return events

    def finish(self) -> list:
        """The end of the text: a call left open is closed as it stands; held text goes out."""
        events: list = []
        if self._open is not None:
            self._open.text += self._pending
            self._pending = ""
            self._close(events)
        if self._pending:
            self._text(self._pending, events)
            self._pending = ""
        self._blank = ""  # trailing whitespace is not part of the answer
        return events

    @property
    def answer(self) -> str | None:
        """The content as OpenAI returns it beside calls: None when the calls are all there is."""
        return None if self.calls and not self.content.strip() else self.content

    # --- inside --------------------------------------------------------------------------------------------

    def _text(self, text: str, events: list) -> None:
        body = text.rstrip()
        if not body:
            self._blank += text
            return
        body, self._blank = self._blank + body, text[len(body) :]  # trailing whitespace waits for more text
        self.content += body
        events.append(ContentDelta(body))

    def _advance(self, events: list) -> None:
        """More of an open call: its name once the head is complete, then the arguments known to be final."""
        current = self._open
        if self._dropping or not self._start(current, events):
            return
        arguments = current.text[current.head :]
        self._send_arguments(current, arguments[: _CLOSING.search(arguments).start()], events)

    def _start(self, current: _Open, events: list) -> bool:
        """Name the call once its head has been read; False while it has not."""
        if current.head is not None:
            return True
        head = _HEAD.match(current.text)
        if head is None:
            return False
        current.head = head.end()
        current.call = ToolCall(call_id(), json.loads(f'"{head.group(1)}"'), "")
        self.calls.append(current.call)
        events.append(CallDelta(len(self.calls) - 1, "", current.call.id, current.call.name))
        return True

    def _close(self, events: list) -> None:
        current, self._open = self._open, None
        if self._dropping:
            return
        if not self._start(current, events):
            found = _whole_call(current.text)
            if found is None:  # not a call we can read: it stays in the answer as the model wrote it
                self._text(f"{START}{current.text}{END}", events)
                return
            current.call = ToolCall(call_id(), found[0], found[1])
            self.calls.append(current.call)
            events.append(CallDelta(len(self.calls) - 1, found[1], current.call.id, current.call.name))
            return
        body = current.text[current.head :].rstrip()
        if body.endswith("}") and _parses(current.text.strip()):
            body = body[:-1].rstrip()  # the call object's own closing brace
        self._send_arguments(current, body, events)

    def _send_arguments(self, current: _Open, arguments: str, events: list) -> None:
        new = arguments[current.sent :]
        if not new or not arguments.startswith(current.call.arguments):
            return
        current.sent = len(arguments)
        current.call.arguments = arguments
        events.append(CallDelta(self.calls.index(current.call), new))


def read(text: str, parallel: bool = True) -> HermesReader:
    """A whole text read at once."""
    reader = HermesReader(parallel)
    reader.feed(text)
    reader.finish()
    return reader


def partial_suffix(text: str, token: str) -> int:
    """Length of the longest end of `text` that is a beginning of `token` (held: the next piece may complete it)."""
    for size in range(min(len(token) - 1, len(text)), 0, -1):
        if text.endswith(token[:size]):
            return size
    return 0


def _parses(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _whole_call(text: str) -> tuple[str, str] | None:
    """(name, arguments JSON) of a call written in another order, or None when it is not a readable call."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        return None
    arguments = value.get("arguments", value.get("parameters", {}))
    return value["name"], arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
