"""Stacking adapters into one: `core: 1.0, sport: 0.8` becomes a single LoRA whose update is the weighted sum.

A LoRA update is ΔW = s·B·A, with PEFT's scale per module: s = alpha/r (or alpha/√r with rsLoRA), where r and
alpha are the module's own when `rank_pattern` / `alpha_pattern` name it, else the config's. A weighted sum of
several is again one LoRA: A' = [A₁; A₂; …] stacked by rows, B' = [w₁s₁B₁, w₂s₂B₂, …] side by side, scale 1.
This is PEFT's "cat" combination done on plain tensors, so it is exact, needs no model, and the engine only ever
holds single adapters (one name per batch row). Every module of the stack gets the same rank (each source takes
as many rows as its largest module rank; zero rows where it has fewer or leaves the module alone), so the result
is a plain LoRA with no patterns of its own, which every engine reads alike.
"""

from __future__ import annotations

import math

import torch
from peft import LoraConfig

from .patterns import PatternError, pattern_key

A_SUFFIX, B_SUFFIX = ".lora_A.weight", ".lora_B.weight"
PEFT_PREFIX = "base_model.model."  # saved keys: PEFT_PREFIX + the module's name in the base model + suffix


class StackingError(ValueError):
    pass


def scale_of(config: LoraConfig, module: str | None = None) -> float:
    """PEFT's scale for `module` (its name in the base model, e.g. model.layers.0.self_attn.q_proj): the pattern
    entries that match it override the config's rank and alpha. Without a module: the config's own."""
    return _scale(config, *_rank_and_alpha(config, module))


def _scale(config: LoraConfig, rank: int, alpha: float) -> float:
    return alpha / (math.sqrt(rank) if config.use_rslora else rank)


def _rank_and_alpha(config: LoraConfig, module: str | None) -> tuple[int, float]:
    rank, alpha = config.r, config.lora_alpha
    if module is None:
        return rank, alpha
    rank_pattern = getattr(config, "rank_pattern", None) or {}
    alpha_pattern = getattr(config, "alpha_pattern", None) or {}
    try:  # matched as PEFT does, with patterns that cannot backtrack without bound (see `patterns`)
        rank_key, alpha_key = pattern_key(rank_pattern, module), pattern_key(alpha_pattern, module)
    except PatternError as exc:
        raise StackingError(str(exc)) from None
    return (
        rank if rank_key is None else rank_pattern[rank_key],
        alpha if alpha_key is None else alpha_pattern[alpha_key],
    )


def _modules(weights: dict[str, torch.Tensor], name: str) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    pairs: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for key, tensor in weights.items():
        if key.endswith(A_SUFFIX):
            prefix = key[: -len(A_SUFFIX)]
            b = weights.get(prefix + B_SUFFIX)
            if b is None:
                raise StackingError(f"adapter {name}: {key} has no matching lora_B")
            if tensor.dim() != 2 or b.dim() != 2 or tensor.shape[0] != b.shape[1]:
                raise StackingError(
                    f"adapter {name}: {prefix} has A {tuple(tensor.shape)} and B {tuple(b.shape)}, which do not pair"
                )
            pairs[prefix] = (tensor, b)
        elif not key.endswith(B_SUFFIX):
            raise StackingError(f"adapter {name}: only LoRA A/B weights can be stacked, found {key}")
    if not pairs:
        raise StackingError(f"adapter {name}: no LoRA A/B weights to stack")
    return pairs


def _scales(name: str, config: LoraConfig, pairs: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> dict[str, float]:
    """Each module's scale, after checking its factors have the rank its config gives it (PEFT loads nothing else)."""
    scales = {}
    for prefix, (a, _) in pairs.items():
        module = prefix[len(PEFT_PREFIX) :] if prefix.startswith(PEFT_PREFIX) else prefix
        rank, alpha = _rank_and_alpha(config, module)
        if a.shape[0] != rank:
            where = "rank_pattern" if rank != config.r else "r"
            raise StackingError(
                f"adapter {name}: {module} has factors of rank {a.shape[0]}, but its config ({where}) says {rank}"
            )
        scales[prefix] = _scale(config, rank, alpha)
        if not math.isfinite(scales[prefix]):
            raise StackingError(f"adapter {name}: {module} has a non-finite scale (lora_alpha {alpha!r})")
    return scales


def stack(parts: list[tuple[str, LoraConfig, dict[str, torch.Tensor], float]]) -> tuple[LoraConfig, dict]:
    """Combine [(name, config, weights, weight)] into one (config, weights). One part is rescaled, not copied."""
    if not parts:
        raise StackingError("nothing to stack")
    for name, config, _, _ in parts:
        if config.bias != "none" or config.modules_to_save:
            raise StackingError(f"adapter {name}: bias or modules_to_save cannot be stacked")
    modules = [_modules(weights, name) for name, _, weights, _ in parts]
    scales = [_scales(name, config, pairs) for (name, config, _, _), pairs in zip(parts, modules, strict=True)]
    # Rows each source takes in every module: its largest module rank (zero rows below it keep modules aligned).
    widths = [max(a.shape[0] for a, _ in pairs.values()) for pairs in modules]
    prefixes = sorted(set().union(*modules))
    combined: dict[str, torch.Tensor] = {}
    for prefix in prefixes:
        shapes = [(pairs[prefix][0].shape[1], pairs[prefix][1].shape[0]) for pairs in modules if prefix in pairs]
        if len(set(shapes)) > 1:
            raise StackingError(f"adapters disagree on the shape of {prefix}: {sorted(set(shapes))}")
        in_features, out_features = shapes[0]
        a_parts, b_parts = [], []
        for (_, _, _, weight), pairs, module_scales, width in zip(parts, modules, scales, widths, strict=True):
            a = torch.zeros(width, in_features)
            b = torch.zeros(out_features, width)
            if prefix in pairs:  # else this adapter leaves the module alone: all its rows stay zero
                source_a, source_b = pairs[prefix]
                rank = source_a.shape[0]
                a[:rank] = source_a.float()
                b[:, :rank] = source_b.float() * (weight * module_scales[prefix])
            a_parts.append(a)
            b_parts.append(b)
        combined[prefix + A_SUFFIX] = torch.cat(a_parts, dim=0).contiguous()
        combined[prefix + B_SUFFIX] = torch.cat(b_parts, dim=1).contiguous()
        if not bool(combined[prefix + B_SUFFIX].isfinite().all()):  # an alpha or a weight too big for float32
            raise StackingError(f"the stack's {prefix} factors hold NaN or infinite values once scaled and weighted")
    rank = sum(widths)
    targets = sorted({t for _, config, _, _ in parts for t in _target_list(config)})
    config = LoraConfig(r=rank, lora_alpha=rank, target_modules=targets, lora_dropout=0.0, bias="none")
    return config, combined


def _target_list(config: LoraConfig) -> list[str]:
    targets = config.target_modules
    if isinstance(targets, str):
        raise StackingError("adapters with a regex target_modules cannot be stacked; list the module names")
    return list(targets or [])
