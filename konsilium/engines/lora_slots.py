"""LoRA adapters held in fixed slots inside the model, so loading one is a copy and a mixed batch is one pass.

vLLM keeps `max_loras` slots of rank `max_lora_rank` per LoRA layer and copies an adapter into a free one; its
batched LoRA op (Punica) then gathers each row's factors, so rows on different adapters share one forward at a
cost that does not grow with the number of distinct adapters. We do the same in plain torch:

- like modules across the layers (every `q_proj`, every `down_proj`...) share two tensors, A
  `[slots, max_rank, layers, in]` and Bᵀ `[slots, max_rank, layers, out]`: rank-major, so an adapter of rank r
  is one contiguous block per group and slot. Each target Linear gets a forward hook that adds the LoRA update
  of each row's slot (no PEFT wrapper, no module surgery: the model's names and state dict stay as they are);
- an adapter is *prepared* once when it enters RAM (keys parsed, shapes checked, scale folded into Bᵀ, cast to
  the model's dtype, laid out in blocks, pinned for a GPU) and *loaded* by one `_foreach_copy_` of 2 blocks per
  group (14 for a Llama, not 420 tensors); rows a previous adapter used past r are zeroed (A too: NaN × 0 is
  NaN), and factors holding NaN or infinity are refused when prepared;
- a batch names each row's adapter (`serving`): no adapter anywhere → the hooks return at once (the base
  model's speed); one adapter for every row → two small matmuls per layer; a mix → each row's factors gathered
  (`index_select`) and two batched matmuls, the same ~6 ops per layer for 2 or 16 distinct adapters.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

import torch

DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
_PREFIX = "base_model.model."  # PEFT's key prefix in a saved state dict
_SUFFIXES = ((".lora_A.weight", 0), (".lora_B.weight", 1))


class AdapterLoadError(ValueError):
    """An adapter that cannot go into a slot (rank, targets, shapes): the server keeps serving."""


@dataclass
class PreparedAdapter:
    """An adapter in the form the slots take: per group of like modules, A `[r, n, in]` and scaled Bᵀ
    `[r, n, out]` (n = the group's modules; zeros where the adapter leaves a module alone), contiguous."""

    name: str
    groups: dict[str, tuple[torch.Tensor, torch.Tensor]]

    @property
    def ranks(self) -> dict[str, int]:
        """Rows each group fills (the largest module rank in it)."""
        return {key: a.shape[0] for key, (a, _) in self.groups.items()}

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for pair in self.groups.values() for t in pair)


@dataclass
class _Rows:
    """Which slot each row of the current forward uses."""

    rank: int  # the largest rank among the slots in use: factors are read up to it
    single: int | None  # every row on this slot (dummy padding rows don't matter)
    index: torch.Tensor | None = None  # per row, for the gathered path
    drop: torch.Tensor | None = None  # rows x 1 x 1, True for rows without an adapter: their update is zeroed


class _Group:
    """The slots of one kind of module across the layers (e.g. every `q_proj`), laid out rank-major so an
    adapter of rank r fills one contiguous block per slot: `[slots, max_rank, n, in]` and `[..., out]`."""

    def __init__(self, paths: list[str], module: torch.nn.Linear, slots: int, max_rank: int):
        weight = module.weight
        self.paths, self.position = paths, {path: i for i, path in enumerate(paths)}
        self.in_features, self.out_features = module.in_features, module.out_features
        options = {"dtype": weight.dtype, "device": weight.device}
        self.a = torch.zeros(slots, max_rank, len(paths), self.in_features, **options)
        self.bt = torch.zeros(slots, max_rank, len(paths), self.out_features, **options)


class _Factors:
    """One Linear's view of its group's slots; its forward hook adds the rows' LoRA updates."""

    def __init__(self, owner: LoraSlots, group: _Group, position: int):
        self.owner = owner
        self.a = group.a[:, :, position]  # slots x max_rank x in (strided views: no copies)
        self.bt = group.bt[:, :, position]

    def hook(self, module, args, output):
        rows = self.owner.rows
        if rows is None:
            return output
        x, r = args[0], rows.rank
        if rows.single is not None:
            return output + (x @ self.a[rows.single, :r].T) @ self.bt[rows.single, :r]
        if x.dim() != 3 or x.shape[0] != rows.index.shape[0]:  # a model that flattens tokens would mix rows up
            raise RuntimeError(f"mixed-adapter batches need [rows, tokens, features] inputs, got {tuple(x.shape)}")
        a = self.a[:, :r].index_select(0, rows.index)  # rows x r x in
        bt = self.bt[:, :r].index_select(0, rows.index)  # rows x r x out
        delta = (x @ a.transpose(1, 2)) @ bt
        if rows.drop is not None:  # a select, not `* 0`: NaN × 0 is NaN, and a base row must stay untouched
            delta = delta.masked_fill(rows.drop, 0)
        return output + delta


def group_key(path: str) -> str:
    """Modules that differ only in their layer numbers form one group: model.layers.#.self_attn.q_proj."""
    return re.sub(r"\.\d+(?=\.|$)", ".#", path)


class LoraSlots:
    def __init__(
        self,
        model: torch.nn.Module,
        slots: int = 8,
        max_rank: int = 64,
        targets=DEFAULT_TARGETS,
        max_bytes: int | None = None,
    ):
        if slots < 1 or max_rank < 1:
            raise ValueError("slots and max_rank must be at least 1")
        self.model, self.slots, self.max_rank, self.targets = model, slots, max_rank, tuple(targets)
        self.max_bytes = max_bytes  # the slots are allocated whole at the first load: refuse what cannot fit
        self.modules: dict[str, torch.nn.Linear] = {
            name: module
            for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and name.rsplit(".", 1)[-1] in self.targets
        }
        if not self.modules:
            raise ValueError(f"the model has no Linear layers named {', '.join(self.targets)}")
        self.group_paths: dict[str, list[str]] = {}
        for path, module in self.modules.items():  # like modules of another shape would not stack: own group
            key = group_key(path)
            if key in self.group_paths and self.modules[self.group_paths[key][0]].weight.shape != module.weight.shape:
                key = path
            self.group_paths.setdefault(key, []).append(path)
        self.group_of = {path: key for key, paths in self.group_paths.items() for path in paths}
        self.group_position = {path: i for paths in self.group_paths.values() for i, path in enumerate(paths)}
        weight = next(iter(self.modules.values())).weight
        self.dtype, self.device = weight.dtype, weight.device
        self.groups: dict[str, _Group] = {}
        self.slot_of: dict[str, int] = {}
        self.free = list(range(slots))
        self.written: list[dict[str, int]] = [{} for _ in range(slots)]  # per slot: group -> Bᵀ rows in use
        self.rows: _Rows | None = None  # set by `serving` for one forward (the caller holds the model lock)

    @property
    def injected(self) -> bool:
        return bool(self.groups)

    @property
    def nbytes(self) -> int:
        """What the slots take on the compute device once built: slots × max_rank × Σ(in + out) × dtype."""
        features = sum(m.in_features + m.out_features for m in self.modules.values())
        return self.slots * self.max_rank * features * torch.empty((), dtype=self.dtype).element_size()

    def inject(self) -> None:
        """Allocate the slots and hook them into the model (once; the caller holds the engine's model lock)."""
        if self.groups:
            return
        if self.max_bytes is not None and self.nbytes > self.max_bytes:
            raise AdapterLoadError(
                f"LoRA slots for {self.slots} adapters of rank {self.max_rank} over {len(self.modules)} layers "
                f"need {self.nbytes / 1e9:.2f} GB, over adapter_cache.gpu_bytes {self.max_bytes / 1e9:.2f} GB: "
                "lower adapter_cache.max_loaded or max_rank, or raise gpu_bytes"
            )
        for key, paths in self.group_paths.items():
            group = _Group(paths, self.modules[paths[0]], self.slots, self.max_rank)
            self.groups[key] = group
            for position, path in enumerate(paths):
                factors = _Factors(self, group, position)
                self.modules[path].register_forward_hook(factors.hook)

    # --- adapters in and out ------------------------------------------------------------------------------------

    def prepare(self, name: str, config, weights: dict[str, torch.Tensor]) -> PreparedAdapter:
        """Check an adapter against the model and put it in slot form; AdapterLoadError says what is wrong."""
        pairs: dict[str, list] = {}
        for key, tensor in weights.items():
            for suffix, index in _SUFFIXES:
                if key.endswith(suffix):
                    path = key[: -len(suffix)].removeprefix(_PREFIX)
                    pairs.setdefault(path, [None, None])[index] = tensor
                    break
            else:
                raise AdapterLoadError(f"adapter {name!r}: only LoRA A/B weights are supported, found {key}")
        if not pairs:
            raise AdapterLoadError(f"adapter {name!r} has no LoRA weights")
        by_group: dict[str, list] = {}
        for path, (a, b) in pairs.items():
            module = self.modules.get(path)
            if module is None:
                raise AdapterLoadError(
                    f"adapter {name!r} targets {path}, which is not one of this server's LoRA targets "
                    f"({', '.join(self.targets)})"
                )
            if a is None or b is None:
                raise AdapterLoadError(f"adapter {name!r}: {path} needs both lora_A and lora_B")
            rank = a.shape[0] if a.dim() == 2 else -1
            if (
                a.dim() != 2
                or b.dim() != 2
                or a.shape[1] != module.in_features
                or b.shape
                != (
                    module.out_features,
                    rank,
                )
            ):
                raise AdapterLoadError(
                    f"adapter {name!r}: {path} has A {tuple(a.shape)} and B {tuple(b.shape)}, the model needs "
                    f"A (r, {module.in_features}) and B ({module.out_features}, r)"
                )
            if rank > self.max_rank:
                raise AdapterLoadError(f"adapter {name!r} has rank {rank}, over this server's max_rank {self.max_rank}")
            if rank < 1:
                raise AdapterLoadError(f"adapter {name!r}: {path} has rank 0 (empty factors)")
            by_group.setdefault(self.group_of[path], []).append((path, a, b, _scale(name, config, path, rank)))
        groups = {}
        for key, members in by_group.items():
            paths, rank = self.group_paths[key], max(a.shape[0] for _, a, _, _ in members)
            module = self.modules[paths[0]]
            # empty, not zeros: fresh pages are slow to touch twice; only what no module fills is zeroed
            a_block = torch.empty(rank, len(paths), module.in_features, dtype=self.dtype)
            bt_block = torch.empty(rank, len(paths), module.out_features, dtype=self.dtype)
            filled = [0] * len(paths)
            for path, a, b, scale in members:
                i, r = self.group_position[path], a.shape[0]
                a_block[:r, i] = a
                torch.mul(b.T, scale, out=bt_block[:r, i]) if b.dtype == self.dtype else bt_block[:r, i].copy_(
                    b.T.float() * scale
                )
                filled[i] = r
            for i, r in enumerate(filled):
                if r < rank:
                    a_block[r:, i].zero_()
                    bt_block[r:, i].zero_()
            if not (bool(a_block.isfinite().all()) and bool(bt_block.isfinite().all())):
                raise AdapterLoadError(
                    f"adapter {name!r}: its {key} factors hold NaN or infinite values (after scaling by alpha)"
                )
            if self.device.type == "cuda":  # pinned: the copy to the device runs at full bus speed
                a_block, bt_block = a_block.pin_memory(), bt_block.pin_memory()
            groups[key] = (a_block, bt_block)
        return PreparedAdapter(name, groups)

    def load(self, name: str, config, weights) -> int:
        """Copy an adapter into a free slot; returns the slot. Raises AdapterLoadError, leaving slots unchanged."""
        if name in self.slot_of:
            raise AdapterLoadError(f"adapter {name!r} is already loaded")
        if not self.free:
            raise AdapterLoadError(f"all {self.slots} adapter slots are in use")
        adapter = weights if isinstance(weights, PreparedAdapter) else self.prepare(name, config, weights)
        self.inject()
        slot = min(self.free, key=lambda s: self._leftover_rows(s, adapter))  # the least zeroing to do
        self.free.remove(slot)
        previous = self.written[slot]
        targets, sources, stale = [], [], []
        for key, (a, bt) in adapter.groups.items():
            group, rank = self.groups[key], a.shape[0]
            targets += (group.a[slot, :rank], group.bt[slot, :rank])
            sources += (a, bt)
            if previous.get(key, 0) > rank:  # A too: a leftover NaN would survive a zero row of Bᵀ (NaN × 0)
                stale += (group.a[slot, rank : previous[key]], group.bt[slot, rank : previous[key]])
        for key, used in previous.items():
            if key not in adapter.groups:
                stale += (self.groups[key].a[slot, :used], self.groups[key].bt[slot, :used])
        with torch.no_grad():
            torch._foreach_copy_(targets, sources, non_blocking=True)
            if stale:
                torch._foreach_zero_(stale)
        if self.device.type == "cuda":
            torch.cuda.current_stream(self.device).synchronize()  # the pinned sources may be freed next
        self.written[slot] = adapter.ranks
        self.slot_of[name] = slot
        return slot

    def _leftover_rows(self, slot: int, adapter: PreparedAdapter) -> int:
        """Rows of Bᵀ (per group) that loading `adapter` into `slot` must zero: what the last one wrote past it."""
        ranks = adapter.ranks
        return sum(max(0, used - ranks.get(key, 0)) for key, used in self.written[slot].items())

    def unload(self, name: str) -> None:
        slot = self.slot_of.pop(name, None)
        if slot is not None:
            self.free.append(slot)  # the next load overwrites or zeroes everything this slot wrote

    # The cache's AdapterHost protocol: slots can stand as the host themselves (tests, benchmarks).
    def prepare_adapter(self, name: str, config, weights: dict[str, torch.Tensor]) -> PreparedAdapter:
        return self.prepare(name, config, weights)

    def load_adapter(self, name: str, config, weights) -> None:
        self.load(name, config, weights)

    def unload_adapter(self, name: str) -> None:
        self.unload(name)

    # --- serving ------------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def serving(self, names: list[str | None], rows: int | None = None) -> Iterator[None]:
        """During the block the model answers row i with adapter names[i] (None: the base model). Rows past
        len(names) are padding whose results are dropped. The caller holds the model lock."""
        self.rows = self._plan(names, rows or len(names))
        try:
            yield
        finally:
            self.rows = None

    def _plan(self, names: list[str | None], rows: int) -> _Rows | None:
        if not self.groups or not any(names):
            return None
        try:
            slots = [self.slot_of[n] if n else None for n in names]
        except KeyError as missing:
            raise AdapterLoadError(f"adapter {missing.args[0]!r} is not loaded") from None
        used = sorted({s for s in slots if s is not None})
        rank = max(max(self.written[s].values()) for s in used)  # loaded slots have written something
        if len(used) == 1 and None not in slots:
            return _Rows(rank, used[0])
        index = [used[0] if s is None else s for s in slots] + [used[0]] * (rows - len(slots))
        plan = _Rows(rank, None, torch.tensor(index, device=self.device))
        if None in slots:
            drop = [s is None for s in slots] + [True] * (rows - len(slots))
            plan.drop = torch.tensor(drop, device=self.device).view(-1, 1, 1)
        return plan


def _scale(name: str, config, path: str, rank: int) -> float:
    """PEFT's scaling for one module: alpha / r (or / √r with rsLoRA), honouring alpha_pattern (matched as PEFT
    does, but only with patterns that cannot backtrack without bound: see `roles.patterns`)."""
    from ..roles.patterns import PatternError, pattern_key

    patterns = getattr(config, "alpha_pattern", None) or {}
    try:
        key = pattern_key(patterns, path)
    except PatternError as exc:
        raise AdapterLoadError(f"adapter {name!r}: alpha_pattern: {exc}") from None
    alpha = config.lora_alpha if key is None else patterns[key]
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
        raise AdapterLoadError(f"adapter {name!r}: {path} has lora_alpha {alpha!r}, not a number")
    scale = alpha / (math.sqrt(rank) if getattr(config, "use_rslora", False) else rank)
    if not math.isfinite(scale):
        raise AdapterLoadError(f"adapter {name!r}: {path} has a non-finite scale (lora_alpha {alpha!r})")
    return scale
