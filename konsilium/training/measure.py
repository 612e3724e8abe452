"""`konsilium eval perplexity`: the base model or a role (any version) on held-out text, with inference-time
overrides of the model config. Only fields the planner knows as inference knobs may change: a field fixed by the
weights (hidden size, expert count) would measure a broken model, so it is refused with that reason."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from .base_model import TrainingSetupError, base_model_of, choose_device, load, with_role
from .perplexity import perplexity
from .samples import Sample
from .tokens import encode_all, pad_id

BASE_ALIASES = ("base",)


def checked_overrides(assignments: list[str]) -> dict:
    """`["num_experts_per_tok=16"]` -> {"num_experts_per_tok": 16}, refusing what is not an inference knob."""
    from ..plan.config_source import parse_value
    from ..plan.explain import change_kind
    from ..plan.fields import KIND_TEXT

    overrides = {}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        key = key.strip()
        if not sep or not key:
            raise TrainingSetupError(f"--set {assignment!r}: expected field=value, e.g. num_experts_per_tok=16")
        kind = change_kind(key)
        if kind != "inference":
            why = KIND_TEXT[kind][0] if kind in KIND_TEXT else "not a field the planner knows"
            raise TrainingSetupError(f"--set {key}: {why}; only inference-time knobs can change at measurement time")
        overrides[key] = parse_value(value)
    return overrides


def measure(
    home,
    model_id: str,
    samples: list[Sample],
    max_tokens: int,
    overrides: dict | None = None,
    base_path: str | Path | None = None,
    device: str = "auto",
    progress=None,
) -> dict:
    from ..roles.registry import RoleRegistry

    base = base_model_of(home, base_path)
    registry = RoleRegistry.open(home)
    role = None
    if model_id not in (registry.base_model_id, *BASE_ALIASES):
        role = registry.role_at(model_id)  # unknown ids fail here, before the model loads
    device = choose_device(device)
    tokenizer, model = load(
        base, device, "fp32" if device == "cpu" else "bf16", overrides, gguf_cache=home.config.engine.gguf_cache
    )
    windows = encode_all(samples, tokenizer, max_tokens)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="konsilium-ppl-") as workdir:
        if role is not None:
            model = with_role(model, registry, role, Path(workdir))
        result = perplexity(model, windows, pad_id(tokenizer), home.config.training.batch_tokens, progress)
    seconds = time.monotonic() - started
    return {
        "model": model_id,
        **result,
        "windows": len(windows),
        "context": max_tokens,
        "overrides": overrides or {},
        "seconds": round(seconds, 2),
        "tokens_per_s": round(result["tokens"] / seconds, 1) if seconds else None,
    }
