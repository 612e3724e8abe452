"""LoRA adapters held in fixed slots inside the model, so loading one is a copy, not a model surgery.

PEFT's `add_adapter` re-injects layers (~200 ms for a rank-8 adapter on a 135M model); vLLM instead keeps
`max_loras` slots of rank `max_lora_rank` and copies an adapter's tensors into a free one. We do the same over
PEFT: on first use every target module gets `slots` LoRA branches of rank `max_rank`; loading an adapter of rank
r copies its A into the slot's first r rows and its B into the first r columns, zeroes B's other columns (so
the rows of A past r never count) and sets the slot's scale. Modules the adapter does not touch keep a zero B
(only what the slot's previous adapter wrote is cleared).
Each batch row names its slot (`adapter_names`, PEFT's mixed-batch forward), so rows with different adapters
share one forward pass.
"""

from __future__ import annotations

import math

import torch

BASE = "__base__"  # PEFT's name for "no adapter" in adapter_names
NULL = "konsilium_null"  # the always-zero adapter left active for direct calls
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
_PREFIX = "base_model.model."


class AdapterLoadError(ValueError):
    """An adapter that cannot go into a slot (rank, targets, shapes): the server keeps serving."""


def slot_key(slot: int) -> str:
    return f"slot{slot}"


class LoraSlots:
    def __init__(self, model: torch.nn.Module, slots: int = 8, max_rank: int = 64, targets=DEFAULT_TARGETS):
        if slots < 1 or max_rank < 1:
            raise ValueError("slots and max_rank must be at least 1")
        self.model, self.slots, self.max_rank, self.targets = model, slots, max_rank, tuple(targets)
        self.peft = None
        self.layers: dict[str, torch.nn.Module] = {}
        self.slot_of: dict[str, int] = {}
        self.free = list(range(slots))
        self.written: list[dict[str, int]] = [{} for _ in range(slots)]  # per slot: module -> B columns in use

    @property
    def injected(self) -> bool:
        return self.peft is not None

    def inject(self) -> None:
        """Add the slot branches to the model (once; the caller must hold the engine's model lock)."""
        if self.peft is not None:
            return
        from peft import LoraConfig, PeftModel
        from peft.tuners.lora import LoraLayer

        config = LoraConfig(
            r=self.max_rank, lora_alpha=self.max_rank, target_modules=list(self.targets), lora_dropout=0.0
        )
        # The active adapter is a rank-1 branch whose B stays zero: whoever calls the model directly (no
        # adapter_names) gets exactly the base model, at almost no cost.
        null = LoraConfig(r=1, lora_alpha=1, target_modules=list(self.targets), lora_dropout=0.0)
        peft = PeftModel(self.model, null, adapter_name=NULL)
        for slot in range(self.slots):
            peft.add_adapter(slot_key(slot), config)
        peft.set_adapter(NULL)
        peft.eval()
        self.layers = {
            name.removeprefix(_PREFIX): module for name, module in peft.named_modules() if isinstance(module, LoraLayer)
        }
        with torch.no_grad():
            for module in self.layers.values():
                for key in (NULL, *(slot_key(slot) for slot in range(self.slots))):
                    module.lora_B[key].weight.zero_()
        self.peft = peft

    def load(self, name: str, config, weights: dict[str, torch.Tensor]) -> int:
        """Copy an adapter into a free slot; returns the slot. Raises AdapterLoadError, leaving slots unchanged."""
        if name in self.slot_of:
            raise AdapterLoadError(f"adapter {name!r} is already loaded")
        if not self.free:
            raise AdapterLoadError(f"all {self.slots} adapter slots are in use")
        rank = int(config.r)
        if rank > self.max_rank:
            raise AdapterLoadError(f"adapter {name!r} has rank {rank}, over this server's max_rank {self.max_rank}")
        self.inject()
        plan = self._plan(name, weights, rank)
        slot = self.free.pop(0)
        key = slot_key(slot)
        scale = config.lora_alpha / (math.sqrt(rank) if getattr(config, "use_rslora", False) else rank)
        # Only what the slot's previous adapter wrote needs clearing: copies dominate, not memsets.
        previous = self.written[slot]
        with torch.no_grad():
            for path, used in previous.items():
                if path not in plan:
                    self.layers[path].lora_B[key].weight[:, :used].zero_()
            for path, (a_new, b_new) in plan.items():
                module = self.layers[path]
                b = module.lora_B[key].weight
                module.lora_A[key].weight[:rank].copy_(a_new)
                b[:, :rank].copy_(b_new)
                if previous.get(path, 0) > rank:
                    b[:, rank : previous[path]].zero_()
                module.scaling[key] = scale
        self.written[slot] = dict.fromkeys(plan, rank)
        self.slot_of[name] = slot
        return slot

    def unload(self, name: str) -> None:
        slot = self.slot_of.pop(name, None)
        if slot is not None:
            self.free.append(slot)  # the next load overwrites every B of this slot

    # The cache's AdapterHost protocol: slots can stand as the host themselves (tests, benchmarks).
    def load_adapter(self, name: str, config, weights: dict[str, torch.Tensor]) -> None:
        self.load(name, config, weights)

    def unload_adapter(self, name: str) -> None:
        self.unload(name)

    def adapter_names(self, names: list[str | None]) -> list[str] | None:
        """PEFT's per-row adapter names for a batch; None when no row has an adapter (call the model directly)."""
        if self.peft is None or not any(names):
            return None
        return [slot_key(self.slot_of[n]) if n else BASE for n in names]

    def _plan(self, name: str, weights: dict[str, torch.Tensor], rank: int) -> dict[str, tuple]:
        plan: dict[str, list] = {}
        for key, tensor in weights.items():
            for part, index in ((".lora_A.weight", 0), (".lora_B.weight", 1)):
                if key.endswith(part):
                    path = key[: -len(part)].removeprefix(_PREFIX)
                    plan.setdefault(path, [None, None])[index] = tensor
                    break
            else:
                raise AdapterLoadError(f"adapter {name!r}: only LoRA A/B weights are supported, found {key}")
        for path, (a, b) in plan.items():
            module = self.layers.get(path)
            if module is None:
                raise AdapterLoadError(
                    f"adapter {name!r} targets {path}, which is not one of this server's LoRA targets "
                    f"({', '.join(self.targets)})"
                )
            if a is None or b is None:
                raise AdapterLoadError(f"adapter {name!r}: {path} needs both lora_A and lora_B")
            slot_a = module.lora_A[slot_key(0)].weight
            slot_b = module.lora_B[slot_key(0)].weight
            if tuple(a.shape) != (rank, slot_a.shape[1]) or tuple(b.shape) != (slot_b.shape[0], rank):
                raise AdapterLoadError(
                    f"adapter {name!r}: {path} has A {tuple(a.shape)} and B {tuple(b.shape)}, the model needs "
                    f"A ({rank}, {slot_a.shape[1]}) and B ({slot_b.shape[0]}, {rank})"
                )
        dtype = next(iter(self.layers.values())).lora_A[slot_key(0)].weight.dtype
        return {path: (a.to(dtype), b.to(dtype)) for path, (a, b) in plan.items()}
