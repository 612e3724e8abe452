"""The engine protocol: what every generator (transformers, openai-upstream, vllm) offers the server.

Modelled on vLLM's split: the engine knows tokens, sampling and stopping; the server knows HTTP, roles and
retrieval. Two entry points: plain prompts (`generate`/`stream`, for /v1/completions) and chat messages
(`generate_chat`/`stream_chat`). Local engines render messages with the model's chat template
(`ChatViaTemplate`); an upstream server receives the messages and applies its own template.

Adapters travel beside the sampling params as an explicit `AdapterRequest` (vLLM's `LoRARequest`), and each engine
declares in `adapter_support` what it can do with one, so callers never guess from the methods an engine has.

Structured output works the same way: `SamplingParams.constraint` says what the text must be (JSON valid against a
schema, hermes-style `<tool_call>` blocks for given tools, or either), and `constraint_support` says how an engine
honours it (a token mask per row, vLLM's structured outputs, an upstream's own parameters) or that it cannot. Chat
calls take the request's `tools` (OpenAI function definitions) beside the messages: local engines show them to the
model through its chat template (`konsilium.structured.template`), an upstream receives them as they are.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, Protocol, runtime_checkable

FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class Constraint:
    """What the generated text must be, decided by the server from OpenAI's `response_format` and `tool_choice`.

    `json_schema`: the answer may be one JSON value valid against it (`{"type": "object"}` for `json_object`).
    `tools`: the OpenAI tool definitions a call may name; the answer may be one or more hermes-style blocks
    `<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>` (one only unless `parallel`). With both, the
    answer is either; with one, it must be that. `response_format` and `tool_choice` keep the request's own values
    for engines that pass them on (an upstream server) instead of constraining tokens themselves.
    """

    json_schema: dict | None = None
    tools: tuple[dict, ...] = ()
    parallel: bool = True
    response_format: dict | None = None
    tool_choice: str | dict | None = None

    def __post_init__(self) -> None:
        if self.json_schema is None and not self.tools:
            raise ValueError("a constraint needs a JSON schema, tools to call, or both")

    @property
    def forces_calls(self) -> bool:
        """The answer must be tool calls (tool_choice `required` or a named function)."""
        return bool(self.tools) and self.json_schema is None


class ConstraintSupport(StrEnum):
    """How an engine honours `SamplingParams.constraint`."""

    NONE = "none"  # it cannot: the server refuses requests that need one
    TOKEN_MASK = "token-mask"  # a grammar masks each row's logits before sampling (transformers engine, llguidance)
    GUIDED = "guided"  # the engine's own structured outputs (vLLM)
    UPSTREAM = "upstream"  # passed on as OpenAI parameters; the upstream constrains (or not) by itself


@dataclass(frozen=True)
class SamplingParams:
    """OpenAI-style sampling settings. `temperature == 0` means greedy; `max_tokens=None` runs to the context end.
    `constraint`: what the text must be (None: free text)."""

    max_tokens: int | None = 256
    temperature: float = 1.0
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    constraint: Constraint | None = None
    thinking: bool | None = None  # the chat template's enable_thinking (None: the template's default)
    thinking_budget: int | None = None  # reasoning tokens at most, then the answer (pipeline.thinking.Budgeted)

    def __post_init__(self) -> None:
        if self.thinking_budget is not None and self.thinking_budget < 1:
            raise ValueError(f"thinking_budget must be at least 1, got {self.thinking_budget}")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {self.max_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if isinstance(self.stop, str):  # OpenAI accepts a single string too
            object.__setattr__(self, "stop", [self.stop])


class AdapterSupport(StrEnum):
    """What an engine does with an `AdapterRequest`."""

    NONE = "none"  # the base model only
    SLOTS = "slots"  # holds adapters in slots of its own: configure_adapters / prepare_adapter / load / unload
    PATHS = "paths"  # loads adapters from folders and keeps its own tiers (vLLM): add_adapter / remove_adapter
    UPSTREAM_MODELS = "upstream-models"  # an adapter is another model name on the upstream server


@dataclass(frozen=True)
class AdapterRequest:
    """The LoRA adapter one request runs with. `name` is the engine's name for it: a slot's adapter (SLOTS), vLLM's
    adapter name loaded from `path` (PATHS), or the upstream model id (UPSTREAM_MODELS)."""

    name: str
    path: str | None = None


@dataclass(frozen=True)
class GenerationChunk:
    """One piece of a streamed answer. The last chunk has `finish_reason` set; counts are running totals."""

    text: str
    finish_reason: FinishReason | None
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class GenerationResult:
    """A whole answer. `text` never contains the stop string that ended it."""

    text: str
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int


@runtime_checkable
class Engine(Protocol):
    """A text generator. Implementations must be safe to call from several threads at once."""

    adapter_support: AdapterSupport
    constraint_support: ConstraintSupport  # absent: NONE (see `constraint_support_of`)

    @property
    def context_length(self) -> int:
        """Maximum prompt + completion tokens of the base model."""
        ...

    def context_length_for(self, adapter: AdapterRequest | None) -> int:
        """Maximum prompt + completion tokens for requests on `adapter` (an upstream model may differ)."""
        ...

    def info(self) -> dict:
        """{"engine", "path", "gguf_file", "architecture", "dtype", "device", "parameters"}."""
        ...

    def count_tokens(self, text: str) -> int: ...

    def apply_chat_template(self, messages: list[dict], tools: list[dict] | None = None) -> str:
        """Render OpenAI-style messages ([{"role", "content"}], assistant `tool_calls`, `tool` results) and the
        tools offered into a prompt ending where the assistant speaks."""
        ...

    def generate(
        self, prompt: str, params: SamplingParams, adapter: AdapterRequest | None = None
    ) -> GenerationResult: ...

    def stream(
        self, prompt: str, params: SamplingParams, adapter: AdapterRequest | None = None
    ) -> Iterator[GenerationChunk]:
        """Yield text as it is decided; close the iterator to stop early (this releases the engine)."""
        ...

    def count_chat_tokens(self, messages: list[dict], tools: list[dict] | None = None) -> int:
        """Prompt tokens these messages (and tools) take once rendered (an upper estimate where the tokenizer is
        remote)."""
        ...

    def generate_chat(
        self,
        messages: list[dict],
        params: SamplingParams,
        adapter: AdapterRequest | None = None,
        tools: list[dict] | None = None,
    ) -> GenerationResult: ...

    def stream_chat(
        self,
        messages: list[dict],
        params: SamplingParams,
        adapter: AdapterRequest | None = None,
        tools: list[dict] | None = None,
    ) -> Iterator[GenerationChunk]:
        """As `stream`, for chat messages. Raises ValueError for messages the model cannot take."""
        ...


def constraint_support_of(engine) -> ConstraintSupport:
    """What `engine` declares (engines from before structured output declare nothing: NONE)."""
    return ConstraintSupport(getattr(engine, "constraint_support", ConstraintSupport.NONE))


class ChatViaTemplate:
    """Chat methods for engines that own their tokenizer: render the template, then run the plain prompt."""

    def context_length_for(self, adapter: AdapterRequest | None) -> int:
        return self.context_length  # an adapter never changes a local model's window

    def count_chat_tokens(self, messages: list[dict], tools: list[dict] | None = None) -> int:
        return self.count_tokens(self.apply_chat_template(messages, tools))

    def render_chat_prompt(self, messages: list[dict], params: SamplingParams, tools: list[dict] | None = None) -> str:
        """The prompt for a chat call: the template with `enable_thinking` when the request says (templates that
        do not read it render the same)."""
        if params.thinking is None:
            return self.apply_chat_template(messages, tools)
        return self.apply_chat_template(messages, tools, enable_thinking=params.thinking)

    def generate_chat(
        self,
        messages: list[dict],
        params: SamplingParams,
        adapter: AdapterRequest | None = None,
        tools: list[dict] | None = None,
    ) -> GenerationResult:
        return self.generate(self.render_chat_prompt(messages, params, tools), params, adapter)

    def stream_chat(
        self,
        messages: list[dict],
        params: SamplingParams,
        adapter: AdapterRequest | None = None,
        tools: list[dict] | None = None,
    ) -> Iterator[GenerationChunk]:
        return self.stream(self.render_chat_prompt(messages, params, tools), params, adapter)
