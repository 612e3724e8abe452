"""The openai-upstream engine: any OpenAI-compatible server generates (vLLM, Ollama, llama.cpp, LM Studio, or
another konsilium); konsilium keeps retrieval, roles and its own API in front of it.

Chat goes to the upstream's /v1/chat/completions as messages, so the upstream applies its model's own chat
template; plain prompts go to /v1/completions. There is no tokenizer on this side: token counts are an upper
estimate (`token_estimate`). Tools, `tool_choice` and `response_format` are passed on as the client sent them (the
upstream constrains its output itself); the upstream's tool calls come back as hermes `<tool_call>` text, which
the pipeline reads like any local model's, so one reader serves every engine. The upstream's own 400 (a prompt over
its context, say) comes back as ValueError, which the server answers with a 400; any other failure is an
`UpstreamError` naming the URL and the status.

A thinking budget holds here too (`pipeline.thinking.Budgeted` over the stream, whether the reasoning comes as
`reasoning_content` or inline `<think>` text): past it the stream is closed and `continue_chat` asks for the answer
after the cut reasoning and `</think>`, as vLLM's `continue_final_message`.

Several base URLs are replicas of one model (`upstream_replicas`). Where the upstream loads adapters at run time
(vLLM with runtime LoRA updating, or another konsilium), the engine declares PATHS like the vllm engine: a role's
adapter folder (a stacked role's written folder) is loaded into the replica that answers, on first use
(`upstream_adapters`); otherwise an adapter names an upstream model (UPSTREAM_MODELS). A replica that fails
before a request's first word is skipped and the request goes to another (`_Relay` for streams).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial

import httpx
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
from .upstream_adapters import (
    DEFAULT_MAX_LORAS,
    AdapterLoadError,
    UpstreamAdapters,
    probe_lora_loading,
    reported_max_loras,
)
from .upstream_replicas import Replica, ReplicaPool

__all__ = ["OpenAIUpstreamEngine", "UpstreamError"]

DEFAULT_CONTEXT = 8192
LISTING_TIMEOUT_S = 10  # a model listing is quick: a dead upstream must not hold a request for the full timeout
CONTEXT_KEYS = ("max_model_len", "context_length", "max_context_length")  # vLLM's, then other servers' names
DOWN_STATUSES = (502, 503, 504)  # a replica answering these is skipped, and the request goes to another


class OpenAIUpstreamEngine:
    """Thread-safe (the openai client is). `base_url`: one URL or a list of replicas. `lora_loading`: "auto"
    (ask the upstream), "on" or "off"."""

    engine_name = "openai-upstream"
    constraint_support = ConstraintSupport.UPSTREAM

    def __init__(
        self,
        base_url: str | list[str],
        model: str | None,
        api_key: str | None = None,
        context_length: int = 0,
        timeout_s: float = 600,
        lora_loading: str = "auto",
        max_loras: int = 0,
        dead_s: float = 30,
    ):
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        self.pool = ReplicaPool(urls, api_key, timeout_s, dead_s)
        self.base_url = self.pool.replicas[0].url
        self._client = self.pool.replicas[0].client  # the first replica's, for callers that need one client
        self.timeout_s = timeout_s
        self._configured_context = context_length
        self._contexts: dict[str, int] = {}  # per upstream model
        self._lock = threading.Lock()
        self._konsilium: bool | None = None  # is the upstream itself a konsilium (decided at the first chat)
        self.adapters: UpstreamAdapters | None = None  # set below, once the upstream said whether it loads them
        self.model = model  # None until the upstream's listing names its first model
        self.model = model or self._first_model()
        self.lora_loading, self.lora_reason = self._lora_loading(lora_loading, api_key)
        self.max_loras_source = "engine.upstream_max_loras"
        if self.lora_loading and not max_loras:
            max_loras, self.max_loras_source = self._detected_max_loras(api_key)
        self.adapters = UpstreamAdapters(api_key, max_loras) if self.lora_loading else None
        self.adapter_support = AdapterSupport.PATHS if self.lora_loading else AdapterSupport.UPSTREAM_MODELS

    def _lora_loading(self, setting: str, api_key: str | None) -> tuple[bool, str]:
        if setting != "auto":
            return setting == "on", f"engine.upstream_lora_loading: {setting}"
        reason = ""
        for replica in self.pool.replicas:  # the first one that answers decides
            supported, reason = probe_lora_loading(replica.url, api_key, min(LISTING_TIMEOUT_S, self.timeout_s))
            if supported or not reason.startswith("not reachable"):
                return supported, reason
        return False, reason

    def _detected_max_loras(self, api_key: str | None) -> tuple[int, str]:
        timeout = min(LISTING_TIMEOUT_S, self.timeout_s)
        for replica in self.pool.replicas:
            found = reported_max_loras(replica.url, api_key, timeout)
            if found:
                return found, f"max_lora in {replica.url.removesuffix('/v1')}/metrics"
        return DEFAULT_MAX_LORAS, "default (the upstream reports none)"

    def _model_for(self, adapter: AdapterRequest | None) -> str:
        if adapter is None or self.adapters is not None:  # a loaded adapter runs in the base model's window
            return self.model
        return adapter.name

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
            "lora_loading": self.lora_loading,
            "lora_loading_reason": self.lora_reason,
            "max_loras": self.adapters.max_loras if self.adapters is not None else None,
            "max_loras_source": self.max_loras_source if self.adapters is not None else None,
            "replicas": self.pool.status(),
        }

    def models(self) -> list[str]:
        """The model ids the upstream serves."""
        return [card.id for card in self._listing()]

    def _listing(self) -> list:
        timeout = min(LISTING_TIMEOUT_S, self.timeout_s)
        return self._on_replica(None, lambda client, _: list(client.with_options(timeout=timeout).models.list()))

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
        response = self._on_replica(
            adapter, lambda client, model: client.completions.create(model=model, prompt=prompt, **_sampling(params))
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
        extras = self._chat_extras(params)
        response = self._on_replica(
            adapter,
            lambda client, model: client.chat.completions.create(
                model=model, messages=_sent(messages), **_sampling(params), **_structured(params, tools), **extras
            ),
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
        def start(client, model):
            return client.completions.create(
                model=model, prompt=prompt, stream=True, stream_options={"include_usage": True}, **_sampling(params)
            )

        return _Relay(self, adapter, start, lambda: (lambda choice: choice.text, str), self.count_tokens(prompt))

    def stream_chat(
        self,
        messages: list[dict],
        params: SamplingParams,
        adapter: AdapterRequest | None = None,
        tools: list[dict] | None = None,
    ) -> Iterator[GenerationChunk]:
        return self._stream_chat(messages, params, adapter, tools)

    def continue_chat(
        self,
        messages: list[dict],
        said: str,
        params: SamplingParams,
        adapter: AdapterRequest | None = None,
        tools: list[dict] | None = None,
    ) -> Iterator[GenerationChunk]:
        """The answer to `messages` continued from `said` (a thinking budget's cut reasoning and `</think>`): sent
        as the assistant's unfinished message with vLLM's `continue_final_message`. What comes is the answer, even
        where the upstream's reasoning parser calls it reasoning (it finds no `</think>` in the continuation)."""
        return self._stream_chat(messages, params, adapter, tools, _as_rendered(said))

    def _stream_chat(self, messages, params, adapter, tools, continuing: str | None = None):
        extras = self._chat_extras(params)
        if continuing is not None:
            messages = [*messages, {"role": "assistant", "content": continuing}]
            body = extras.setdefault("extra_body", {})
            body.update(continue_final_message=True, add_generation_prompt=False)

        def start(client, model):
            return client.chat.completions.create(
                model=model,
                messages=_sent(messages),
                stream=True,
                stream_options={"include_usage": True},
                **_sampling(params),
                **_structured(params, tools),
                **extras,
            )

        def reader():  # fresh per attempt: a retry starts the hermes text anew
            calls = _CallsAsText(reasoning_is_answer=continuing is not None)
            return calls.text_of, calls.close

        return _Relay(self, adapter, start, reader, self.count_chat_tokens(messages, tools))

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

    # --- replicas and adapters ----------------------------------------------------------------------------

    # --- PATHS surface (roles/path_adapters.py): adapters loaded into the upstream by folder -----------------

    def add_adapter(self, name: str, path, pinned: bool = False) -> None:
        """Known ahead of use; loaded into a replica when a request there first needs it. Pinned: never evicted."""
        self._adapters().add(name, str(path), pinned)

    def remove_adapter(self, name: str) -> None:
        self._adapters().remove(name, self.pool.replicas)

    def resident_adapters(self) -> set[str]:
        return {name for replica in self.pool.replicas for name in replica.loaded}

    def _adapters(self) -> UpstreamAdapters:
        if self.adapters is None:
            raise ValueError(f"the upstream at {self.base_url} does not load adapters at run time ({self.lora_reason})")
        return self.adapters

    def _on_replica(
        self, adapter: AdapterRequest | None, call: Callable, streaming: bool = False, tried: set | None = None
    ):
        """`call(client, model)` on the least-loaded healthy replica, with the adapter loaded there; an unreachable
        replica (or one answering 502/503/504) is marked down and the next one tried. Streaming: (events, replica,
        done), where `done` ends the request's claim on the replica and its adapter. `tried`: replicas to skip (a
        stream's earlier attempts), added to as replicas fail."""
        tried = set() if tried is None else tried
        while True:
            replica = self.pool.pick(tried)
            claim = [None]  # the adapter name this request holds on the replica, once loaded there
            try:
                with self._errors(replica):
                    result = self._attempt(replica, adapter, call, claim)
            except UpstreamError as exc:
                self._end(replica, claim[0])
                if replica_down(exc):
                    self.replica_failed(replica, str(exc))
                    tried.add(replica)
                    if len(tried) < len(self.pool.replicas):
                        continue
                raise
            except BaseException:
                self._end(replica, claim[0])
                raise
            self.pool.answered(replica)
            if streaming:
                return result, replica, _once(partial(self._end, replica, claim[0]))
            self._end(replica, claim[0])
            return result

    def replica_failed(self, replica: Replica, reason: str) -> None:
        self.pool.failed(replica, reason)
        if self.adapters is not None:
            self.adapters.forget_all(replica)  # if it comes back, it was restarted: it holds none

    def _attempt(self, replica: Replica, adapter: AdapterRequest | None, call: Callable, claim: list):
        """One try on one replica. A 404 for an adapter we had loaded there (the upstream restarted and lost it)
        loads it again and retries once."""
        if adapter is None or self.adapters is None:
            return call(replica.client, self._model_for(adapter))
        try:
            model = self.adapters.ensure(replica, adapter.name, adapter.path)
            claim[0] = adapter.name
            try:
                return call(replica.client, model)
            except openai.NotFoundError:
                self.adapters.forget(replica, adapter.name)
                self.adapters.release(replica, adapter.name)
                claim[0] = None
                model = self.adapters.ensure(replica, adapter.name, adapter.path)
                claim[0] = adapter.name
                return call(replica.client, model)
        except httpx.TransportError as exc:
            raise _Unreachable(replica.url, exc) from exc

    def _end(self, replica: Replica, adapter_name: str | None) -> None:
        if adapter_name is not None:
            self.adapters.release(replica, adapter_name)
        self.pool.done(replica)

    # --- errors --------------------------------------------------------------------------------------------

    def _errors(self, replica: Replica):
        """openai's exceptions as ours: a 400/422 is the caller's input (ValueError), the rest is the upstream's."""
        return _upstream_errors(replica.url, self.timeout_s)


class _Inconclusive(UpstreamError):
    """A failure that does not mark the replica down (a timeout: the request may just be long; an error event
    inside a stream)."""


def replica_down(exc: UpstreamError) -> bool:
    """The replica is gone or refuses work (unreachable, a broken connection, 502/503/504): another may answer."""
    return exc.status is None and not isinstance(exc, _Inconclusive) or exc.status in DOWN_STATUSES


class _Unreachable(Exception):
    def __init__(self, url: str, exc: Exception):
        super().__init__(f"{type(exc).__name__}: {exc}")
        self.url = url


def _once(action: Callable[[], None]) -> Callable[[], None]:
    lock, done = threading.Lock(), []

    def run() -> None:
        with lock:
            if done:
                return
            done.append(True)
        action()

    return run


@contextmanager
def _upstream_errors(base_url: str, timeout_s: float) -> Iterator[None]:
    try:
        yield
    except _Unreachable as exc:
        raise UpstreamError(f"cannot reach the upstream at {exc.url}: {_one_line(str(exc))}") from exc
    except AdapterLoadError as exc:
        raise UpstreamError(str(exc), status=exc.status) from exc
    except openai.APITimeoutError as exc:
        where = _url(exc, base_url)
        raise _Inconclusive(f"the upstream at {where} did not answer in {timeout_s:g}s") from exc
    except openai.APIConnectionError as exc:
        reason = _one_line(str(exc.__cause__ or exc))
        raise UpstreamError(f"cannot reach the upstream at {_url(exc, base_url)}: {reason}") from exc
    except openai.APIStatusError as exc:
        message = _message(exc)
        if exc.status_code in (400, 422):
            raise ValueError(message or f"the upstream at {base_url} rejected the request") from exc
        raise UpstreamError(
            f"the upstream at {_url(exc, base_url)} answered HTTP {exc.status_code}: {message}",
            status=exc.status_code,
        ) from exc
    except openai.APIError as exc:  # e.g. an error event inside a stream, after the 200
        raise _Inconclusive(f"the upstream at {base_url} failed: {_message(exc)}") from exc


class _Relay:
    """Upstream stream events as GenerationChunks. Closing it closes the upstream HTTP stream.

    The chunk carrying the finish reason is held back until the stream ends, so that it can carry the usage
    event that follows it (`include_usage`); servers that send no usage get estimated counts instead.

    A replica that breaks the stream (its connection lost, or the stream ending without a finish reason) before
    any text came is marked down and the request starts once more on another replica: the client saw nothing. Once
    text went out a second start would repeat it, so the break ends the answer with an UpstreamError saying so
    (the server reports it in-band): never a silent truncation.
    """

    def __init__(
        self,
        engine: OpenAIUpstreamEngine,
        adapter: AdapterRequest | None,
        start: Callable,
        reader: Callable[[], tuple[Callable, Callable[[], str]]],
        prompt_tokens: int,
    ):
        self._engine, self._adapter, self._start, self._reader = engine, adapter, start, reader
        self._tried: set[Replica] = set()
        self._closed = False
        # The first attempt opens here, so that a refusal (400, no replica up) reaches the caller at the call.
        self._events, self._replica, self._done = engine._on_replica(adapter, start, True, self._tried)
        self._chunks = self._relay(prompt_tokens)

    def __iter__(self) -> _Relay:
        return self

    def __next__(self) -> GenerationChunk:
        return next(self._chunks)

    def close(self) -> None:
        """Safe from any thread (a cancellation closes streams that other threads are reading): the HTTP stream
        first, which ends a read in progress; the generator only when no thread is inside it (its reader then
        finishes on the closed stream and closes it in turn)."""
        self._closed = True
        self._events.close()
        try:
            self._chunks.close()
        except ValueError:  # "generator already executing": another thread is reading it right now
            pass
        self._done()

    def _relay(self, prompt_tokens: int) -> Iterator[GenerationChunk]:
        retries = 1
        while True:
            completion_tokens, finish, usage, tail = 0, None, None, []
            text_of, closing = self._reader()
            try:
                with self._engine._errors(self._replica):
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
                if finish is None and not self._closed:
                    raise UpstreamError(f"the upstream at {self._replica.url} ended its stream without a finish reason")
                break
            except UpstreamError as exc:
                if self._closed:  # our own close broke the read: nothing to report, nobody is waiting
                    return
                if finish is not None and replica_down(exc):  # the answer was whole; only the usage is missing
                    break
                if not replica_down(exc):
                    raise
                self._engine.replica_failed(self._replica, str(exc))
                if completion_tokens:
                    raise UpstreamError(
                        f"the answer is incomplete: the upstream at {self._replica.url} broke off after "
                        f"{completion_tokens} tokens ({exc})"
                    ) from exc
                self._tried.add(self._replica)
                if not retries or len(self._tried) >= len(self._engine.pool.replicas):
                    raise
            finally:
                self._done()
            retries -= 1
            self._events, self._replica, self._done = self._engine._on_replica(
                self._adapter, self._start, True, self._tried
            )
            if self._closed:  # closed from another thread while the new attempt started: it has no reader
                self._events.close()
                self._done()
                return
        if usage is not None:
            prompt_tokens, completion_tokens = usage.prompt_tokens, usage.completion_tokens
        yield GenerationChunk("".join(tail) + closing(), _finish(finish), prompt_tokens, completion_tokens)


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


def _as_rendered(said: str) -> str:
    """A closed reasoning block spaced as Qwen3-style templates render it (`<think>\n…\n</think>\n\n`): the
    upstream looks for the final message in its rendered prompt to continue it, so it must come out unchanged."""
    block, closed, rest = said.partition("</think>")
    if not closed:
        return said
    reasoning = block.split("<think>", 1)[-1].strip("\n")
    return f"<think>\n{reasoning}\n</think>\n\n{rest.lstrip(chr(10))}"


def _call_text(name: str, arguments: str | None) -> str:
    """An upstream's tool call as the hermes text our reader takes (its arguments text kept exactly)."""
    return f'<tool_call>\n{{"name": {json.dumps(name)}, "arguments": {arguments or "{}"}}}\n</tool_call>'


class _CallsAsText:
    """A stream's tool-call deltas (id and name first, then argument pieces) as hermes text, piece by piece."""

    def __init__(self, reasoning_is_answer: bool = False):
        self._reasoning_is_answer = reasoning_is_answer  # a continued answer: its reasoning block is closed already
        self._open: int | None = None  # the index of the call being written
        self._arguments = False  # whether it got any argument text
        self._thinking = False  # inside the upstream's reasoning, which we write back as a <think> block

    def text_of(self, choice) -> str:
        reasoning = _reasoning_of(choice.delta)
        parts = []
        if reasoning and self._reasoning_is_answer:
            parts.append(reasoning)
        elif reasoning:
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
