"""Request and response bodies in OpenAI's shapes (chat completions, models, errors).

Unknown request fields are accepted, as OpenAI-compatible servers do (clients send many options), except those
that would change the answer (`serving_base.UNSUPPORTED`). Every string of a request body must be valid Unicode:
JSON can spell a lone UTF-16 surrogate (`"\\ud800"`), which no tokenizer, log or response can encode.
"""

from __future__ import annotations

import json
import re
import time
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer, model_validator
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


class FunctionCall(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    arguments: str = "{}"  # JSON text, as OpenAI carries it (an object sent instead is dumped to text)

    @field_validator("arguments", mode="before")
    @classmethod
    def arguments_as_text(cls, value):
        return value if isinstance(value, str) or value is None else json.dumps(value, ensure_ascii=False)


class ToolCall(BaseModel):
    """A call an assistant message made (in a request's history) or makes (in a response)."""

    model_config = ConfigDict(extra="allow")

    id: str | None = None
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None  # assistant: the calls it made
    tool_call_id: str | None = None  # tool: the call this is the result of

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)

    def as_turn_message(self) -> dict:
        """The message as the pipeline, the engines and the log take it."""
        message: dict = {"role": self.role, "content": self.text()}
        if self.tool_calls:
            message["tool_calls"] = [call.model_dump(include={"id", "type", "function"}) for call in self.tool_calls]
            message["content"] = message["content"] or None
        if self.role == "tool":
            message["tool_call_id"] = self.tool_call_id
            if self.name:
                message["name"] = self.name
        return message


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
    # Tools and structured output: checked in konsilium.structured.request (clear messages naming the field).
    tools: list | None = None
    tool_choice: str | dict | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict | None = None
    chat_template_kwargs: dict | None = None  # vLLM's: {"enable_thinking": false} (the only key konsilium reads)

    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)


# --- chat completions: response ------------------------------------------------------------------------------


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class WithoutNone(BaseModel):
    """Leaves out the fields named in `omit_none` while they are None (OpenAI sends no `tool_calls: null`)."""

    omit_none: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _without_none(self, handler):
        data = handler(self)
        return {key: value for key, value in data.items() if value is not None or key not in self.omit_none}


FinishReason = Literal["stop", "length", "tool_calls"]


class AssistantMessage(WithoutNone):
    omit_none: ClassVar[tuple[str, ...]] = ("tool_calls", "reasoning_content")

    role: Literal["assistant"] = "assistant"
    content: str | None
    reasoning_content: str | None = None  # vLLM's field: the model's `<think>` text, apart from the answer
    tool_calls: list[ToolCall] | None = None


class ChatCompletionChoice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: FinishReason
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


class DeltaFunctionCall(WithoutNone):
    omit_none: ClassVar[tuple[str, ...]] = ("name", "arguments")

    name: str | None = None
    arguments: str | None = None


class DeltaToolCall(WithoutNone):
    """A piece of a streamed call: the first has id, type and name; the next ones only argument text."""

    omit_none: ClassVar[tuple[str, ...]] = ("id", "type", "function")

    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: DeltaFunctionCall | None = None


class DeltaMessage(WithoutNone):
    omit_none: ClassVar[tuple[str, ...]] = ("tool_calls", "reasoning_content")

    role: Literal["assistant"] | None = None
    content: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[DeltaToolCall] | None = None


class ChatCompletionChunkChoice(BaseModel):
    index: int = 0
    delta: DeltaMessage
    finish_reason: FinishReason | None = None
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


# --- responses (POST /v1/responses) --------------------------------------------------------------------------


class ResponsesRequest(RequestBody):
    """OpenAI's Responses API request; `input` items and the tool shapes are read in serving_responses.py."""

    model_config = ConfigDict(extra="allow")

    model: str
    input: str | list[dict] = Field(min_length=1)
    instructions: str | None = None
    previous_response_id: str | None = None
    tools: list | None = None
    tool_choice: str | dict | None = None
    parallel_tool_calls: bool | None = None
    text: dict | None = None
    max_output_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    stream: bool = False
    store: bool | None = None  # accepted: every exchange is logged (that is what previous_response_id reads)
    metadata: dict | None = None  # accepted and echoed
    user: str | None = None
    konsilium: dict | None = Field(default=None, description='e.g. {"retrieval": false, "memory": false}')
    seed: ClassVar[None] = None

    def stop_list(self) -> list[str]:
        return []
