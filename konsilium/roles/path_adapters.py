"""Adapters for an engine that keeps its own tiers and loads adapters by folder: vLLM.

vLLM holds `max_loras` adapters in GPU slots and an LRU of `max_cpu_loras` in CPU memory, and reads the rest from
disk when a request names them. So with vLLM our `adapter_cache` settings become its engine arguments
(`vllm_lora_args`), and this pool only does what vLLM does not: preferred tiers and pins at start (`add_lora`,
`pin_lora`), stacked roles written once as a PEFT folder vLLM can read, and (from `AdapterBook`, like
`AdapterCache`) in-flight counts so an unload waits for the answers still using the adapter.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import AdapterCacheSettings
from .cache import AdapterBook, Registered

VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # the max_lora_rank values vLLM accepts


def vllm_lora_args(cache_settings: AdapterCacheSettings, adapter_bytes: list[int]) -> dict:
    """vLLM's LoRA engine arguments for our `adapter_cache` section.

    max_loras = max_loaded (GPU slots; vLLM reserves them at start, so gpu_bytes cannot be spent otherwise);
    max_lora_rank = max_rank rounded up to a value vLLM accepts; max_cpu_loras = how many of the configured
    adapters fit cpu_bytes, smallest first, never below max_loras (vLLM requires that)."""
    max_loras = cache_settings.max_loaded
    rank = next((r for r in VLLM_LORA_RANKS if r >= cache_settings.max_rank), None)
    if rank is None:
        raise ValueError(
            f"adapter_cache.max_rank {cache_settings.max_rank} is over vLLM's largest LoRA rank {VLLM_LORA_RANKS[-1]}"
        )
    fits, used = 0, 0
    for size in sorted(adapter_bytes):
        if used + size > cache_settings.cpu_bytes:
            break
        used, fits = used + size, fits + 1
    return {"max_loras": max_loras, "max_lora_rank": rank, "max_cpu_loras": max(max_loras, fits)}


def vllm_lora_args_for(home) -> dict:
    """`vllm_lora_args` for a home: its adapter_cache section and the sizes of its configured adapters."""
    from .registry import RoleRegistry

    registry = RoleRegistry.open(home)
    sizes = [
        sum(f.stat().st_size for f in spec.path.glob("*.safetensors"))
        for spec in registry.adapters()
        if spec.path.is_dir()
    ]
    return vllm_lora_args(home.config.adapter_cache, sizes)


@dataclass
class _Entry(Registered):
    path: Path | None = None  # the adapter's folder (a stacked role writes its folder the first time)
    added: bool = False  # handed to the engine ahead of use (add_lora)


class PathAdapterPool(AdapterBook):
    entry_type = _Entry

    def __init__(self, engine):
        super().__init__()
        self.engine = engine

    def _free(self, entry: _Entry) -> None:
        self.engine.remove_adapter(entry.name)

    def path(self, name: str) -> Path:
        with self._lock:
            entry = self._get(name)
            if entry.path is None:
                entry.path = Path(entry.source())
            return entry.path

    def warm(self, name: str) -> None:
        """gpu / cpu / pinned: hand the adapter to the engine now (vLLM loads it into its CPU cache; a pin keeps
        it in a GPU slot); disk: nothing until a request names it."""
        path = self.path(name)
        with self._lock:
            entry = self._get(name)
            if entry.preferred == "disk" or entry.added:
                return
        self.engine.add_adapter(name, path, pinned=entry.pinned)
        with self._lock:
            entry.added = True

    def _where_now(self) -> set[str]:
        return self.engine.resident_adapters()

    def _describe(self, entry: _Entry, resident: set[str]) -> dict:
        return {"tier": "engine" if entry.name in resident else "disk", "managed_by": self.engine.engine_name}


def write_stacked(folder: Path, config, weights: dict) -> Path:
    """A stacked role as a PEFT folder (adapter_config.json + adapter_model.safetensors) an engine can read."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(str(folder))
    save_file({k: v.contiguous() for k, v in weights.items()}, str(folder / "adapter_model.safetensors"))
    return folder
