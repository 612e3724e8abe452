"""A model's context window from its config: the length it was trained on and the one RoPE scaling extends to.

The fields mean different things per `rope_type` (as transformers' modeling_rope_utils.py reads them):
- llama3, longrope: `max_position_embeddings` already is the extended length (Llama-3.1: 131072);
  `original_max_position_embeddings` (8192; Phi-3 keeps it outside rope_scaling) is the trained one.
- yarn, dynamic, linear: the extended length is `original_max_position_embeddings * factor` when the original is
  given (Qwen3 + YaRN 4 over 32768: 131072, whatever max_position_embeddings says), else
  `max_position_embeddings * factor`.
- none / default: both are `max_position_embeddings`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

ALREADY_EXTENDED = ("llama3", "longrope")
MULTIPLIED = ("yarn", "dynamic", "linear")
ALIASES = {"su": "longrope", "ntk": "dynamic"}  # older names in published configs


@dataclass(frozen=True)
class ContextWindow:
    trained: int | None  # tokens the model was (pre)trained on
    extended: int | None  # tokens usable with its RoPE scaling (= trained without scaling)
    rope_type: str  # "default" when the config has no scaling
    factor: float | None
    how: str  # one line: which fields gave these numbers

    def to_dict(self) -> dict:
        return asdict(self)


def context_window(cfg: dict) -> ContextWindow:
    max_pos = _positive_int(cfg.get("max_position_embeddings"))
    rope = _rope_dict(cfg)
    rope_type = str(rope.get("rope_type") or rope.get("type") or "default")
    rope_type = ALIASES.get(rope_type, rope_type)
    factor = _positive_float(rope.get("factor"))
    # transformers prefers the top-level field (Phi-3 keeps it there) over the one inside the rope dict.
    original = _positive_int(cfg.get("original_max_position_embeddings")) or _positive_int(
        rope.get("original_max_position_embeddings")
    )
    if max_pos is None and original is None:
        return ContextWindow(None, None, rope_type, factor, "no max_position_embeddings in the config")
    if rope_type == "default" or (factor is None and rope_type not in ALREADY_EXTENDED):
        length = max_pos or original
        return ContextWindow(length, length, rope_type, factor, "no RoPE scaling: max_position_embeddings")
    if rope_type in ALREADY_EXTENDED and original and max_pos:
        times = f", {max_pos / original:g}x the trained one" if max_pos != original else ""
        how = (
            f"{rope_type}: trained on original_max_position_embeddings {original:,}; "
            f"max_position_embeddings {max_pos:,} already is the extended length{times}"
        )
        return ContextWindow(original, max_pos, rope_type, factor, how)
    base_name = "original_max_position_embeddings" if original else "max_position_embeddings"
    base = original or max_pos
    if factor is None:  # llama3/longrope without an original length: nothing to extend from
        return ContextWindow(base, base, rope_type, factor, f"{rope_type} without a factor: {base_name}")
    extended = int(base * factor)
    how = f"{rope_type}: {base_name} {base:,} x factor {factor:g}"
    if rope_type not in MULTIPLIED and rope_type not in ALREADY_EXTENDED:
        how += f" (rope_type {rope_type!r} unknown to konsilium: assumed to extend by its factor)"
    return ContextWindow(base, extended, rope_type, factor, how)


def _rope_dict(cfg: dict) -> dict:
    """`rope_scaling` (transformers 4) or `rope_parameters` (5); per-layer-type dicts (Gemma 3): the full
    attention layers' one, which bounds the context."""
    rope = cfg.get("rope_scaling") or cfg.get("rope_parameters") or {}
    if not isinstance(rope, dict):
        return {}
    nested = {k: v for k, v in rope.items() if isinstance(v, dict)}
    if nested and not ({"rope_type", "type", "factor"} & rope.keys()):
        return nested.get("full_attention") or next(iter(nested.values()))
    return rope


def _positive_int(value) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _positive_float(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None
