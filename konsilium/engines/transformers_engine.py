"""A transformers-backed engine: a HF model folder or a GGUF file (transformers' GGUF loader), CPU or CUDA.

Generation is a manual decode loop over per-request KV caches, run by one scheduler thread that batches the decode
steps of concurrent requests into shared forward passes (continuous batching, see `batching.py`). Text handling
stays per request and exact: stop sequences, token counts, per-request seeded sampling. LoRA adapters sit in
slots inside the model (`lora_slots.py`); each batch row names its own, so different roles share one forward.
A request with a `constraint` (JSON schema, forced tool calls) carries its own grammar state: its row's logits are
masked to the tokens the grammar allows before that row is sampled (`structured/grammar.py`); other rows in the
same forward are untouched.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import torch

from ..config import EngineSettings
from .batching import BatchScheduler
from .hf_loading import load_causal_lm
from .lora_slots import LoraSlots, PreparedAdapter
from .protocol import (
    AdapterRequest,
    AdapterSupport,
    ChatViaTemplate,
    ConstraintSupport,
    GenerationChunk,
    GenerationResult,
    SamplingParams,
)

log = logging.getLogger("konsilium.engine")
BATCHING_DEFAULTS = EngineSettings()  # batching defaults live in the settings schema, not here

# Used only when a tokenizer ships no chat template (e.g. a base model): ChatML, which most small models know.
CHATML_FALLBACK = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def render_chat(tokenizer, messages: list[dict], tools: list[dict] | None = None, **template_args) -> str:
    """Messages (and tools) as the prompt the model answers, through its own template (ChatML when it has none);
    `template_args` reach the template, e.g. enable_thinking."""
    from ..structured.template import render

    return render(tokenizer, messages, tools, None if tokenizer.chat_template else CHATML_FALLBACK, **template_args)


def encode_prompt(tokenizer, text: str) -> list[int]:
    # Prompts from the chat template already carry their special tokens; never add a second BOS.
    bos = tokenizer.bos_token
    return tokenizer(text, add_special_tokens=not (bos and text.startswith(bos)))["input_ids"]


def eos_token_ids(model, tokenizer) -> set[int]:
    """Every token that ends an answer: the generation config may list several (an end-of-turn and an EOS)."""
    ids: set[int] = set()
    for source in (model.generation_config.eos_token_id, tokenizer.eos_token_id):
        if isinstance(source, int):
            ids.add(source)
        elif source:
            ids.update(source)
    return ids


class TransformersEngine(ChatViaTemplate):
    """Loads once; `generate` and `stream` may be called from any thread.

    Up to `max_batch_size` requests decode together (1: strictly one after another, as before); their caches may
    reserve `max_batch_tokens` tokens in all (about 46 KB a token for SmolLM2-135M in float32). `batch_invariant`
    makes a lone request compute exactly like a batched one, at the cost of a slower lone decode.
    """

    engine_name = "transformers"
    adapter_support = AdapterSupport.SLOTS
    constraint_support = ConstraintSupport.TOKEN_MASK

    def __init__(
        self,
        path_or_dir: str | Path,
        gguf_file: str | None = None,
        device: str = "cpu",
        dtype: str | None = None,
        max_batch_size: int = BATCHING_DEFAULTS.max_batch_size,
        max_batch_tokens: int = BATCHING_DEFAULTS.max_batch_tokens,
        batch_invariant: bool = BATCHING_DEFAULTS.batch_invariant,
        gguf_cache: bool = BATCHING_DEFAULTS.gguf_cache,
    ):
        loaded = load_causal_lm(path_or_dir, gguf_file, dtype, gguf_cache)
        self.path, self.gguf_file, self.device = loaded.path, loaded.gguf_file, torch.device(device)
        self.tokenizer, self.converted_copy, model = loaded.tokenizer, loaded.converted_copy, loaded.model
        self.model = model.to(self.device).eval()
        self._eos_ids = eos_token_ids(self.model, self.tokenizer)
        self._grammars = None  # structured.grammar.Grammars, made at the first constrained request
        self._grammars_lock = threading.Lock()
        self.configure_batching(max_batch_size, max_batch_tokens, batch_invariant)

    def configure_batching(
        self,
        max_batch_size: int = BATCHING_DEFAULTS.max_batch_size,
        max_batch_tokens: int = BATCHING_DEFAULTS.max_batch_tokens,
        batch_invariant: bool = BATCHING_DEFAULTS.batch_invariant,
    ) -> None:
        """Replace the scheduler; requests already running finish on the old one."""
        previous = getattr(self, "_scheduler", None)
        self._scheduler = BatchScheduler(self.model, max_batch_size, max_batch_tokens, batch_invariant)
        self.batching = {
            "max_batch_size": max_batch_size,
            "max_batch_tokens": max_batch_tokens,
            "batch_invariant": batch_invariant,
        }
        if previous is not None:  # adapters stay where they are
            self._scheduler.lora, self._scheduler.model_lock = previous.lora, previous.model_lock

    def warm_up(self) -> None:
        """Before serving: the batching path is probed here, not while the first client waits."""
        self._scheduler.warm_up()

    # --- adapters (roles): LoRA slots inside the model, one adapter name per batch row ------------------------

    def configure_adapters(self, slots: int = 8, max_rank: int = 64, max_bytes: int | None = None) -> None:
        """Size the LoRA slots; only before the first adapter is loaded (the slots are built then)."""
        current = self._scheduler.lora
        if current is not None and current.injected:
            if (current.slots, current.max_rank) != (slots, max_rank):
                log.warning(
                    "adapter slots are already built (%s of rank %s); keeping them", current.slots, current.max_rank
                )
            return
        self._scheduler.lora = LoraSlots(self.model, slots=slots, max_rank=max_rank, max_bytes=max_bytes)

    def prepare_adapter(self, name: str, config, weights: dict) -> PreparedAdapter:
        """Check an adapter against the model and put it in slot form (done once, when it enters RAM)."""
        if self._scheduler.lora is None:
            self.configure_adapters()
        return self._scheduler.lora.prepare(name, config, weights)

    def load_adapter(self, name: str, config, weights) -> None:
        """Copy an adapter into a free slot (waits for the forward in progress). AdapterLoadError if it can't."""
        if not isinstance(weights, PreparedAdapter):
            weights = self.prepare_adapter(name, config, weights)  # outside the lock: generation goes on
        with self._scheduler.model_lock:
            self._scheduler.lora.load(name, config, weights)

    def unload_adapter(self, name: str) -> None:
        if self._scheduler.lora is not None:
            with self._scheduler.model_lock:
                self._scheduler.lora.unload(name)

    def loaded_adapters(self) -> list[str]:
        lora = self._scheduler.lora
        return sorted(lora.slot_of) if lora is not None else []

    # --- description ---------------------------------------------------------------------------------------

    @property
    def context_length(self) -> int:
        config = self.model.config
        for name in ("max_position_embeddings", "n_positions", "max_seq_len"):
            value = getattr(config, name, None)
            if isinstance(value, int) and value > 0:
                return value
        return 2048

    def info(self) -> dict:
        return {
            "engine": self.engine_name,
            "path": str(self.path),
            "gguf_file": self.gguf_file,
            "architecture": self.model.config.model_type,
            "dtype": str(self.model.dtype).removeprefix("torch."),
            "device": str(self.device),
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "context_length": self.context_length,
            "batching": dict(self.batching),
        }

    # --- text <-> tokens -----------------------------------------------------------------------------------

    def _encode(self, text: str) -> list[int]:
        return encode_prompt(self.tokenizer, text)

    def count_tokens(self, text: str) -> int:
        return len(self._encode(text))

    def apply_chat_template(self, messages: list[dict], tools: list[dict] | None = None, **template_args) -> str:
        return render_chat(self.tokenizer, messages, tools, **template_args)

    def token_mask(self, constraint):
        """A fresh grammar state for one sequence (`structured.grammar.TokenMask`); ConstraintError if the
        constraint cannot be compiled."""
        with self._grammars_lock:
            if self._grammars is None:
                from ..structured.grammar import Grammars

                self._grammars = Grammars(self.tokenizer, self.model.config.vocab_size, self._eos_ids)
        return self._grammars.mask(constraint)

    # --- generation ----------------------------------------------------------------------------------------

    def generate(self, prompt: str, params: SamplingParams, adapter: AdapterRequest | None = None) -> GenerationResult:
        parts, last = [], None
        for last in self.stream(prompt, params, adapter):
            parts.append(last.text)
        return GenerationResult("".join(parts), last.finish_reason, last.prompt_tokens, last.completion_tokens)

    def stream(
        self, prompt: str, params: SamplingParams, adapter: AdapterRequest | None = None
    ) -> Iterator[GenerationChunk]:
        prompt_ids = self._encode(prompt)
        n_prompt = len(prompt_ids)
        if n_prompt == 0:
            raise ValueError("the prompt is empty")
        room = self.context_length - n_prompt
        if room < 1:
            raise ValueError(f"the prompt has {n_prompt} tokens; the model's context is {self.context_length}")
        budget = min(room, params.max_tokens or room)
        name = adapter.name if adapter is not None else None
        if name is not None and name not in self.loaded_adapters():
            raise ValueError(f"adapter {name!r} is not loaded in this engine")
        mask = self.token_mask(params.constraint) if params.constraint is not None else None
        request = _Request(self, prompt_ids, params, budget, name, mask)
        scheduler = self._scheduler
        scheduler.submit(request)
        return _ChunkStream(request, scheduler)


class _Request:
    """One request's text state. The scheduler thread calls `choose`/`accept`/`fail`; chunks (or the error that
    ended the request) go to `chunks`, which the caller's thread reads through `_ChunkStream`."""

    def __init__(
        self,
        engine: TransformersEngine,
        prompt_ids: list[int],
        params: SamplingParams,
        budget: int,
        adapter: str | None,
        mask=None,
    ):
        self.prompt_ids, self.reserve, self.cancelled = prompt_ids, len(prompt_ids) + budget, False
        self._mask = mask  # the constraint's grammar state (None: free text, and nothing here costs a thing)
        self.adapter = adapter  # the LoRA slot's adapter this row runs with (None: the base model)
        self.chunks: queue.SimpleQueue = queue.SimpleQueue()
        self._tokenizer, self._eos_ids = engine.tokenizer, engine._eos_ids
        self._params, self._budget, self._stops = params, budget, [s for s in params.stop if s]
        self._generator = None
        if params.temperature > 0:  # its own generator: the same draws whoever else is in the batch
            self._generator = torch.Generator(device=engine.device)
            if params.seed is not None:
                self._generator.manual_seed(params.seed)
            else:
                self._generator.seed()
        self._out_ids: list[int] = []
        self._emitted = 0  # characters of the decoded completion already sent

    def choose(self, logits: torch.Tensor) -> int:
        if self._mask is not None:  # this row only: the tokens its grammar allows next
            self._mask.apply(logits, self._budget - len(self._out_ids))
        return _sample(logits, self._params, self._generator)

    def accept(self, token: int) -> bool:
        self._out_ids.append(token)
        if self._mask is not None:
            self._mask.consume(token)
        text = self._tokenizer.decode(self._out_ids, skip_special_tokens=True)
        cut = _first_stop(text, self._stops, self._emitted)
        if cut is not None:
            return self._send(text[self._emitted : cut], "stop")
        if self._mask is not None and self._mask.done and token not in self._eos_ids:
            return self._send(text[self._emitted :], "stop")  # the grammar is complete: nothing may follow
        if token in self._eos_ids or len(self._out_ids) >= self._budget:
            return self._send(text[self._emitted :], "stop" if token in self._eos_ids else "length")
        safe = _safe_end(text, self._stops)
        if safe > self._emitted:
            self._send(text[self._emitted : safe], None)
            self._emitted = safe
        return False

    def fail(self, error: BaseException) -> None:
        self.chunks.put(error)

    def _send(self, text: str, finish: str | None) -> bool:
        self.chunks.put(GenerationChunk(text, finish, len(self.prompt_ids), len(self._out_ids)))
        return finish is not None


_CLOSED = object()  # put by `close` to wake a reader blocked on another thread


class _ChunkStream(Iterator[GenerationChunk]):
    """The caller's side: waits for chunks. `close` (from any thread, any number of times) drops the request."""

    def __init__(self, request: _Request, scheduler: BatchScheduler):
        self._request, self._scheduler, self._done = request, scheduler, False

    def __next__(self) -> GenerationChunk:
        if self._done:
            raise StopIteration
        item = self._request.chunks.get()
        if item is _CLOSED:
            raise StopIteration
        if isinstance(item, BaseException):
            self._done = True
            raise RuntimeError(f"generation failed: {item!r}") from item
        if item.finish_reason is not None:
            self._done = True
        return item

    def close(self) -> None:
        if self._done:
            return
        self._done = True
        self._request.cancelled = True
        self._request.chunks.put(_CLOSED)
        self._scheduler.wake()

    def __del__(self) -> None:
        self.close()


def _sample(logits: torch.Tensor, params: SamplingParams, generator) -> int:
    if params.temperature == 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits / params.temperature, dim=-1)
    if params.top_p < 1:
        sorted_probs, order = torch.sort(probs, descending=True)
        before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs
        sorted_probs[before >= params.top_p] = 0  # keep the smallest prefix reaching top_p (at least one token)
        probs = torch.zeros_like(probs).scatter_(0, order, sorted_probs)
    return int(torch.multinomial(probs, 1, generator=generator))


def _first_stop(text: str, stops: list[str], emitted: int) -> int | None:
    """Where the earliest stop string starts, looking only where a new one can be (not inside emitted text)."""
    hits = []
    for stop in stops:
        index = text.find(stop, max(0, emitted - len(stop) + 1))
        if index >= 0:
            hits.append(index)
    return min(hits) if hits else None


def _safe_end(text: str, stops: list[str]) -> int:
    """How much of `text` can be yielded: hold back a tail that may grow into a stop string or a character."""
    end = len(text)
    while end and text[end - 1] == "\ufffd":  # an incomplete UTF-8 sequence: the next token completes it
        end -= 1
    hold = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, end), hold, -1):
            if text[:end].endswith(stop[:size]):
                hold = size
                break
    return end - hold
