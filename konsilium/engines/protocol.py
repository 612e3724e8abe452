"""The engine protocol: what every generator (transformers, openai-upstream, vllm) offers the server.

Modelled on vLLM's split: the engine knows tokens, sampling and stopping; the server knows HTTP, roles and
retrieval. Two entry points: plain prompts (`generate`/`stream`, for /v1/completions) and chat messages
(`generate_chat`/`stream_chat`). Local engines render messages with the model's chat template
(`ChatViaTemplate`); an upstream server receives the messages and applies its own template.

Adapters travel beside the sampling params as an explicit `AdapterRequest` (vLLM's `LoRARequest`), and each engine
declares in `adapter_support` what it can do with one, so callers never guess from the methods an engine has.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, Protocol, runtime_checkable

FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class SamplingParams:
    """OpenAI-style sampling settings. `temperature == 0` means greedy; `max_tokens=None` runs to the context end."""

    max_tokens: int | None = 256
    temperature: float = 1.0
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None

    def __post_init__(self) -> None:
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

    def apply_chat_template(self, messages: list[dict]) -> str:
        """Render OpenAI-style messages ([{"role", "content"}]) into a prompt ending where the assistant speaks."""
        ...

    def generate(
        self, prompt: str, params: SamplingParams, adapter: AdapterRequest | None = None
    ) -> GenerationResult: ...

    def stream(
        self, prompt: str, params: SamplingParams, adapter: AdapterRequest | None = None
    ) -> Iterator[GenerationChunk]:
        """Yield text as it is decided; close the iterator to stop early (this releases the engine)."""
        ...

    def count_chat_tokens(self, messages: list[dict]) -> int:
        """Prompt tokens these messages take once rendered (an upper estimate where the tokenizer is remote)."""
        ...

    def generate_chat(
        self, messages: list[dict], params: SamplingParams, adapter: AdapterRequest | None = None
    ) -> GenerationResult: ...

    def stream_chat(
        self, messages: list[dict], params: SamplingParams, adapter: AdapterRequest | None = None
    ) -> Iterator[GenerationChunk]:
        """As `stream`, for chat messages. Raises ValueError for messages the model cannot take."""
        ...


class ChatViaTemplate:
    """Chat methods for engines that own their tokenizer: render the template, then run the plain prompt."""

    def context_length_for(self, adapter: AdapterRequest | None) -> int:
        return self.context_length  # an adapter never changes a local model's window

    def count_chat_tokens(self, messages: list[dict]) -> int:
        return self.count_tokens(self.apply_chat_template(messages))

    def generate_chat(
        self, messages: list[dict], params: SamplingParams, adapter: AdapterRequest | None = None
    ) -> GenerationResult:
        return self.generate(self.apply_chat_template(messages), params, adapter)

    def stream_chat(
        self, messages: list[dict], params: SamplingParams, adapter: AdapterRequest | None = None
    ) -> Iterator[GenerationChunk]:
        return self.stream(self.apply_chat_template(messages), params, adapter)
