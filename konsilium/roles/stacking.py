"""Stacking adapters into one: `core: 1.0, sport: 0.8` becomes a single LoRA whose update is the weighted sum.

A LoRA update is ΔW = s·B·A (s = alpha/r, or alpha/√r with rsLoRA). A weighted sum of several is again one
LoRA of rank Σr: A' = [A₁; A₂; …] stacked by rows, B' = [w₁s₁B₁, w₂s₂B₂, …] side by side, scale 1. This is
PEFT's "cat" combination done on plain tensors, so it is exact, needs no model, and the engine only ever holds
single adapters (one name per batch row).
"""

from __future__ import annotations

import math

import torch
from peft import LoraConfig

A_SUFFIX, B_SUFFIX = ".lora_A.weight", ".lora_B.weight"


class StackingError(ValueError):
    pass


def scale_of(config: LoraConfig) -> float:
    return config.lora_alpha / (math.sqrt(config.r) if config.use_rslora else config.r)


def _modules(weights: dict[str, torch.Tensor], name: str) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    pairs: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for key, tensor in weights.items():
        if key.endswith(A_SUFFIX):
            prefix = key[: -len(A_SUFFIX)]
            b = weights.get(prefix + B_SUFFIX)
            if b is None:
                raise StackingError(f"adapter {name}: {key} has no matching lora_B")
            pairs[prefix] = (tensor, b)
        elif not key.endswith(B_SUFFIX):
            raise StackingError(f"adapter {name}: only LoRA A/B weights can be stacked, found {key}")
    return pairs


def stack(parts: list[tuple[str, LoraConfig, dict[str, torch.Tensor], float]]) -> tuple[LoraConfig, dict]:
    """Combine [(name, config, weights, weight)] into one (config, weights). One part is rescaled, not copied."""
    if not parts:
        raise StackingError("nothing to stack")
    for name, config, _, _ in parts:
        if config.bias != "none" or config.modules_to_save:
            raise StackingError(f"adapter {name}: bias or modules_to_save cannot be stacked")
    modules = [_modules(weights, name) for name, _, weights, _ in parts]
    ranks = [config.r for _, config, _, _ in parts]
    prefixes = sorted(set().union(*modules))
    combined: dict[str, torch.Tensor] = {}
    for prefix in prefixes:
        shapes = [(pairs[prefix][0].shape[1], pairs[prefix][1].shape[0]) for pairs in modules if prefix in pairs]
        if len(set(shapes)) > 1:
            raise StackingError(f"adapters disagree on the shape of {prefix}: {sorted(set(shapes))}")
        in_features, out_features = shapes[0]
        a_rows, b_cols = [], []
        for (_, config, _, weight), pairs, rank in zip(parts, modules, ranks, strict=True):
            if prefix in pairs:
                a, b = pairs[prefix]
                a_rows.append(a.float())
                b_cols.append(b.float() * (weight * scale_of(config)))
            else:  # this adapter leaves the module alone: zero rows keep the ranks aligned
                a_rows.append(torch.zeros(rank, in_features))
                b_cols.append(torch.zeros(out_features, rank))
        combined[prefix + A_SUFFIX] = torch.cat(a_rows, dim=0).contiguous()
        combined[prefix + B_SUFFIX] = torch.cat(b_cols, dim=1).contiguous()
    rank = sum(ranks)
    targets = sorted({t for _, config, _, _ in parts for t in _target_list(config)})
    config = LoraConfig(r=rank, lora_alpha=rank, target_modules=targets, lora_dropout=0.0, bias="none")
    return config, combined


def _target_list(config: LoraConfig) -> list[str]:
    targets = config.target_modules
    if isinstance(targets, str):
        raise StackingError("adapters with a regex target_modules cannot be stacked; list the module names")
    return list(targets or [])
