"""The openai-upstream engine: any OpenAI-compatible server generates (vLLM, Ollama, llama.cpp, LM Studio, or
another konsilium); konsilium keeps retrieval, roles and its own API in front of it.

Chat goes to the upstream's /v1/chat/completions as messages, so the upstream applies its model's own chat
template; plain prompts go to /v1/completions. There is no tokenizer on this side: token counts are an upper
estimate (`token_estimate`). Tools, `tool_choice` and `response_format` are passed on as the client sent them (the
upstream constrains its output itself); the upstream's tool calls come back as hermes `<tool_call>` text, which
the pipeline reads like any local model's, so one reader serves every engine. The upstream's own 400 (a prompt over
its context, say) comes back as ValueError, which the server answers with a 400; any other failure is an
`UpstreamError` naming the URL and the status.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import openai

from ..errors import UpstreamError
from .protocol import (
    AdapterRequest,
    AdapterSupport,
    ConstraintSupport,
    FinishReason,
    GenerationChunk,
    GenerationResult,
    SamplingParams,
)
from .token_estimate import estimate_chat_tokens, estimate_tokens

__all__ = ["OpenAIUpstreamEngine", "UpstreamError"]

DEFAULT_CONTEXT = 8192
LISTING_TIMEOUT_S = 10  # a model listing is quick: a dead upstream must not hold a request for the full timeout
CONTEXT_KEYS = ("max_model_len", "context_length", "max_context_length")  # vLLM's, then other servers' names
PLACEHOLDER_KEY = "EMPTY"


class OpenAIUpstreamEngine:
    """Thread-safe (the openai client is). A request's adapter names another upstream model (e.g. a vLLM
    `--lora-modules` name for a role)."""

    engine_name = "openai-upstream"
    adapter_support = AdapterSupport.UPSTREAM_MODELS
    constraint_support = ConstraintSupport.UPSTREAM

    def __init__(
        self,
        base_url: str,
        model: str | None,
        api_key: str | None = None,
        context_length: int = 0,
        timeout_s: float = 600,
    ):
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._configured_context = context_length
        # Always an explicit key: given None, the client would read $OPENAI_API_KEY and send the user's OpenAI
        # key to this server. Local servers ignore the placeholder.
        self._client = openai.OpenAI(
            base_url=self.base_url, api_key=api_key or PLACEHOLDER_KEY, max_retries=0, timeout=timeout_s
        )
        # Likewise $OPENAI_ORG_ID, $OPENAI_PROJECT_ID and $OPENAI_ADMIN_KEY are no business of this server.
        self._client.organization = self._client.project = self._client.admin_api_key = None
        self._contexts: dict[str, int] = {}  # per upstream model
        self._lock = threading.Lock()
        self._konsilium: bool | None = None  # is the upstream itself a konsilium (decided at the first chat)
        self.model = model or self._first_model()

    def _model_for(self, adapter: AdapterRequest | None) -> str:
        return adapter.name if adapter is not None else self.model

    # --- description ---------------------------------------------------------------------------------------

    @property
    def context_length(self) -> int:
        """engine.context_length when set; else what the upstream's /v1/models says (vLLM: max_model_len); else 8192."""
        return self.context_length_for(None)

    def context_length_for(self, adapter: AdapterRequest | None) -> int:
        if self._configured_context > 0:
            return self._configured_context
        model = self._model_for(adapter)
        with self._lock:
            if model not in self._contexts:
                self._contexts[model] = self._listed_context(model)
            return self._contexts[model]

    def info(self) -> dict:
        return {
            "engine": self.engine_name,
            "path": self.base_url,
            "gguf_file": None,
            "architecture": None,
            "dtype": None,
            "device": "remote",
            "parameters": None,
            "model": self.model,
        }

    def models(self) -> list[str]:
        """The model ids the upstream serves."""
        return [card.id for card in self._listing()]

    def _listing(self) -> list:
        with self._errors():
            return list(self._client.with_options(timeout=min(LISTING_TIMEOUT_S, self.timeout_s)).models.list())

    def _first_model(self) -> str:
        ids = self.models()
        if not ids:
            raise UpstreamError(f"the upstream at {self.base_url} lists no models: set engine.model to one it serves")
        return ids[0]

    def _listed_context(self, model: str) -> int:
        for card in self._listing():
            if card.id == model:
                for key in CONTEXT_KEYS:
                    value = getattr(card, key, None)
                    if isinstance(value, int) and value > 0:
                        return value
        return DEFAULT_CONTEXT

    # --- text <-> tokens (estimates: the tokenizer is remote) ----------------------------------------------

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text) + 1  # + a BOS token, as a local tokenizer counts it

    def count_chat_tokens(self, messages: list[dict], tools: list[dict] | None = None) -> int:
        calls = [m.get("tool_calls") for m in messages if m.get("tool_calls")]
        extra = estimate_tokens(json.dumps([tools or [], calls], ensure_ascii=False)) if tools or calls else 0
        return estimate_chat_tokens(messages) + extra

    def apply_chat_template(self, messages: list[dict], tools: list[dict] | None = None) -> str:
        """Plain ChatML, for estimates only: the upstream renders chat with its own template."""
        turns = "".join(f"<|im_start|>{m['role']}\n{m.get('content') or ''}<|im_end|>\n" for m in messages)
        return turns + "<|im_start|>assistant\n"

    # --- generation ----------------------------------------------------------------------------------------

    def generate(self, prompt: str, params: SamplingParams, adapter: AdapterRequest | None = None) -> GenerationResult:
        with self._errors():
            response = self._client.completions.create(
                model=self._model_for(adapter), prompt=prompt, **_sampling(params)
            )
        choice = response.choices[0]
        return _result(choice.text or "", choice.finish_reason, response.usage, lambda: self.count_tokens(prompt))

    def generate_chat(
        self,
        messages: list[dict],
        params: SamplingParams,
        adapter: AdapterRequest | None = None,
        tools: list[dict] | None = None,
    ) -> GenerationResult:
        with self._errors():
            response = self._client.chat.completions.create(
                model=self._model_for(adapter),
                messages=_sent(messages),
                **_sampling(params),
                **_structured(params, tools),
                **self._chat_extras(params),
            )
        choice = response.choices[0]
        text = (
            _reasoning_text(choice.message)
            + (choice.message.content or "")
            + "".join(
                _call_text(call.function.name, call.function.arguments) for call in choice.message.tool_calls or []
            )
        )
        return _result(text, choice.finish_reason, response.usage, lambda: self.count_chat_tokens(messages, tools))

    def stream(
        self, prompt: str, params: SamplingParams, adapter: AdapterRequest | None = None
    ) -> Iterator[GenerationChunk]:
        with self._errors():
            events = self._client.completions.create(
                model=self._model_for(adapter),
                prompt=prompt,
                stream=True,
                stream_options={"include_usage": True},
                **_sampling(params),
            )
        return _Relay(events, lambda choice: choice.text, self.count_tokens(prompt), self._errors)

    def stream_chat(
        self,
        messages: list[dict],
        params: SamplingParams,
        adapter: AdapterRequest | None = None,
        tools: list[dict] | None = None,
    ) -> Iterator[GenerationChunk]:
        with self._errors():
            events = self._client.chat.completions.create(
                model=self._model_for(adapter),
                messages=_sent(messages),
                stream=True,
                stream_options={"include_usage": True},
                **_sampling(params),
                **_structured(params, tools),
                **self._chat_extras(params),
            )
        calls = _CallsAsText()
        return _Relay(events, calls.text_of, self.count_chat_tokens(messages, tools), self._errors, calls.close)

    def _chat_extras(self, params: SamplingParams | None = None) -> dict:
        """A konsilium upstream would ground and cite the answer a second time: our prompt already carries the
        notes, so ask it for a plain answer. Other servers get no unknown fields (strict ones reject them), but
        thinking on or off, which vLLM and SGLang take as `chat_template_kwargs`."""
        body: dict = {}
        if params is not None and params.thinking is not None:
            body["chat_template_kwargs"] = {"enable_thinking": params.thinking}
        if self._konsilium is None:
            try:
                self._konsilium = any(getattr(card, "owned_by", None) == "konsilium" for card in self._listing())
            except (UpstreamError, ValueError):
                return {"extra_body": body} if body else {}  # the request itself will report the upstream's trouble
        if self._konsilium:
            body["konsilium"] = {"retrieval": False}
        return {"extra_body": body} if body else {}

    # --- errors --------------------------------------------------------------------------------------------

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """openai's exceptions as ours: a 400/422 is the caller's input (ValueError), the rest is the upstream's."""
        try:
            yield
        except openai.APITimeoutError as exc:
            where = _url(exc, self.base_url)
            raise UpstreamError(f"the upstream at {where} did not answer in {self.timeout_s:g}s") from exc
        except openai.APIConnectionError as exc:
            reason = _one_line(str(exc.__cause__ or exc))
            raise UpstreamError(f"cannot reach the upstream at {_url(exc, self.base_url)}: {reason}") from exc
        except openai.APIStatusError as exc:
            message = _message(exc)
            if exc.status_code in (400, 422):
                raise ValueError(message or f"the upstream at {self.base_url} rejected the request") from exc
            raise UpstreamError(
                f"the upstream at {_url(exc, self.base_url)} answered HTTP {exc.status_code}: {message}",
                status=exc.status_code,
            ) from exc
        except openai.APIError as exc:  # e.g. an error event inside a stream, after the 200
            raise UpstreamError(f"the upstream at {self.base_url} failed: {_message(exc)}") from exc


class _Relay:
    """Upstream stream events as GenerationChunks. Closing it closes the upstream HTTP stream.

    The chunk carrying the finish reason is held back until the stream ends, so that it can carry the usage
    event that follows it (`include_usage`); servers that send no usage get estimated counts instead.
    """

    def __init__(
        self,
        events: openai.Stream,
        text_of: Callable,
        prompt_tokens: int,
        errors: Callable,
        closing: Callable[[], str] = str,
    ):
        self._events = events
        self._closing = closing  # text that ends what the events left open (a tool call's closing tag)
        self._chunks = self._relay(text_of, prompt_tokens, errors)

    def __iter__(self) -> _Relay:
        return self

    def __next__(self) -> GenerationChunk:
        return next(self._chunks)

    def close(self) -> None:
        """Safe from any thread (a cancellation closes streams that other threads are reading): the HTTP stream
        first, which ends a read in progress; the generator only when no thread is inside it (its reader then
        finishes on the closed stream and closes it in turn)."""
        self._events.close()
        try:
            self._chunks.close()
        except ValueError:  # "generator already executing": another thread is reading it right now
            pass

    def _relay(self, text_of: Callable, prompt_tokens: int, errors: Callable) -> Iterator[GenerationChunk]:
        completion_tokens, finish, usage, tail = 0, None, None, []
        with errors():
            for event in self._events:
                usage = event.usage or usage
                if not event.choices:
                    continue
                choice = event.choices[0]
                text = text_of(choice) or ""
                completion_tokens += 1 if text else 0  # one token per event, until the usage says better
                finish = finish or choice.finish_reason
                if finish:
                    tail.append(text)
                elif text:
                    yield GenerationChunk(text, None, prompt_tokens, completion_tokens)
        if usage is not None:
            prompt_tokens, completion_tokens = usage.prompt_tokens, usage.completion_tokens
        yield GenerationChunk("".join(tail) + self._closing(), _finish(finish), prompt_tokens, completion_tokens)


def _sampling(params: SamplingParams) -> dict:
    kwargs: dict = {"temperature": params.temperature, "top_p": params.top_p}
    if params.max_tokens is not None:  # None: the upstream's own limit (its context end)
        kwargs["max_tokens"] = params.max_tokens
    if params.stop:
        kwargs["stop"] = list(params.stop)
    if params.seed is not None:
        kwargs["seed"] = params.seed
    return kwargs


def _sent(messages: list[dict]) -> list[dict]:
    """Messages as any OpenAI-compatible server takes them: `developer` (OpenAI's newer name) as `system`."""
    return [dict(m, role="system") if m.get("role") == "developer" else m for m in messages]


def _structured(params: SamplingParams, tools: list[dict] | None) -> dict:
    """The request's tools, tool_choice and response_format, for the upstream to honour itself."""
    constraint, kwargs = params.constraint, {}
    if tools:
        kwargs["tools"] = list(tools)
        kwargs["tool_choice"] = (constraint.tool_choice if constraint is not None else None) or "auto"
        if constraint is not None and not constraint.parallel:
            kwargs["parallel_tool_calls"] = False
    if constraint is not None and constraint.response_format is not None:
        kwargs["response_format"] = constraint.response_format
    return kwargs


def _call_text(name: str, arguments: str | None) -> str:
    """An upstream's tool call as the hermes text our reader takes (its arguments text kept exactly)."""
    return f'<tool_call>\n{{"name": {json.dumps(name)}, "arguments": {arguments or "{}"}}}\n</tool_call>'


class _CallsAsText:
    """A stream's tool-call deltas (id and name first, then argument pieces) as hermes text, piece by piece."""

    def __init__(self):
        self._open: int | None = None  # the index of the call being written
        self._arguments = False  # whether it got any argument text
        self._thinking = False  # inside the upstream's reasoning, which we write back as a <think> block

    def text_of(self, choice) -> str:
        reasoning = _reasoning_of(choice.delta)
        parts = []
        if reasoning:
            parts.append(reasoning if self._thinking else "<think>" + reasoning)
            self._thinking = True
        if self._thinking and (choice.delta.content or choice.delta.tool_calls):
            parts.append("</think>")
            self._thinking = False
        parts.append(choice.delta.content or "")
        for call in choice.delta.tool_calls or []:
            function = call.function
            if function is not None and function.name and call.index != self._open:
                parts.append(self.close())
                parts.append(f'<tool_call>\n{{"name": {json.dumps(function.name)}, "arguments": ')
                self._open, self._arguments = call.index, False
            if function is not None and function.arguments and self._open is not None:
                parts.append(function.arguments)
                self._arguments = True
        return "".join(parts)

    def close(self) -> str:
        if self._thinking:
            self._thinking = False
            return "</think>"
        if self._open is None:
            return ""
        self._open = None
        return ("" if self._arguments else "{}") + "}\n</tool_call>"


def _reasoning_of(message) -> str:
    """An upstream's reasoning (vLLM with a reasoning parser: `reasoning_content`, newer ones `reasoning`)."""
    extra = getattr(message, "model_extra", None) or {}
    return extra.get("reasoning_content") or extra.get("reasoning") or ""


def _reasoning_text(message) -> str:
    """The reasoning as the `<think>` block our reader splits off again (empty when there was none)."""
    reasoning = _reasoning_of(message)
    return f"<think>{reasoning}</think>" if reasoning else ""


def _finish(reason: str | None) -> FinishReason:
    # Only running out of tokens is "length"; content_filter, tool_calls and the like all mean the answer ended.
    return "length" if reason == "length" else "stop"


def _result(text: str, finish: str | None, usage, prompt_estimate: Callable[[], int]) -> GenerationResult:
    if usage is not None:
        return GenerationResult(text, _finish(finish), usage.prompt_tokens, usage.completion_tokens)
    return GenerationResult(text, _finish(finish), prompt_estimate(), estimate_tokens(text))


def _url(exc: openai.APIError, fallback: str) -> str:
    request = getattr(exc, "request", None)
    return str(request.url) if request is not None else fallback


def _message(exc: openai.APIError) -> str:
    body = exc.body
    message = body.get("message") if isinstance(body, dict) else None
    return _one_line(message if isinstance(message, str) and message else exc.message)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())
