"""A transformers-backed engine: a HF model folder or a GGUF file (transformers' GGUF loader), CPU or CUDA.

Generation is a manual decode loop over a KV cache, one request at a time behind a lock: that keeps stop
sequences, token counts and seeded sampling exact, and concurrent callers can never corrupt each other's cache.
Continuous batching is not done (yet): concurrent requests queue on the lock. PEFT adapters are not done yet.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from .protocol import ChatViaTemplate, GenerationChunk, GenerationResult, SamplingParams

# No downloads at run time, ever: a missing file must fail, not fetch.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}

# Used only when a tokenizer ships no chat template (e.g. a base model): ChatML, which most small models know.
CHATML_FALLBACK = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


class TransformersEngine(ChatViaTemplate):
    """Loads once; `generate` and `stream` may be called from any thread."""

    engine_name = "transformers"

    def __init__(
        self, path_or_dir: str | Path, gguf_file: str | None = None, device: str = "cpu", dtype: str | None = None
    ):
        path = Path(path_or_dir).expanduser()
        if path.is_file() and path.suffix == ".gguf":
            path, gguf_file = path.parent, path.name
        if not path.exists():
            raise FileNotFoundError(f"model path does not exist: {path}")
        if gguf_file and not (path / gguf_file).is_file():
            raise FileNotFoundError(f"GGUF file not found: {path / gguf_file}")
        if dtype not in (None, *DTYPES):
            raise ValueError(f"unknown dtype {dtype!r} (choose from {', '.join(DTYPES)})")
        self.path, self.gguf_file, self.device = path.resolve(), gguf_file, torch.device(device)
        transformers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()
        kwargs = {"gguf_file": gguf_file} if gguf_file else {}
        self.tokenizer = AutoTokenizer.from_pretrained(self.path, **kwargs)
        if dtype:
            kwargs["dtype"] = DTYPES[dtype]
        # transformers' GGUF converter draws a tqdm bar that ignores its progress-bar switch: keep stderr clean.
        with contextlib.redirect_stderr(io.StringIO()):
            model = AutoModelForCausalLM.from_pretrained(self.path, **kwargs)
        self.model = model.to(self.device).eval()
        self._eos_ids = self._find_eos_ids()
        self._lock = threading.Lock()

    def _find_eos_ids(self) -> set[int]:
        ids: set[int] = set()
        for source in (self.model.generation_config.eos_token_id, self.tokenizer.eos_token_id):
            if isinstance(source, int):
                ids.add(source)
            elif source:
                ids.update(source)
        return ids

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
        }

    # --- text <-> tokens -----------------------------------------------------------------------------------

    def _encode(self, text: str) -> list[int]:
        # Prompts from the chat template already carry their special tokens; never add a second BOS.
        bos = self.tokenizer.bos_token
        add_special = not (bos and text.startswith(bos))
        return self.tokenizer(text, add_special_tokens=add_special)["input_ids"]

    def count_tokens(self, text: str) -> int:
        return len(self._encode(text))

    def apply_chat_template(self, messages: list[dict]) -> str:
        template = None if self.tokenizer.chat_template else CHATML_FALLBACK
        return self.tokenizer.apply_chat_template(
            messages, chat_template=template, tokenize=False, add_generation_prompt=True
        )

    # --- generation ----------------------------------------------------------------------------------------

    def generate(self, prompt: str, params: SamplingParams) -> GenerationResult:
        parts, last = [], None
        for last in self.stream(prompt, params):
            parts.append(last.text)
        return GenerationResult("".join(parts), last.finish_reason, last.prompt_tokens, last.completion_tokens)

    def stream(self, prompt: str, params: SamplingParams) -> Iterator[GenerationChunk]:
        prompt_ids = self._encode(prompt)
        n_prompt = len(prompt_ids)
        if n_prompt == 0:
            raise ValueError("the prompt is empty")
        room = self.context_length - n_prompt
        if room < 1:
            raise ValueError(f"the prompt has {n_prompt} tokens; the model's context is {self.context_length}")
        budget = min(room, params.max_tokens or room)
        return self._stream(prompt_ids, params, budget)

    def _stream(self, prompt_ids: list[int], params: SamplingParams, budget: int) -> Iterator[GenerationChunk]:
        n_prompt = len(prompt_ids)
        stops = [s for s in params.stop if s]
        generator = None
        if params.temperature > 0:
            generator = torch.Generator(device=self.device)
            if params.seed is not None:
                generator.manual_seed(params.seed)
            else:
                generator.seed()
        # A plain Lock (not RLock): starlette may resume this generator on another thread than the one that
        # started it, and a Lock may be released from any thread.
        with self._lock:
            out_ids: list[int] = []
            emitted = 0  # characters of the decoded completion already yielded
            cache, next_input = None, prompt_ids
            while True:
                with torch.inference_mode():
                    token, cache = self._step(next_input, cache, params, generator)
                out_ids.append(token)
                next_input = [token]
                is_eos = token in self._eos_ids
                text = self.tokenizer.decode(out_ids, skip_special_tokens=True)
                cut = _first_stop(text, stops, emitted)
                if cut is not None:
                    yield GenerationChunk(text[emitted:cut], "stop", n_prompt, len(out_ids))
                    return
                if is_eos or len(out_ids) >= budget:
                    finish = "stop" if is_eos else "length"
                    yield GenerationChunk(text[emitted:], finish, n_prompt, len(out_ids))
                    return
                safe = _safe_end(text, stops)
                if safe > emitted:
                    yield GenerationChunk(text[emitted:safe], None, n_prompt, len(out_ids))
                    emitted = safe

    def _step(self, input_ids: list[int], cache, params: SamplingParams, generator) -> tuple[int, object]:
        ids = torch.tensor([input_ids], device=self.device)
        output = self.model(input_ids=ids, past_key_values=cache, use_cache=True)
        logits = output.logits[0, -1].float()
        return _sample(logits, params, generator), output.past_key_values


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
