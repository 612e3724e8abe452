"""Request and response bodies in OpenAI's shapes (chat completions, models, errors).

Unknown request fields are accepted, as OpenAI-compatible servers do (clients send many options), except those
that would change the answer (`serving_base.UNSUPPORTED`). Every string of a request body must be valid Unicode:
JSON can spell a lone UTF-16 surrogate (`"\\ud800"`), which no tokenizer, log or response can encode.
"""

from __future__ import annotations

import re
import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError


def _now() -> int:
    return int(time.time())


# --- errors --------------------------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


# --- request bodies ------------------------------------------------------------------------------------------


SURROGATE = re.compile("[\ud800-\udfff]")


def lone_surrogate(data) -> tuple[str, str] | None:
    """(where, the surrogate escaped) for a string (key or value) in parsed JSON that is not valid Unicode."""
    pending = [("", data)]
    while pending:  # iterative: nesting depth is the client's choice
        where, value = pending.pop()
        if isinstance(value, str):
            found = SURROGATE.search(value)
            if found is not None:
                return where or "body", f"\\u{ord(found.group()):04x}"
        elif isinstance(value, dict):
            for key, item in value.items():
                # the key itself may be the bad string: the path must stay printable
                path = f"{where}.{key}" if where else str(key)
                path = path.encode("utf-8", "backslashreplace").decode("utf-8")
                pending.append((path, key))
                pending.append((path, item))
        elif isinstance(value, list):
            pending.extend((f"{where}.{index}" if where else str(index), item) for index, item in enumerate(value))
    return None


class RequestBody(BaseModel):
    """A request body: checked for text that is not valid Unicode before any field is read."""

    @model_validator(mode="before")
    @classmethod
    def reject_surrogates(cls, data):
        found = lone_surrogate(data)
        if found is not None:
            where, escaped = found
            raise PydanticCustomError(
                "invalid_unicode",
                "{param} contains a lone UTF-16 surrogate ({surrogate}), which is not valid Unicode text; "
                "send well-formed UTF-8",
                {"param": where, "surrogate": escaped},
            )
        return data


# --- models --------------------------------------------------------------------------------------------------


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = Field(default_factory=_now)
    owned_by: str = "konsilium"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


# --- chat completions: request -------------------------------------------------------------------------------


class TextPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatCompletionRequest(RequestBody):
    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = Field(default=1, ge=1, le=1, description="only one choice is supported")
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    konsilium: dict | None = Field(default=None, description='e.g. {"retrieval": false | {"collections": [..]}}')

    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)


# --- chat completions: response ------------------------------------------------------------------------------


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatCompletionChoice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length"]
    logprobs: None = None
    role: dict | None = None  # konsilium, dual answers only: who gave this choice ({"id", "label"})


class ChatCompletionResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=_now)
    model: str
    choices: list[ChatCompletionChoice]
    usage: Usage
    sources: list[dict] | None = None  # konsilium: the notes the answer was grounded in
    memories: list[dict] | None = None  # konsilium: the user's memories the prompt carried
    role: dict | None = None  # konsilium: the role that answered ({"id", "label", "routing"})


class DeltaMessage(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChatCompletionChunkChoice(BaseModel):
    index: int = 0
    delta: DeltaMessage
    finish_reason: Literal["stop", "length"] | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatCompletionChunkChoice]
    usage: Usage | None = None
    sources: list[dict] | None = None  # konsilium: on the chunk with finish_reason and the usage chunk
    memories: list[dict] | None = None  # konsilium: with `sources`
    role: dict | None = None  # konsilium: on the first and the last chunks


# --- completions (legacy) ------------------------------------------------------------------------------------


class CompletionRequest(RequestBody):
    model_config = ConfigDict(extra="allow")

    model: str
    prompt: str | list[str]
    max_tokens: int | None = Field(default=16, ge=1)  # OpenAI's default for this endpoint
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = Field(default=1, ge=1, le=1, description="only one choice per prompt is supported")
    echo: bool = False
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None

    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)


class CompletionChoice(BaseModel):
    index: int = 0
    text: str
    finish_reason: Literal["stop", "length"] | None
    logprobs: None = None


class CompletionResponse(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int = Field(default_factory=_now)
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None


# --- embeddings ----------------------------------------------------------------------------------------------


class EmbeddingRequest(RequestBody):
    model_config = ConfigDict(extra="allow")

    model: str
    input: str | list[str]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None

    def inputs(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


# --- adapters (vLLM's endpoint names) ------------------------------------------------------------------------


class LoadLoraAdapterRequest(RequestBody):
    lora_name: str
    lora_path: str


class UnloadLoraAdapterRequest(RequestBody):
    lora_name: str
