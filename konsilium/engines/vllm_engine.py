"""In-process vLLM: continuous batching and LoRA adapters on CUDA, behind the same engine protocol.

vLLM's AsyncLLMEngine runs on its own asyncio loop in a background thread; the protocol's blocking methods
submit coroutines to that loop (`run_coroutine_threadsafe`), so any number of server threads generate at once
and vLLM batches them. A request's `constraint` becomes vLLM's structured outputs (`structured_outputs_for`): a
JSON schema as `json`, forced tool calls as a `grammar` in llguidance's Lark (vLLM's `guidance` backend, which
its `auto` backend falls back to for grammars xgrammar cannot read). vllm is imported only when this engine is
built: it is an optional extra that needs a CUDA machine, and CI has neither.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

from ..errors import EngineUnavailableError
from .protocol import (
    AdapterRequest,
    AdapterSupport,
    ChatViaTemplate,
    Constraint,
    ConstraintSupport,
    GenerationChunk,
    GenerationResult,
    SamplingParams,
)

INSTALL_HINT = "pip install 'konsilium[vllm]'"


def import_vllm():
    """The vllm module, with its usage reporting off; a clear error where it is not installed."""
    os.environ["VLLM_NO_USAGE_STATS"] = "1"  # vLLM reports usage to its developers by default: nothing may leave
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a missing model must fail, not download
    try:
        import vllm
    except ImportError as exc:
        raise EngineUnavailableError(
            f"engine.kind 'vllm' needs vLLM, which is not installed here ({exc}): run `{INSTALL_HINT}` on a "
            "machine with an NVIDIA GPU and CUDA, or use engine.kind 'transformers' or 'openai-upstream'"
        ) from exc
    return vllm


class VLLMEngine(ChatViaTemplate):
    """A local HF model folder on vLLM. Chat is rendered with the model's own template (`ChatViaTemplate`)."""

    engine_name = "vllm"
    adapter_support = AdapterSupport.PATHS
    constraint_support = ConstraintSupport.GUIDED

    def __init__(
        self,
        model: str | Path,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        dtype: str = "auto",
        context_length: int = 0,
        max_loras: int = 8,
        max_lora_rank: int = 64,
        max_cpu_loras: int | None = None,
        **parallel,
    ):
        """`parallel`: pipeline_parallel_size, distributed_executor_backend, enable_expert_parallel, quantization
        (EngineSettings), passed to vLLM as they are; defaults are left out for vLLM versions without them."""
        self._vllm = import_vllm()  # first: without vLLM nothing else here matters
        if str(model) == "embedded":
            raise ValueError(
                "engine.model 'embedded' is a GGUF for the transformers engine: give vllm a local HF model folder"
            )
        path = Path(model).expanduser()
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"engine.model: {path} is not a HF model folder (no config.json there)")
        from transformers import AutoTokenizer

        from .transformers_engine import CHATML_FALLBACK

        self.path = path.resolve()
        # Our own copy of the model's tokenizer: counts, chat template and prompt ids without vLLM's async API.
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        self._template = None if self.tokenizer.chat_template else CHATML_FALLBACK
        args = self._vllm.AsyncEngineArgs(
            model=str(self.path),
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            dtype=dtype,
            max_model_len=context_length or None,
            enable_lora=True,
            max_loras=max_loras,
            max_lora_rank=max_lora_rank,
            max_cpu_loras=max(max_cpu_loras or max_loras, max_loras),
            **{key: value for key, value in parallel.items() if value not in (None, False, 1)},
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="konsilium-vllm", daemon=True)
        self._thread.start()
        try:
            self._async_engine = self._call(self._start(args))
        except BaseException:
            self._loop.call_soon_threadsafe(self._loop.stop)
            raise
        engine = self._async_engine
        self._model_config = getattr(engine, "model_config", None) or engine.vllm_config.model_config
        self._loras = LoraRequests(max_lora_rank, dtype=self._model_config.dtype)

    async def _start(self, args):
        # Built inside the loop, so vLLM's output handler task belongs to it.
        return self._vllm.AsyncLLMEngine.from_engine_args(args)

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def lora_request(self, adapter: AdapterRequest | None):
        """vLLM's LoRARequest for our adapter handle (vLLM loads the folder on first use); None: the base model.
        The folder is checked first (`LoraRequests`): AdapterError for one that must not reach vLLM."""
        return self._loras.request(adapter)

    # --- adapters by folder (roles/path_adapters.py): vLLM keeps the tiers ----------------------------------

    def add_adapter(self, name: str, path: str | Path, pinned: bool = False) -> None:
        """Load an adapter ahead of use (vLLM's CPU cache); pinned: vLLM never evicts it from its GPU slots."""
        request = self.lora_request(AdapterRequest(name, str(path)))
        self._call(self._async_engine.add_lora(request))
        if pinned:
            self._call(self._async_engine.pin_lora(request.lora_int_id))

    def remove_adapter(self, name: str) -> None:
        lora_id = self._loras.forget(name)  # a later add of the same name gets a fresh id
        if lora_id is not None:
            self._call(self._async_engine.remove_lora(lora_id))

    def resident_adapters(self) -> set[str]:
        """Names vLLM holds now (GPU slots or its CPU cache)."""
        return self._loras.names_of(set(self._call(self._async_engine.list_loras())))

    def close(self) -> None:
        """Stop vLLM's engine processes and the loop thread."""
        self._async_engine.shutdown()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)

    # --- description ---------------------------------------------------------------------------------------

    @property
    def context_length(self) -> int:
        return self._model_config.max_model_len

    def info(self) -> dict:
        return {
            "engine": self.engine_name,
            "path": str(self.path),
            "gguf_file": None,
            "architecture": getattr(self._model_config.hf_config, "model_type", None),
            "dtype": str(self._model_config.dtype).removeprefix("torch."),
            "device": "cuda",
            "parameters": None,
        }

    # --- text <-> tokens -----------------------------------------------------------------------------------

    def _encode(self, text: str) -> list[int]:
        # Prompts from the chat template already carry their special tokens; never add a second BOS.
        bos = self.tokenizer.bos_token
        return self.tokenizer(text, add_special_tokens=not (bos and text.startswith(bos)))["input_ids"]

    def count_tokens(self, text: str) -> int:
        return len(self._encode(text))

    def apply_chat_template(self, messages: list[dict], tools: list[dict] | None = None, **template_args) -> str:
        from ..structured.template import render

        return render(self.tokenizer, messages, tools, self._template, **template_args)

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
        if not prompt_ids:
            raise ValueError("the prompt is empty")
        room = self.context_length - len(prompt_ids)
        if room < 1:
            raise ValueError(f"the prompt has {len(prompt_ids)} tokens; the model's context is {self.context_length}")
        sampling = self._vllm.SamplingParams(
            max_tokens=min(room, params.max_tokens or room),
            temperature=params.temperature,
            top_p=params.top_p,
            stop=list(params.stop) or None,
            seed=params.seed,
            **structured_outputs_for(params.constraint),
        )
        return _Relay(self, prompt_ids, sampling, self.lora_request(adapter))


def structured_outputs_for(constraint: Constraint | None) -> dict:
    """vLLM SamplingParams arguments for a constraint: {} for free text, else {"structured_outputs": ...} with
    vLLM's `StructuredOutputsParams` (vllm >= 0.11) built from `structured_outputs_kwargs`."""
    kwargs = structured_outputs_kwargs(constraint)
    if not kwargs:
        return {}
    from vllm.sampling_params import StructuredOutputsParams

    return {"structured_outputs": StructuredOutputsParams(**kwargs)}


def structured_outputs_kwargs(constraint: Constraint | None) -> dict:
    """The fields of vLLM's StructuredOutputsParams for a constraint (pure, so it is tested without vLLM)."""
    if constraint is None:
        return {}
    if constraint.tools:  # calls (or JSON instead): the hermes grammar, with each tool's argument schema
        from ..structured.grammar import lark_grammar

        return {"grammar": lark_grammar(constraint)}
    if constraint.response_format == {"type": "json_object"}:
        return {"json_object": True}
    return {"json": constraint.json_schema}


class LoraRequests:
    """vLLM's LoRARequest for each of our adapter handles: one integer id per name, and a folder that passed the
    checks the transformers engine makes before an adapter reaches its slots (`check_adapter_folder`: config,
    patterns, ranks up to vLLM's max_lora_rank, finite weights, finite once scaled in the model's dtype). vLLM
    would load NaN weights or an overflowing alpha as they are, and one such adapter in a batch spoils its
    answers. A folder is checked again when its files change (new size, mtime or inode); otherwise once."""

    def __init__(self, max_rank: int, dtype=None, make_request=None):
        self.max_rank, self.dtype = max_rank, dtype
        self._make_request = make_request  # vLLM's LoRARequest (imported on first use), or a stand-in in tests
        self._ids: dict[str, int] = {}  # adapter name -> vLLM's integer id
        self._counter = itertools.count(1)
        self._checked: dict[Path, tuple] = {}  # folder -> the signature of its files when they passed
        self._lock = threading.Lock()

    def request(self, adapter: AdapterRequest | None):
        if adapter is None:
            return None
        if not adapter.path:
            raise ValueError(f"adapter {adapter.name!r} has no folder for vLLM to load")
        folder = Path(adapter.path).expanduser().resolve()
        self.check(folder)
        make_request = self._make_request
        if make_request is None:
            from vllm.lora.request import LoRARequest as make_request
        with self._lock:
            if adapter.name not in self._ids:
                self._ids[adapter.name] = next(self._counter)
            lora_id = self._ids[adapter.name]
        return make_request(adapter.name, lora_id, str(folder))

    def check(self, folder: Path) -> None:
        """AdapterError unless the folder passes every check (skipped while its files are as when they passed)."""
        from ..roles.validation import check_adapter_folder

        signature = _signature(folder)
        with self._lock:
            if signature is not None and self._checked.get(folder) == signature:
                return
        check_adapter_folder(folder, self.max_rank, self.dtype)
        if signature is not None:
            with self._lock:
                self._checked[folder] = signature

    def forget(self, name: str) -> int | None:
        with self._lock:
            return self._ids.pop(name, None)

    def names_of(self, ids: set[int]) -> set[str]:
        with self._lock:
            return {name for name, lora_id in self._ids.items() if lora_id in ids}


def _signature(folder: Path) -> tuple | None:
    """What changes when an adapter folder's files are rewritten; None when one cannot be read (the check says)."""
    from ..roles.validation import CONFIG_FILE, WEIGHTS_FILE

    try:
        stats = [(folder / name).stat() for name in (CONFIG_FILE, WEIGHTS_FILE)]
    except OSError:
        return None
    return tuple((s.st_ino, s.st_size, s.st_mtime_ns, s.st_ctime_ns) for s in stats)


class _Relay:
    """vLLM's cumulative outputs for one request as GenerationChunk deltas; closing it aborts the request."""

    def __init__(self, engine: VLLMEngine, prompt_ids: list[int], sampling, lora_request):
        self._owner, self._n_prompt = engine, len(prompt_ids)
        self._request_id = f"konsilium-{uuid.uuid4().hex}"
        self._outputs = engine._async_engine.generate(
            {"prompt_token_ids": prompt_ids}, sampling, self._request_id, lora_request=lora_request
        )
        self._emitted, self._done = 0, False

    def __iter__(self) -> _Relay:
        return self

    def __next__(self) -> GenerationChunk:
        while not self._done:
            output = self._owner._call(_next_output(self._outputs))
            if output is None:  # vLLM ended the stream without a finished output (it should not)
                self._done = True
                return GenerationChunk("", "stop", self._n_prompt, 0)
            completion = output.outputs[0]
            delta = completion.text[self._emitted :]
            self._emitted = max(self._emitted, len(completion.text))
            n_completion = len(completion.token_ids)
            if output.finished:
                self._done = True
                finish = "length" if completion.finish_reason == "length" else "stop"
                return GenerationChunk(delta, finish, self._n_prompt, n_completion)
            if delta:
                return GenerationChunk(delta, None, self._n_prompt, n_completion)
        raise StopIteration

    def close(self) -> None:
        if not self._done:
            self._done = True
            self._owner._call(self._abort())

    async def _abort(self) -> None:
        with contextlib.suppress(RuntimeError):  # still running: closed from another thread mid-step
            await self._outputs.aclose()  # vLLM aborts a request whose generator is closed
        await self._owner._async_engine.abort(self._request_id)  # and abort() makes sure


async def _next_output(outputs):
    # StopAsyncIteration must not cross into a concurrent Future: end of stream is None.
    try:
        output = await outputs.__anext__()
    except StopAsyncIteration:
        return None
    if output.finished:
        async for _ in outputs:  # run vLLM's generator to its end: left suspended, its cleanup would abort
            pass
    return output
