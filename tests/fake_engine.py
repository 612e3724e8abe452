"""A small deterministic engine for tests of what sits around generation: HTTP, streaming, grounding, roles, logs.

It implements `konsilium.engines.protocol.Engine` without a model. Its tokens are whitespace-separated words. Its
answer tells what it received, so a test can see it through the real server:

    [base] notes=2 system=yes | Какая у меня видеокарта?
    [physics#3f2a] notes=0 system=no | Tell me about energy.

`[adapter#fingerprint]` names the adapter the request ran on (the fingerprint comes from the adapter's weights, so
two adapters of one name but other weights answer differently), `notes` counts the `<note` blocks in the system
message, `system` says whether there was one, and the rest is the last user message. A raw prompt is answered with
`[base] prompt | <its last words>`. `max_tokens` counts these words (finish_reason "length"), `stop` strings cut
the answer before them (finish_reason "stop"), an answer that ends by itself finishes with "stop". Streams yield
one word per chunk, the last chunk carrying the finish reason.

Knobs for error and timing tests: `context_length` (and per adapter `context_lengths`), `filler_words` (a longer
answer), `thoughts` (a chat answer starts with a `<think>` block of these words unless the request turns thinking
off, as a Qwen3 model's does), `thinking_words` (a chat answering the user starts with a `<think>` block of that
many words, as a reasoning model's does; a chat that ends with the assistant's message continues it without one),
`chunk_delay_s`, `fail_after_chunks` (raises `FakeEngineFailure` mid-stream), and `gate` (a `threading.Event` every
chunk after the first waits for). Every request is kept in `received`; `streams_closed`, `streams_closed_early` and
`open_streams` show that a stream was released.

Tools and structured output: given `tools`, a chat whose last message is the user's is answered with a hermes
`<tool_call>` to the first tool (the arguments: the smallest value its parameters schema allows, see `example`),
streamed in pieces of a few characters; a chat whose last message is a tool result answers in words, with
`tool: <the result>` in place of the user's words. A `constraint` is honoured the same way: forced calls go to its
first tool, a JSON schema gets its smallest valid value as the answer (`constraint_support` says "token-mask";
`FakeEngine(constraint_support=ConstraintSupport.NONE)` is an engine that cannot constrain).

Scripted answers, for agent loops: `script` (a list of texts, `tool_call(name, **arguments)` builds one) answers
chat requests that offer tools, one text each in order, before any of the above; once it is used up the fake
answers as usual.

`FakeSlotsEngine` holds adapters in slots the way the transformers engine does (`configure_adapters`,
`prepare_adapter`, `load_adapter`, `unload_adapter`, `loaded_adapters`), for roles tests that do not check numerics.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from konsilium.engines.protocol import (
    AdapterRequest,
    AdapterSupport,
    ConstraintSupport,
    GenerationChunk,
    GenerationResult,
    SamplingParams,
)

CHAT_ROLES = ("system", "developer", "user", "assistant", "tool")
ASSISTANT_TURN = "<|assistant|>"


class FakeEngineFailure(RuntimeError):
    """What a stream configured with `fail_after_chunks` raises."""


@dataclass
class Received:
    """One request as the engine saw it."""

    kind: str  # "prompt" or "chat"
    prompt: str  # the rendered prompt (chat: after the template)
    messages: list[dict] | None
    params: SamplingParams
    adapter: str | None
    prompt_tokens: int
    tools: list[dict] | None = None
    text: str = ""  # what it answered (filled in when the answer is decided)
    finish_reason: str | None = None


@dataclass
class _Answer:
    pieces: list[str]  # one per completion token (the last may be cut by a stop string)
    finish_reason: str
    prompt_tokens: int
    record: Received = field(repr=False)


class FakeEngine:
    engine_name = "fake"
    adapter_support = AdapterSupport.NONE

    def __init__(
        self,
        context_length: int = 2048,
        *,
        constraint_support: ConstraintSupport = ConstraintSupport.TOKEN_MASK,
        context_lengths: dict[str, int] | None = None,
        filler_words: int = 0,
        thoughts: str = "",
        thinking_words: int = 0,
        chunk_delay_s: float = 0.0,
        fail_after_chunks: int | None = None,
        gate: threading.Event | None = None,
        script: list[str] | None = None,
    ):
        self._context_length = context_length
        self.script: deque[str] = deque(script or [])
        self.constraint_support = constraint_support
        self.context_lengths = dict(context_lengths or {})
        self.filler_words = filler_words
        self.thoughts = thoughts
        self.thinking_words = thinking_words
        self.chunk_delay_s = chunk_delay_s
        self.fail_after_chunks = fail_after_chunks
        self.gate = gate
        self.received: deque[Received] = deque(maxlen=200)
        self.streams_started = 0
        self.streams_closed = 0  # closed by the caller (finished or not)
        self.streams_closed_early = 0  # closed before the last chunk was taken
        self.streams_finished = 0  # ran to the last chunk
        self._lock = threading.Lock()

    # --- description ---------------------------------------------------------------------------------------

    @property
    def context_length(self) -> int:
        return self._context_length

    def context_length_for(self, adapter: AdapterRequest | None) -> int:
        if adapter is not None and adapter.name in self.context_lengths:
            return self.context_lengths[adapter.name]
        return self._context_length

    def info(self) -> dict:
        return {
            "engine": self.engine_name,
            "path": "fake",
            "gguf_file": None,
            "architecture": "fake",
            "dtype": "none",
            "device": "cpu",
            "parameters": 0,
        }

    @property
    def open_streams(self) -> int:
        """Streams started and neither finished nor closed: each one would hold a real engine."""
        with self._lock:
            return self.streams_started - self.streams_finished - self.streams_closed_early

    @property
    def last(self) -> Received:
        return self.received[-1]

    # --- tokens --------------------------------------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def apply_chat_template(self, messages: list[dict], tools: list[dict] | None = None) -> str:
        lines = [f"<|tools|> {' '.join(tool['function']['name'] for tool in tools)}"] if tools else []
        for message in messages:
            role = message.get("role")
            if role not in CHAT_ROLES:
                raise ValueError(f"the fake template has no place for role {role!r}")
            calls = " ".join(call["function"]["name"] for call in message.get("tool_calls") or [])
            lines.append(f"<|{role}|> {message.get('content') or ''}" + (f" <|calls|> {calls}" if calls else ""))
        return "\n".join([*lines, ASSISTANT_TURN])

    def count_chat_tokens(self, messages: list[dict], tools: list[dict] | None = None) -> int:
        return self.count_tokens(self.apply_chat_template(messages, tools))

    # --- generation ----------------------------------------------------------------------------------------

    def generate(self, prompt: str, params: SamplingParams, adapter: AdapterRequest | None = None) -> GenerationResult:
        tail = prompt.split()[-6:]
        return self._result(self._answer("prompt", prompt, None, ["prompt", "|", *tail], params, adapter))

    def stream(
        self, prompt: str, params: SamplingParams, adapter: AdapterRequest | None = None
    ) -> Iterator[GenerationChunk]:
        tail = prompt.split()[-6:]
        return FakeStream(self, self._answer("prompt", prompt, None, ["prompt", "|", *tail], params, adapter))

    def generate_chat(
        self,
        messages: list[dict],
        params: SamplingParams,
        adapter: AdapterRequest | None = None,
        tools: list[dict] | None = None,
    ) -> GenerationResult:
        return self._result(self._chat(messages, params, adapter, tools))

    def stream_chat(
        self,
        messages: list[dict],
        params: SamplingParams,
        adapter: AdapterRequest | None = None,
        tools: list[dict] | None = None,
    ) -> Iterator[GenerationChunk]:
        return FakeStream(self, self._chat(messages, params, adapter, tools))

    # --- the answer ----------------------------------------------------------------------------------------

    def describe_adapter(self, adapter: AdapterRequest | None) -> str:
        """How the answer names the adapter it ran on."""
        return "base" if adapter is None else adapter.name

    def _chat(self, messages: list[dict], params: SamplingParams, adapter, tools: list[dict] | None) -> _Answer:
        prompt = self.apply_chat_template(messages, tools)  # raises ValueError for messages it cannot take
        system = next((m.get("content") or "" for m in messages if m.get("role") in ("system", "developer")), None)
        user = next((m.get("content") or "" for m in reversed(messages) if m.get("role") == "user"), "")
        notes = (system or "").count("<note ")
        structured = self._scripted(params.constraint, tools)
        if structured is None:
            structured = self._structured(messages, params.constraint, tools)
        if structured is not None:
            pieces = [structured[i : i + 6] for i in range(0, len(structured), 6)]
            return self._answer("chat", prompt, messages, pieces, params, adapter, tools, raw=True)
        said = user.split()
        if messages and messages[-1].get("role") == "tool":
            said = ["tool:", *(messages[-1].get("content") or "").split()]
        words = [f"notes={notes}", f"system={'yes' if system is not None else 'no'}", "|", *said]
        thinks = self.thinking_words and messages and messages[-1].get("role") == "user"
        reasoning = ["<think>", *(f"t{i}" for i in range(self.thinking_words)), "</think>"] if thinks else []
        return self._answer("chat", prompt, messages, words, params, adapter, tools, reasoning=reasoning)

    def _scripted(self, constraint, tools: list[dict] | None) -> str | None:
        """The next scripted text, for a request that offers tools (None: nothing scripted)."""
        if not tools and not (constraint is not None and constraint.tools):
            return None
        with self._lock:
            return self.script.popleft() if self.script else None

    @staticmethod
    def _structured(messages: list[dict], constraint, tools: list[dict] | None) -> str | None:
        """The text of a tool call or a JSON answer, when the request asks for one (None: words)."""
        last_is_user = bool(messages) and messages[-1].get("role") == "user"
        if constraint is not None and constraint.forces_calls or (constraint is None and tools and last_is_user):
            function = (constraint.tools if constraint is not None else tools)[0]["function"]
            call = {"name": function["name"], "arguments": example(function.get("parameters") or {})}
            return f"<tool_call>\n{json.dumps(call, ensure_ascii=False)}\n</tool_call>"
        if constraint is not None and constraint.json_schema is not None:
            return json.dumps(example(constraint.json_schema), ensure_ascii=False)
        return None

    def _answer(self, kind, prompt, messages, words, params, adapter, tools=None, raw=False, reasoning=()) -> _Answer:
        n_prompt = self.count_tokens(prompt)
        if n_prompt == 0:
            raise ValueError("the prompt is empty")
        context = self.context_length_for(adapter)
        room = context - n_prompt
        if room < 1:
            raise ValueError(f"the prompt has {n_prompt} tokens; the model's context is {context}")
        self._check_adapter(adapter)
        budget = min(room, params.max_tokens or room)
        if raw:  # pieces of a tool call or JSON, as they are
            pieces = list(words)
        else:
            words = [
                *reasoning,
                f"[{self.describe_adapter(adapter)}]",
                *words,
                *(f"w{i}" for i in range(self.filler_words)),
            ]
            pieces = [word if i == 0 else f" {word}" for i, word in enumerate(words)]
            if self.thoughts and kind == "chat" and params.thinking is not False:
                thought = [word if i == 0 else f" {word}" for i, word in enumerate(self.thoughts.split())]
                pieces[:0] = ["<think>\n", *thought, "\n</think>\n\n"]
        finish = "stop"
        if len(pieces) > budget:
            pieces, finish = pieces[:budget], "length"
        text, cut = "", None
        for i, piece in enumerate(pieces):  # the earliest stop string ends the answer before it
            text += piece
            found = [text.find(stop) for stop in params.stop if stop and stop in text]
            if found:
                cut = (i, min(found))
                break
        if cut is not None:
            i, at = cut
            before = "".join(pieces[:i])
            pieces = [*pieces[:i], text[len(before) : at]]
            finish = "stop"
        record = Received(kind, prompt, messages, params, adapter.name if adapter else None, n_prompt, tools)
        record.text, record.finish_reason = "".join(pieces), finish
        with self._lock:
            self.received.append(record)
        return _Answer(pieces, finish, n_prompt, record)

    def _check_adapter(self, adapter: AdapterRequest | None) -> None:
        if adapter is not None:
            raise ValueError(f"this engine serves the base model only, not adapter {adapter.name!r}")

    def _result(self, answer: _Answer) -> GenerationResult:
        if self.fail_after_chunks is not None:
            raise FakeEngineFailure("the fake engine failed (configured with fail_after_chunks)")
        return GenerationResult("".join(answer.pieces), answer.finish_reason, answer.prompt_tokens, len(answer.pieces))


class FakeStream(Iterator[GenerationChunk]):
    """One answer, a word a chunk; `close()` releases it (counted on the engine)."""

    def __init__(self, engine: FakeEngine, answer: _Answer):
        self.engine, self.answer = engine, answer
        self.sent = 0
        self.closed = False
        self.finished = False
        with engine._lock:
            engine.streams_started += 1

    def __iter__(self) -> FakeStream:
        return self

    def __next__(self) -> GenerationChunk:
        engine, pieces = self.engine, self.answer.pieces
        if self.closed or self.finished:
            raise StopIteration
        if self.sent and engine.gate is not None and not engine.gate.wait(timeout=60):
            raise FakeEngineFailure("the fake engine's gate stayed shut for a minute")
        if engine.chunk_delay_s:
            time.sleep(engine.chunk_delay_s)
        if engine.fail_after_chunks is not None and self.sent >= engine.fail_after_chunks:
            self._finish()
            raise FakeEngineFailure(f"the fake engine failed after {self.sent} chunks")
        text = pieces[self.sent] if self.sent < len(pieces) else ""
        self.sent += 1
        last = self.sent >= len(pieces)
        if last:
            self._finish()
        return GenerationChunk(
            text, self.answer.finish_reason if last else None, self.answer.prompt_tokens, min(self.sent, len(pieces))
        )

    def _finish(self) -> None:
        if not self.finished:
            self.finished = True
            with self.engine._lock:
                self.engine.streams_finished += 1

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with self.engine._lock:
            self.engine.streams_closed += 1
            if not self.finished:
                self.engine.streams_closed_early += 1


@dataclass(frozen=True)
class FakePrepared:
    """An adapter in the fake's slot form."""

    name: str
    rank: int
    fingerprint: str
    nbytes: int


class FakeSlotsEngine(FakeEngine):
    """A fake that holds adapters in slots (as `TransformersEngine` does): answers name the adapter and a
    fingerprint of its weights; a request on an adapter that is not loaded is a ValueError, as on the real one."""

    adapter_support = AdapterSupport.SLOTS

    def __init__(self, *args, slots: int = 8, max_rank: int = 64, **kwargs):
        super().__init__(*args, **kwargs)
        self.slots, self.max_rank, self.max_bytes = slots, max_rank, None
        self._loaded: dict[str, FakePrepared] = {}
        self.loads: list[str] = []  # every load_adapter, in order
        self.unloads: list[str] = []

    def configure_adapters(self, slots: int = 8, max_rank: int = 64, max_bytes: int | None = None) -> None:
        with self._lock:
            if not self._loaded:
                self.slots, self.max_rank, self.max_bytes = slots, max_rank, max_bytes

    def prepare_adapter(self, name: str, config, weights) -> FakePrepared:
        if isinstance(weights, FakePrepared):
            return weights
        rank = int(getattr(config, "r", 0) or 0)
        if rank > self.max_rank:
            raise ValueError(f"adapter {name!r} has rank {rank}, over the slots' max_rank {self.max_rank}")
        digest = hashlib.sha256(str(rank).encode())
        nbytes = 0
        for key in sorted(weights):
            tensor = weights[key]
            digest.update(key.encode())
            raw = tensor.detach().cpu().contiguous().view(-1).float().numpy().tobytes()
            digest.update(raw)
            nbytes += tensor.numel() * tensor.element_size()
        return FakePrepared(name, rank, digest.hexdigest()[:4], nbytes)

    def load_adapter(self, name: str, config, weights) -> None:
        prepared = self.prepare_adapter(name, config, weights)
        with self._lock:
            if name not in self._loaded and len(self._loaded) >= self.slots:
                raise RuntimeError(f"no free adapter slot for {name!r}: all {self.slots} are taken")
            self._loaded[name] = prepared
            self.loads.append(name)

    def unload_adapter(self, name: str) -> None:
        with self._lock:
            if self._loaded.pop(name, None) is not None:
                self.unloads.append(name)

    def loaded_adapters(self) -> list[str]:
        with self._lock:
            return sorted(self._loaded)

    def describe_adapter(self, adapter: AdapterRequest | None) -> str:
        if adapter is None:
            return "base"
        prepared = self._loaded.get(adapter.name)
        return f"{adapter.name}#{prepared.fingerprint if prepared else '----'}"

    def _check_adapter(self, adapter: AdapterRequest | None) -> None:
        if adapter is not None and adapter.name not in self.loaded_adapters():
            raise ValueError(f"adapter {adapter.name!r} is not loaded in this engine")


def tool_call(name: str, **arguments) -> str:
    """The hermes text of one call, as a scripted answer (several joined: parallel calls)."""
    return f"<tool_call>\n{json.dumps({'name': name, 'arguments': arguments}, ensure_ascii=False)}\n</tool_call>"


def example(schema: dict, root: dict | None = None):
    """The smallest value a JSON schema allows, for the subset tests use (types, const, enum, anyOf, $ref, bounds,
    required properties, minItems, minLength)."""
    root = root if root is not None else schema
    if not isinstance(schema, dict):
        return None
    if "$ref" in schema:
        target = root
        for part in schema["$ref"].lstrip("#").strip("/").split("/"):
            target = target[part] if part else target
        return example(target, root)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return example(schema[key][0], root)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        properties = schema.get("properties") or {}
        return {name: example(properties.get(name, {}), root) for name in schema.get("required", [])}
    if kind == "array":
        return [example(schema.get("items") or {}, root) for _ in range(schema.get("minItems", 1))]
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", -1) + 1)
        return int(low) if kind == "integer" else float(low)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return "x" * max(1, schema.get("minLength", 1))
