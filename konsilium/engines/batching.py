"""Continuous batching for the transformers engine: one scheduler thread owns the model and runs one forward pass
per decode step for all active sequences; requests join (after their own prefill) and leave between steps.

Not transformers' own continuous batching (`generate_batch`/`ContinuousBatchingManager`, read in 5.23): it sets
sampling once per manager and draws from the global RNG (no per-request seed, temperature, top_p), has no stop
strings, and packs all requests into one paged, masked sequence, so a request's numbers depend on its neighbours.

How a batched request keeps its lone result:

* Each sequence owns its KV cache (`SequenceCache`); a registered attention function runs SDPA per sequence over
  its own unpadded keys (no padding, no mask) with its own position ids. Only the row-wise parts (linears, norms,
  lm_head) see the batch: one matmul reads the weights once for all rows, which is the gain on a memory-bound CPU.
* BLAS rounds a row differently with the matmul's row count (MKL on x86: gemv for 1 row, another kernel for 2-3,
  blocks of 4). `invariant_row_multiple` finds, on the first batched step, a row multiple at which every row is
  bit-identical whatever its neighbours and place (4 here), and batches are padded to it.
* A lone request keeps the faster one-row kernels, so it may differ from its batched self in the last bits
  (measured: logits within 6e-5, top-1/top-2 gaps 2e-3 and up, 0 of 24 greedy 48-token answers changed).
  `batch_invariant=True` pads lone requests too: load-independent results, lone decode +70-85 % slower here.
* Prefill runs one sequence at a time, exactly as alone (a long prompt stalls the others meanwhile).

Memory: requests reserve prompt + budget tokens of cache against `max_batch_tokens` and wait in FIFO order (one is
always admitted when none runs). Models the ragged attention cannot serve (not SDPA, sliding windows, recurrent
layers: config check plus a probe against transformers' cache) decode one sequence at a time instead.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import functools
import inspect
import logging
import threading
import weakref
from dataclasses import dataclass
from typing import Protocol

import torch
from transformers import AttentionInterface, DynamicCache
from transformers.integrations.sdpa_attention import sdpa_attention_forward

log = logging.getLogger(__name__)

ATTENTION = "konsilium_ragged"
CACHES_KWARG = "konsilium_caches"  # travels through the model's **kwargs down to the attention function


class Job(Protocol):
    """A request as the scheduler sees it; `choose`, `accept` and `fail` run on the scheduler thread."""

    prompt_ids: list[int]
    reserve: int  # tokens of cache it may need: prompt + completion budget
    cancelled: bool

    def choose(self, logits: torch.Tensor) -> int:
        """The next token from this step's float logits (one row)."""
        ...

    def accept(self, token: int) -> bool:
        """Take the chosen token; True when the request is finished."""
        ...

    def fail(self, error: BaseException) -> None: ...


# --- ragged attention --------------------------------------------------------------------------------------


class SequenceCache:
    """One sequence's keys and values per layer, in buffers that grow by doubling (not a copy per token)."""

    def __init__(self, limit: int):
        self.limit = limit  # the sequence's reserve: never grow past what it may need
        self.keys: dict[int, torch.Tensor] = {}
        self.values: dict[int, torch.Tensor] = {}
        self.lengths: dict[int, int] = {}

    def append(self, layer: int, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        start = self.lengths.get(layer, 0)
        end = start + key.shape[2]
        if layer not in self.keys or end > self.keys[layer].shape[2]:
            size = max(end, min(2 * start, self.limit))
            for store, new in ((self.keys, key), (self.values, value)):
                grown = new.new_empty(*new.shape[:2], size, new.shape[3])
                if start:
                    grown[:, :, :start] = store[layer][:, :, :start]
                store[layer] = grown
        self.keys[layer][:, :, start:end] = key
        self.values[layer][:, :, start:end] = value
        self.lengths[layer] = end
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]


def ragged_attention(module, query, key, value, attention_mask, **kwargs):
    """SDPA per row over that row's own cache; a row without a cache is batch padding and gets zeros."""
    caches = kwargs.pop(CACHES_KWARG, None)
    if caches is None:  # a plain call of the model (not from the scheduler): what it did before
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    outputs = []
    for row, cache in enumerate(caches):
        if cache is None:
            outputs.append(query.new_zeros(1, query.shape[2], query.shape[1], query.shape[3]))
            continue
        keys, values = cache.append(module.layer_idx, key[row : row + 1], value[row : row + 1])
        output, _ = sdpa_attention_forward(module, query[row : row + 1], keys, values, None, **kwargs)
        outputs.append(output)
    return torch.cat(outputs), None


AttentionInterface.register(ATTENTION, ragged_attention)


def attention_kernels(device: torch.device):
    """SDPA without its cuDNN backend on CUDA. cuDNN builds an execution graph for every new key length, and every
    decode step and prompt has one: on an H200 (torch 2.11) each SDPA call then blocked ~5 ms, and one request of a
    random 8-layer Qwen3-MoE decoded at 16-18 tokens/s, against ~80 once the lengths had been seen. Flash and
    memory-efficient attention need no per-shape build."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])


def invariant_row_multiple(model, max_rows: int, candidates=(1, 2, 4, 8, 16)) -> int | None:
    """The smallest row multiple at which each of the model's linear layers gives every row bit-identical results,
    whatever the number of rows (up to `max_rows`, rounded up) and the row's place; None if none does."""
    layers = {}
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            layers.setdefault((module.in_features, module.out_features, module.bias is None), module)
    for multiple in candidates:
        most = -(-max_rows // multiple) * multiple
        if all(_rows_agree(layer, range(multiple, most + 1, multiple)) for layer in layers.values()):
            return multiple
    return None


def _rows_agree(layer: torch.nn.Linear, sizes: range) -> bool:
    """Each size, at two offsets and with its rows rotated, gives what the largest size gives for those rows."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(sizes[-1], layer.in_features, generator=generator).to(layer.weight.device, layer.weight.dtype)
    reference = layer(x)
    for size in sizes:
        for offset in {0, sizes[-1] - size}:
            part = slice(offset, offset + size)
            if not torch.equal(layer(x[part]), reference[part]):
                return False
            if not torch.equal(layer(x[part].roll(1, 0)), reference[part].roll(1, 0)):
                return False
    return True


# --- the scheduler -----------------------------------------------------------------------------------------


@dataclass(eq=False)
class _Sequence:
    job: Job
    cache: object = None  # SequenceCache, or a transformers cache on the fallback path
    length: int = 0  # tokens in the cache
    next_token: int = 0
    done: bool = False


class BatchScheduler:
    """Owns the model. `submit` queues a job; a daemon worker (started on demand, gone after `idle_s` idle) runs
    prefills and batched decode steps and reports through the job's callbacks."""

    def __init__(
        self,
        model,
        max_batch_size: int,  # no defaults here: TransformersEngine passes the configured values
        max_batch_tokens: int,
        batch_invariant: bool = False,
        idle_s: float = 30.0,
    ):
        if max_batch_size < 1 or max_batch_tokens < 1:
            raise ValueError("max_batch_size and max_batch_tokens must be at least 1")
        self.model, self.max_batch_size, self.max_batch_tokens = model, max_batch_size, max_batch_tokens
        self.batch_invariant, self.idle_s = batch_invariant, idle_s
        self._device = next(model.parameters()).device
        self._keep_last = "logits_to_keep" in inspect.signature(model.forward).parameters
        self._ragged: bool | None = None  # decided on the worker, before the first request runs
        self._multiple: int | None = None  # rows are padded to a multiple of this (see `_row_multiple`)
        self.batch_sizes: collections.Counter[int] = collections.Counter()  # decode steps by number of sequences
        self.prefills = 0  # prompts read (cancelled requests are dropped before theirs)
        self._waiting: collections.deque[Job] = collections.deque()
        self._cond = threading.Condition()
        self._worker: threading.Thread | None = None
        # LoRA slots (roles): rows name their adapter; loads and unloads wait for the forward in progress.
        self.lora = None
        self.model_lock = threading.Lock()
        _LIVE.add(self)

    def submit(self, job: Job) -> None:
        with self._cond:
            self._waiting.append(job)
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="konsilium-batch", daemon=True)
                self._worker.start()
            self._cond.notify()

    def wake(self) -> None:
        """A job was cancelled: let an idle worker notice (a busy one checks before every step)."""
        with self._cond:
            self._cond.notify()

    # --- the worker --------------------------------------------------------------------------------------

    def _run(self) -> None:
        active: list[_Sequence] = []
        admitted: list[Job] = []
        try:
            with torch.inference_mode():
                if self._ragged is None:
                    self._setup()
                while not _EXITING.is_set():
                    joining = self._admit(active)
                    if joining is None:
                        return  # idle for idle_s: the next submit starts a new worker
                    admitted.extend(joining)
                    while admitted:
                        job = admitted.pop(0)
                        if job.cancelled:  # closed while the prefills before it ran: its prompt is never read
                            continue
                        sequence = self._prefill(job)
                        if sequence is not None:
                            active.append(sequence)
                    active = [s for s in active if not s.done and not s.job.cancelled]
                    if active:
                        self._decode(active)
            error: BaseException = RuntimeError("the interpreter is exiting")
        except BaseException as exc:  # a bug: nobody may wait forever
            log.exception("the batch scheduler stopped")
            error = exc
        with self._cond:
            stranded = [s.job for s in active if not s.done] + admitted + list(self._waiting)
            self._waiting.clear()
            self._worker = None
        for job in stranded:
            _fail(job, error)

    def _admit(self, active: list[_Sequence]) -> list[Job] | None:
        """Waiting jobs that fit, in FIFO order; None when the worker should exit."""
        with self._cond:
            if not active and not self._waiting:
                self._cond.wait(self.idle_s)
                if not self._waiting:
                    self._worker = None
                    return None
            limit = self.max_batch_size if self._ragged else 1
            reserved = sum(s.job.reserve for s in active)
            admitted: list[Job] = []
            while self._waiting and len(active) + len(admitted) < limit:
                job = self._waiting[0]
                if job.cancelled:  # closed before it started
                    self._waiting.popleft()
                    continue
                if reserved + job.reserve > self.max_batch_tokens and (active or admitted):
                    break  # the head waits for room; nobody overtakes it
                admitted.append(self._waiting.popleft())
                reserved += job.reserve
            return admitted

    def _prefill(self, job: Job) -> _Sequence | None:
        """One sequence alone over its prompt, exactly as a lone request; its first token."""
        sequence = _Sequence(job, length=len(job.prompt_ids))
        self.prefills += 1
        try:
            ids = torch.tensor([job.prompt_ids], device=self._device)
            logits = self._forward(ids, None, [sequence])[0]
            self._advance(sequence, logits)
        except Exception as error:
            _fail(job, error)
            return None
        return None if sequence.done else sequence

    def _decode(self, active: list[_Sequence]) -> None:
        """One token for every active sequence: one forward on the ragged path, one per sequence otherwise."""
        groups = [active] if self._ragged else [[s] for s in active]
        for group in groups:
            self.batch_sizes[len(group)] += 1
            try:
                ids = torch.tensor([[s.next_token] for s in group], device=self._device)
                positions = torch.tensor([[s.length] for s in group], device=self._device)
                logits = self._forward(ids, positions, group)
            except Exception as error:  # e.g. out of memory: everyone in this forward fails, the worker goes on
                for sequence in group:
                    sequence.done = True
                    _fail(sequence.job, error)
                continue
            for sequence, row in zip(group, logits, strict=True):
                sequence.length += 1
                try:
                    self._advance(sequence, row)
                except Exception as error:
                    sequence.done = True
                    _fail(sequence.job, error)

    def _advance(self, sequence: _Sequence, logits: torch.Tensor) -> None:
        if sequence.job.cancelled:
            sequence.done = True
            return
        token = sequence.job.choose(logits)
        sequence.next_token = token
        sequence.done = sequence.job.accept(token)

    def _forward(self, ids: torch.Tensor, positions: torch.Tensor | None, group: list[_Sequence]) -> torch.Tensor:
        """Float logits of each sequence's last position, one row per sequence."""
        with self.model_lock, attention_kernels(self._device):
            return self._forward_locked(ids, positions, group)

    def _forward_locked(self, ids, positions, group: list[_Sequence]) -> torch.Tensor:
        kwargs = {"logits_to_keep": 1} if self._keep_last else {}
        model = self.model
        if not self._ragged:
            (sequence,) = group
            with self._adapters(group, 1):
                cache_name = _cache_name(type(model))
                output = model(input_ids=ids, use_cache=True, **{cache_name: sequence.cache}, **kwargs)
            sequence.cache = getattr(output, cache_name)
            return output.logits[:, -1].float()
        caches = []
        for sequence in group:
            if sequence.cache is None:
                sequence.cache = SequenceCache(sequence.job.reserve)
            caches.append(sequence.cache)
        rows = len(group) if positions is None else self._padded_rows(len(group))  # a prefill is never padded
        if rows > len(group):  # dummy rows: token 0 at position 0, no cache, results dropped
            pad = rows - len(group)
            ids = torch.cat([ids, ids.new_zeros(pad, 1)])
            positions = torch.cat([positions, positions.new_zeros(pad, 1)])
            caches += [None] * pad
        with self._adapters(group, rows):
            output = model(input_ids=ids, position_ids=positions, use_cache=False, **{CACHES_KWARG: caches}, **kwargs)
        return output.logits[: len(group), -1].float()

    def _adapters(self, group: list[_Sequence], rows: int):
        """Each row's LoRA slot for the forward (dummy padding rows are dropped); nothing when no slots exist."""
        if self.lora is None:
            return contextlib.nullcontext()
        return self.lora.serving([getattr(s.job, "adapter", None) for s in group], rows)

    def _padded_rows(self, rows: int) -> int:
        if rows == 1 and not self.batch_invariant:
            return 1  # alone: the one-row kernels, as the serial loop had
        if self._multiple is None:
            self._multiple = self._row_multiple()
        return -(-rows // self._multiple) * self._multiple

    def _row_multiple(self) -> int:
        """Probed on the first batched step (lone requests never pay it), once per model, batch cap and threads:
        BLAS picks its kernels by shape and thread count."""
        known = self.model.__dict__.setdefault("_konsilium_row_multiples", {})
        key = (self.max_batch_size, torch.get_num_threads())
        if key not in known:
            known[key] = invariant_row_multiple(self.model, self.max_batch_size)
            if known[key] is None:
                log.warning("no batch-invariant row multiple: batched results may differ in the last float bits")
        return known[key] or 1

    # --- setup -------------------------------------------------------------------------------------------

    def _setup(self) -> None:
        """Decide between the ragged (batched) path and the one-at-a-time fallback."""
        self._ragged = self.max_batch_size > 1 and _enable_ragged(self.model)

    def warm_up(self) -> None:
        """Decide the path now (its probe runs a few forward passes), not in the first request's time."""
        if self._ragged is None:
            with torch.inference_mode():
                self._setup()


_LIVE: weakref.WeakSet[BatchScheduler] = weakref.WeakSet()
# A step always ends (a prefill of a long prompt on a loaded CPU can take tens of seconds); waiting for it is the
# price of exiting without an abort ("terminate called without an active exception").
EXIT_WAIT_S = 120
_EXITING = threading.Event()


@atexit.register
def _stop_workers() -> None:
    """A daemon thread killed inside a torch kernel aborts the interpreter: let each worker end its step first."""
    _EXITING.set()
    for scheduler in list(_LIVE):
        scheduler.wake()
        worker = scheduler._worker
        if worker is not None:
            worker.join(timeout=EXIT_WAIT_S)


@functools.lru_cache(maxsize=16)
def _cache_name(model_class: type) -> str:
    """The KV-cache argument this transformers takes: newer versions renamed `past_key_values` to `cache` and
    warn (FutureWarning) on every forward that uses the old name."""
    return "cache" if "cache" in inspect.signature(model_class.forward).parameters else "past_key_values"


_SETUP_LOCK = threading.Lock()  # two schedulers on one model (after `configure_batching`) decide once


def _enable_ragged(model) -> bool:
    """Switch the model to the ragged attention if it is a plain full-attention SDPA model and a probe agrees."""
    with _SETUP_LOCK:
        if not hasattr(model, "_konsilium_ragged"):
            model._konsilium_ragged = _try_ragged(model)
        return model._konsilium_ragged


def _try_ragged(model) -> bool:
    config = model.config
    plain = (
        config._attn_implementation == "sdpa"
        and getattr(type(model), "_can_set_attn_implementation", lambda: False)()
        and not getattr(config, "sliding_window", None)
        and set(getattr(config, "layer_types", None) or ["full_attention"]) == {"full_attention"}
        and not getattr(config, "attn_logit_softcapping", None)
    )
    if not plain:
        return False
    model.set_attn_implementation(ATTENTION)
    try:
        if _probe_agrees(model):
            return True
    except Exception:
        log.exception("the ragged attention probe failed")
    model.set_attn_implementation("sdpa")
    log.info("%s: no batched decoding (one sequence at a time)", type(model).__name__)
    return False


def _probe_agrees(model, steps: int = 2) -> bool:
    """A short greedy run through the ragged path and through transformers' cache gives the same logits."""
    device = next(model.parameters()).device
    ids = torch.tensor([[1, 2, 3, 4]], device=device)
    cache, ragged = DynamicCache(config=model.config), SequenceCache(ids.shape[1] + steps)
    length = ids.shape[1]
    for _ in range(steps + 1):
        expected = model(input_ids=ids, use_cache=True, **{_cache_name(type(model)): cache}).logits[0, -1]
        positions = torch.arange(length - ids.shape[1], length, device=device)[None]
        got = model(input_ids=ids, position_ids=positions, use_cache=False, **{CACHES_KWARG: [ragged]}).logits[0, -1]
        if not torch.allclose(expected.float(), got.float(), atol=1e-3, rtol=1e-3):
            return False
        ids = expected.argmax().view(1, 1)
        length += 1
    return True


def _fail(job: Job, error: BaseException) -> None:
    try:
        job.fail(error)
    except Exception:
        log.exception("could not report an error to a request")
