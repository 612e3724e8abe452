"""`konsilium eval perplexity`: the base model or a role (any version) on held-out text, with inference-time
overrides of the model config. Only fields the planner knows as inference knobs may change: a field fixed by the
weights (hidden size, expert count) would measure a broken model, so it is refused with that reason.

The steps are separate so that `konsilium lab` can load a base once and measure several roles on it. Nothing here
imports torch at import time: the lab's file is checked before any model loads."""

from __future__ import annotations

import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from .base_model import TrainingSetupError, base_model_of, choose_device, load, with_role
from .samples import DatasetError, Sample, read_samples
from .sources import Limits, notes_samples
from .tokens import Window, encode_all, pad_id

BASE_ALIASES = ("base",)
SPLITS = ("eval", "train", "all")


def check_knob(key: str, label: str) -> None:
    """Refuse a config field that is not an inference knob; `label` names it (`--set hidden_size`)."""
    from ..plan.explain import change_kind
    from ..plan.fields import KIND_TEXT

    if "." in key:  # the override replaces a whole field: a dotted name would be set as a new, unread attribute
        raise TrainingSetupError(f"{label}: give the whole field {key.split('.')[0]!r} (a mapping), not a part of it")
    kind = change_kind(key)
    if kind != "inference":
        why = KIND_TEXT[kind][0] if kind in KIND_TEXT else "not a field the planner knows"
        raise TrainingSetupError(f"{label}: {why}; only inference-time knobs can change at measurement time")


def checked_overrides(assignments: list[str]) -> dict:
    """`["num_experts_per_tok=16"]` -> {"num_experts_per_tok": 16}, refusing what is not an inference knob."""
    from ..plan.config_source import parse_value

    overrides = {}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        key = key.strip()
        if not sep or not key:
            raise TrainingSetupError(f"--set {assignment!r}: expected field=value, e.g. num_experts_per_tok=16")
        check_knob(key, f"--set {key}")
        overrides[key] = parse_value(value)
    return overrides


def text_samples(settings, notes: Path | None = None, dataset: Path | None = None, split: str = "eval") -> list:
    """The text perplexity reads: a folder of notes, all of it, or one split of a dataset file."""
    if split not in SPLITS:
        raise DatasetError(f"split {split!r}: use {', '.join(SPLITS)}")
    if notes is not None:
        samples = notes_samples(notes, Limits.from_settings(settings, eval_fraction=0))
    else:
        samples = [s for s in read_samples(dataset, settings.eval_fraction) if split in ("all", s.split)]
    if not samples:
        raise DatasetError(f"no text to measure in {notes or dataset}" + (f" (split {split})" if dataset else ""))
    return samples


def model_role(registry, model_id: str):
    """The role a model id names, None for the base model; an unknown id fails here, before any model loads."""
    if model_id in (registry.base_model_id, *BASE_ALIASES):
        return None
    return registry.role_at(model_id)


def load_for_measuring(home, base, device: str, overrides: dict | None = None):
    """(tokenizer, model): fp32 on the CPU, bf16 on CUDA, the config overrides applied before the model is built."""
    precision = "fp32" if device == "cpu" else "bf16"
    return load(base, device, precision, overrides, gguf_cache=home.config.engine.gguf_cache)


@contextmanager
def under_role(model, registry, role):
    """The model under the role's adapters for the block (the model itself for the base). Afterwards the adapters
    are taken out again, nothing merged, so the same loaded base serves the next role."""
    if role is None:
        yield model
        return
    with tempfile.TemporaryDirectory(prefix="konsilium-ppl-") as workdir:
        wrapped = with_role(model, registry, role, Path(workdir))
        try:
            yield wrapped
        finally:
            if wrapped is not model:
                wrapped.unload()


def measure_windows(model, tokenizer, windows: list[Window], batch_tokens: int, progress=None) -> dict:
    from .perplexity import perplexity

    started = time.monotonic()
    result = perplexity(model, windows, pad_id(tokenizer), batch_tokens, progress)
    seconds = time.monotonic() - started
    return {
        **result,
        "windows": len(windows),
        "seconds": round(seconds, 2),
        "tokens_per_s": round(result["tokens"] / seconds, 1) if seconds else None,
    }


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
    role = model_role(registry, model_id)
    tokenizer, model = load_for_measuring(home, base, choose_device(device), overrides)
    windows = encode_all(samples, tokenizer, max_tokens)
    with under_role(model, registry, role) as measured:
        result = measure_windows(measured, tokenizer, windows, home.config.training.batch_tokens, progress)
    return {
        "model": model_id,
        **result,
        "context": max_tokens,
        "overrides": overrides or {},
    }
