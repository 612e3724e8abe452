"""Adapters for an engine that keeps its own tiers and loads adapters by folder: vLLM.

vLLM holds `max_loras` adapters in GPU slots and an LRU of `max_cpu_loras` in CPU memory, and reads the rest from
disk when a request names them. So with vLLM our `adapter_cache` settings become its engine arguments
(`vllm_lora_args`), and this pool only does what vLLM does not: preferred tiers and pins at start (`add_lora`,
`pin_lora`), stacked roles written once as a PEFT folder vLLM can read, and in-flight counts so an unload waits
for the answers still using the adapter. Same interface as `AdapterCache`, so `RoleService` uses either.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .cache import TIERS, UnknownAdapterError

VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # the max_lora_rank values vLLM accepts


def vllm_lora_args(cache_settings: dict, adapter_bytes: list[int]) -> dict:
    """vLLM's LoRA engine arguments for our `adapter_cache` section.

    max_loras = max_loaded (GPU slots; vLLM reserves them at start, so gpu_bytes cannot be spent otherwise);
    max_lora_rank = max_rank rounded up to a value vLLM accepts; max_cpu_loras = how many of the configured
    adapters fit cpu_bytes, smallest first, never below max_loras (vLLM requires that)."""
    max_loras = cache_settings["max_loaded"]
    rank = next((r for r in VLLM_LORA_RANKS if r >= cache_settings["max_rank"]), None)
    if rank is None:
        raise ValueError(
            f"adapter_cache.max_rank {cache_settings['max_rank']} is over vLLM's largest LoRA rank "
            f"{VLLM_LORA_RANKS[-1]}"
        )
    fits, used = 0, 0
    for size in sorted(adapter_bytes):
        if used + size > cache_settings["cpu_bytes"]:
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
    return vllm_lora_args(home.settings["adapter_cache"], sizes)


@dataclass
class _Entry:
    name: str
    source: Callable[[], Path]  # the adapter's folder (a stacked role writes its folder the first time)
    preferred: str
    pinned: bool
    size: int
    path: Path | None = None
    refs: int = 0
    last_used: float = 0.0
    removed: bool = False
    added: bool = False  # handed to the engine ahead of use (add_lora)


class PathAdapterPool:
    def __init__(self, engine):
        self.engine = engine
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.RLock()
        self._released = threading.Condition(self._lock)

    def register(
        self,
        name: str,
        source: Callable[[], Path],
        preferred: str = "cpu",
        pinned: bool = False,
        size_hint: int = 0,
        warm: bool = True,
    ) -> None:
        if preferred not in TIERS:
            raise ValueError(f"adapter {name}: tier must be one of {', '.join(TIERS)}, got {preferred!r}")
        with self._lock:
            if name in self._entries and not self._entries[name].removed:
                raise ValueError(f"adapter {name!r} is already registered")
            self._entries[name] = _Entry(name, source, "gpu" if pinned else preferred, pinned, size_hint)
        if warm:
            self.warm(name)

    def unregister(self, name: str, wait_s: float = 300.0) -> None:
        with self._lock:
            entry = self._get(name)
            entry.removed = True
            deadline = time.monotonic() + wait_s
            while entry.refs > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"adapter {name!r} is still in use after {wait_s:.0f} s")
                self._released.wait(left)
            del self._entries[name]
        self.engine.remove_adapter(name)

    def names(self) -> list[str]:
        with self._lock:
            return [name for name, entry in self._entries.items() if not entry.removed]

    def __contains__(self, name: str) -> bool:
        with self._lock:
            return name in self._entries and not self._entries[name].removed

    def path(self, name: str) -> Path:
        with self._lock:
            entry = self._get(name)
            if entry.path is None:
                entry.path = Path(entry.source())
            return entry.path

    @contextmanager
    def use(self, name: str) -> Iterator[None]:
        self.acquire(name)
        try:
            yield
        finally:
            self.release(name)

    def acquire(self, name: str) -> None:
        with self._lock:
            entry = self._get(name)
            entry.refs += 1
            entry.last_used = time.monotonic()

    def release(self, name: str) -> None:
        with self._lock:
            entry = self._entries.get(name)
            if entry is not None:
                entry.refs = max(0, entry.refs - 1)
                entry.last_used = time.monotonic()
                self._released.notify_all()

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

    def prefetch(self, name: str) -> threading.Thread:
        thread = threading.Thread(target=self._quiet_warm, args=(name,), daemon=True, name=f"prefetch-{name}")
        thread.start()
        return thread

    def _quiet_warm(self, name: str) -> None:
        try:
            self.path(name)
        except Exception:  # a prefetch is a hint; the real use reports the error
            pass

    def status(self) -> list[dict]:
        resident = self.engine.resident_adapters()
        with self._lock:
            return [
                {
                    "name": e.name,
                    "tier": "engine" if e.name in resident else "disk",
                    "preferred_tier": e.preferred,
                    "pinned": e.pinned,
                    "bytes": e.size,
                    "in_use": e.refs,
                    "idle_s": round(time.monotonic() - e.last_used, 3) if e.last_used else None,
                    "managed_by": self.engine.engine_name,
                }
                for e in self._entries.values()
                if not e.removed
            ]

    def _get(self, name: str) -> _Entry:
        entry = self._entries.get(name)
        if entry is None or entry.removed:
            raise UnknownAdapterError(f"unknown adapter {name!r}; registered: {', '.join(self.names()) or 'none'}")
        return entry


def write_stacked(folder: Path, config, weights: dict) -> Path:
    """A stacked role as a PEFT folder (adapter_config.json + adapter_model.safetensors) an engine can read."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(str(folder))
    save_file({k: v.contiguous() for k, v in weights.items()}, str(folder / "adapter_model.safetensors"))
    return folder
