"""Checking a PEFT LoRA folder before it meets the model: a bad adapter is refused with a reason, never loaded.

`inspect_adapter` reads only `adapter_config.json` and the safetensors header (shapes, not weights), so the CLI
can list and check adapters without torch or the base model. `check_against` compares that against the base
model's modules; `load_adapter_weights` is what the engine calls once the adapter has passed.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .patterns import PatternError, check_budget, compile_pattern, compile_patterns, pattern_key

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
PEFT_PREFIX = "base_model.model."  # PEFT's key prefix in the saved state dict
MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit; a bigger "header" is a corrupt or foreign file
# LoRA tensor suffix -> (which factor, the module kind it implies)
_LORA_SUFFIXES = {
    ".lora_A.weight": "A",
    ".lora_B.weight": "B",
    ".lora_B.bias": "B_bias",  # lora_bias=True
    ".lora_embedding_A": "embedding_A",
    ".lora_embedding_B": "embedding_B",
    ".lora_magnitude_vector": "magnitude",  # DoRA
}


class AdapterError(ValueError):
    """The adapter folder cannot be read at all: one line naming the folder and what is wrong."""


@dataclass(frozen=True)
class AdapterInfo:
    name: str  # the folder's name
    path: Path
    peft_type: str
    r: int
    lora_alpha: float
    target_modules: tuple[str, ...] | str  # a str is a regex (PEFT's full-match rule)
    base_model_name_or_path: str | None
    bytes: int  # on disk, every file in the folder
    tensors: dict[str, tuple[int, ...]]  # safetensors key -> shape
    rank_pattern: dict[str, int] = field(default_factory=dict)
    alpha_pattern: dict[str, float] = field(default_factory=dict)
    modules_to_save: tuple[str, ...] = ()
    use_dora: bool = False
    dtypes: tuple[str, ...] = ()

    @property
    def max_rank(self) -> int:
        return max([self.r, *self.rank_pattern.values()])

    def to_dict(self) -> dict:
        targets = self.target_modules
        return {
            "name": self.name,
            "path": str(self.path),
            "peft_type": self.peft_type,
            "r": self.r,
            "max_rank": self.max_rank,
            "lora_alpha": self.lora_alpha,
            "target_modules": targets if isinstance(targets, str) else list(targets),
            "base_model_name_or_path": self.base_model_name_or_path,
            "bytes": self.bytes,
            "tensors": len(self.tensors),
            "dtypes": list(self.dtypes),
        }


def read_safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file (8-byte little-endian length, then JSON): shapes without weights."""
    try:
        with path.open("rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise AdapterError(f"{path}: not a safetensors file (only {len(head)} bytes)")
            (length,) = struct.unpack("<Q", head)
            size = path.stat().st_size
            if length > min(MAX_HEADER_BYTES, size - 8):
                raise AdapterError(f"{path}: not a safetensors file (header length {length} past the file's end)")
            header = json.loads(f.read(length))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AdapterError(f"{path}: not a safetensors file (unreadable header: {exc})") from exc
    except OSError as exc:
        raise AdapterError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if not isinstance(header, dict):
        raise AdapterError(f"{path}: not a safetensors file (the header is not a mapping)")
    header.pop("__metadata__", None)
    for key, entry in header.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("shape"), list):
            raise AdapterError(f"{path}: not a safetensors file (tensor {key!r} has no shape)")
    return header


def _read_config(folder: Path) -> dict:
    config_path = folder / CONFIG_FILE
    if not folder.exists():
        raise AdapterError(f"adapter folder {folder} does not exist")
    if not folder.is_dir():
        raise AdapterError(f"adapter path {folder} is not a folder (a PEFT adapter is a folder with {CONFIG_FILE})")
    if not config_path.is_file():
        raise AdapterError(f"{folder}: no {CONFIG_FILE}; a PEFT adapter folder holds {CONFIG_FILE} and {WEIGHTS_FILE}")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AdapterError(f"{config_path}: unreadable JSON: {exc}") from exc
    except OSError as exc:
        raise AdapterError(f"{config_path}: cannot read: {exc.strerror or exc}") from exc
    if not isinstance(config, dict):
        raise AdapterError(f"{config_path}: expected a JSON object, got {type(config).__name__}")
    return config


def _weights_path(folder: Path) -> Path:
    weights = folder / WEIGHTS_FILE
    if weights.is_file():
        return weights
    if (folder / "adapter_model.bin").exists():
        raise AdapterError(
            f"{folder}: only adapter_model.bin (a pickle) is there; save it as {WEIGHTS_FILE} "
            "(PeftModel.save_pretrained(..., safe_serialization=True))"
        )
    raise AdapterError(f"{folder}: no {WEIGHTS_FILE} (the adapter's weights)")


def _field(config_path: Path, config: dict, key: str, kinds: tuple[type, ...], default: Any = None) -> Any:
    value = config.get(key, default)
    if value is not None and (isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds)):
        raise AdapterError(f"{config_path}: {key} must be {' or '.join(k.__name__ for k in kinds)}, got {value!r}")
    return value


def inspect_adapter(path: Path | str) -> AdapterInfo:
    """Read an adapter folder's config and weight shapes (no weights are loaded). Raises AdapterError."""
    folder = Path(path).expanduser()
    config = _read_config(folder)
    config_path = folder / CONFIG_FILE
    weights = _weights_path(folder)
    header = read_safetensors_header(weights)
    peft_type = _field(config_path, config, "peft_type", (str,))
    if peft_type is None:
        raise AdapterError(f"{config_path}: no peft_type; is this a PEFT adapter?")
    r = _field(config_path, config, "r", (int,), 8)  # PEFT's LoraConfig default
    if r < 1:
        raise AdapterError(f"{config_path}: r must be a positive integer (the LoRA rank), got {r}")
    alpha = _field(config_path, config, "lora_alpha", (int, float), 8)
    if not math.isfinite(alpha):  # JSON's NaN or 1e400: one such scale turns every answer into noise
        raise AdapterError(f"{config_path}: lora_alpha must be a finite number, got {alpha!r}")
    targets = _field(config_path, config, "target_modules", (list, str)) or ()
    if isinstance(targets, list):
        if not all(isinstance(t, str) for t in targets):
            raise AdapterError(f"{config_path}: target_modules must be a list of module names")
        targets = tuple(targets)
    rank_pattern = _field(config_path, config, "rank_pattern", (dict,)) or {}
    for key, value in rank_pattern.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise AdapterError(f"{config_path}: rank_pattern[{key!r}] must be a positive integer, got {value!r}")
    alpha_pattern = _field(config_path, config, "alpha_pattern", (dict,)) or {}
    for key, value in alpha_pattern.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise AdapterError(f"{config_path}: alpha_pattern[{key!r}] must be a finite number, got {value!r}")
    _check_patterns(config_path, targets, rank_pattern, alpha_pattern)
    return AdapterInfo(
        name=folder.resolve().name,
        path=folder,
        peft_type=peft_type,
        r=r,
        lora_alpha=alpha,
        target_modules=targets,
        base_model_name_or_path=config.get("base_model_name_or_path"),
        bytes=sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()),
        tensors={key: tuple(entry["shape"]) for key, entry in header.items()},
        rank_pattern=dict(rank_pattern),
        alpha_pattern=dict(alpha_pattern),
        modules_to_save=tuple(_field(config_path, config, "modules_to_save", (list,)) or ()),
        use_dora=bool(config.get("use_dora")),
        dtypes=tuple(sorted({str(entry.get("dtype")) for entry in header.values()})),
    )


def _check_patterns(config_path: Path, targets, rank_pattern: dict, alpha_pattern: dict) -> None:
    """Module-name patterns that could not be matched in bounded time (or at all) are refused before any module
    name meets them: a regex in an adapter file must not freeze the server (see `patterns`)."""
    try:
        groups = {
            "rank_pattern": compile_patterns(rank_pattern, "rank_pattern"),
            "alpha_pattern": compile_patterns(alpha_pattern, "alpha_pattern"),
        }
        if isinstance(targets, str) and targets != "all-linear":
            groups["target_modules"] = compile_patterns([targets], "target_modules")
        check_budget(groups)
    except PatternError as exc:
        raise AdapterError(f"{config_path}: {exc}") from None


def check_info(info: AdapterInfo, max_rank: int) -> list[str]:
    """Problems visible without the base model: the adapter kind, its rank, its tensors' pairing."""
    problems = []
    if info.peft_type.upper() != "LORA":
        problems.append(f"peft_type is {info.peft_type}; only LoRA adapters are supported")
    if info.use_dora:  # the magnitude vectors would be dropped: a different model than the one trained
        problems.append("use_dora: DoRA adapters are not supported (their magnitude vectors would be ignored)")
    if info.max_rank > max_rank:
        problems.append(f"rank {info.max_rank} is over the configured maximum {max_rank} (adapter_cache.max_rank)")
    if not info.target_modules:
        problems.append("target_modules is empty: the adapter changes nothing")
    factors = {}
    for key, shape in info.tensors.items():
        module, factor = _split(key)
        if factor in ("A", "B"):
            factors.setdefault(module, {})[factor] = shape
            if len(shape) != 2:
                problems.append(f"{key}: expected a 2-D matrix, got shape {list(shape)}")
            elif 0 in shape:
                problems.append(f"{key}: shape {list(shape)} is empty (rank 0); a LoRA factor needs rank 1 or more")
    for module, pair in factors.items():
        if set(pair) != {"A", "B"}:
            missing = "lora_B" if "A" in pair else "lora_A"
            problems.append(f"{module}: {missing} is missing")
    if not factors and not any(_split(k)[1] for k in info.tensors):
        problems.append(f"{WEIGHTS_FILE} holds no LoRA weights")
    return problems


def check_against(info: AdapterInfo, model, max_rank: int) -> list[str]:
    """Problems with this adapter on `model` (a torch module, e.g. the engine's base model); empty: it fits."""
    import torch.nn as nn

    problems = check_info(info, max_rank)
    # A model that already holds LoRA layers (PeftModel, injected adapters) is checked as its base model.
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    modules = dict(model.named_modules())
    unmatched = _unmatched_targets(info.target_modules, modules, nn)
    problems += [f"target module {target!r} matches no module of the base model" for target in unmatched]
    # Tied weights (lm_head = embed_tokens) are listed once by default; a saved copy may use either name.
    params = {n.replace(".base_layer", ""): p for n, p in model.named_parameters(remove_duplicate=False)}
    for key, shape in info.tensors.items():
        module_name, factor = _split(key)
        if factor is None:  # modules_to_save, saved embedding layers: a full copy of a base parameter
            name = _strip_prefix(key).replace(".base_layer", "").replace(".modules_to_save", "")
            base = params.get(name)
            if base is None:
                problems.append(f"{key}: matches no parameter of the base model")
            elif tuple(base.shape) != shape:
                problems.append(f"{key}: shape {list(shape)}, the base model's is {list(base.shape)}")
            continue
        module = getattr(modules.get(module_name), "base_layer", modules.get(module_name))
        if module is None:
            problems.append(f"{key}: the base model has no module {module_name!r}")
            continue
        expected = _expected_shape(module, factor, _rank_of(info, module_name), nn)
        if expected is None:
            problems.append(f"{key}: {module_name} is a {type(module).__name__}, not a Linear or Embedding layer")
        elif tuple(shape) != expected:
            problems.append(f"{key}: shape {list(shape)}, expected {list(expected)} for {module_name}")
    return problems


def base_model_warnings(info: AdapterInfo, model) -> list[str]:
    """Non-fatal notes: a different base model path (GGUF and local copies differ; the shapes decide)."""
    ours = getattr(getattr(model, "config", None), "name_or_path", None)
    theirs = info.base_model_name_or_path
    if ours and theirs and Path(str(theirs)).name != Path(str(ours)).name and theirs != ours:
        return [f"adapter was trained on {theirs!r}, the base model is {ours!r}; its shapes fit, so it is used"]
    return []


def check_finite(path: Path, weights: dict) -> None:
    """NaN or infinity in one adapter's weights would turn its answers (and, batched, others') into noise."""
    for key, tensor in weights.items():
        if tensor.is_floating_point() and not bool(tensor.isfinite().all()):
            raise AdapterError(f"{path}: tensor {key} holds NaN or infinite values; the adapter is refused")


def load_adapter_weights(path: Path | str, max_rank: int | None = None, model=None):
    """(LoraConfig, state dict with PEFT's keys) for the engine, after the same checks as the CLI.

    With `model`, the shapes are checked against it too (`check_against`). Keys stay as PEFT saves them
    (`base_model.model.<module>.lora_A.weight`): what `set_peft_model_state_dict` and `roles.stacking` expect.
    Raises AdapterError with one line naming the folder and the first problems.
    """
    from peft import LoraConfig

    info = inspect_adapter(path)
    limit = max_rank if max_rank is not None else info.max_rank
    problems = check_info(info, limit) if model is None else check_against(info, model, limit)
    if problems:
        raise AdapterError(problem_line(info, problems))
    try:
        config = LoraConfig.from_pretrained(str(info.path))
    except Exception as exc:  # PEFT rejects values it cannot use with assorted error types
        raise AdapterError(f"{info.path / CONFIG_FILE}: not a usable LoRA config: {exc}") from exc
    try:
        weights = read_tensors(info.path / WEIGHTS_FILE)
    except Exception as exc:  # safetensors raises its own error types for corrupt data
        raise AdapterError(f"{info.path / WEIGHTS_FILE}: cannot load: {exc}") from exc
    check_finite(info.path / WEIGHTS_FILE, weights)
    return config, weights


def check_adapter_folder(path: Path | str, max_rank: int | None = None, dtype=None) -> None:
    """Every check of `load_adapter_weights` and of the LoRA slots, for an engine that reads the folder itself
    (vLLM): config, patterns, ranks and tensor pairing; no NaN or infinity in the weights; and none once each
    module's scale (alpha/r, per PEFT's patterns) is folded into its B factor, as vLLM does, in the model's `dtype`
    (a torch dtype; None: float32). Raises AdapterError naming the folder and the first problem."""
    import torch

    from .stacking import StackingError, scale_of

    config, weights = load_adapter_weights(path, max_rank)
    folder = Path(path).expanduser()
    floating = isinstance(dtype, torch.dtype) and dtype.is_floating_point
    kind = dtype if floating else torch.float32
    limit = torch.finfo(kind).max
    for key, tensor in weights.items():
        module, factor = _split(key)
        if factor not in ("A", "B", "embedding_A", "embedding_B") or not tensor.is_floating_point():
            continue
        scale = 1.0
        if factor in ("B", "embedding_B"):
            try:
                scale = scale_of(config, module)
            except StackingError as exc:  # not expected: load_adapter_weights refused unsafe patterns
                raise AdapterError(f"{folder / CONFIG_FILE}: {module}: {exc}") from None
        folded = tensor.double() * scale
        biggest = float(folded.abs().max()) if folded.numel() else 0.0
        if not math.isfinite(biggest) or biggest > limit:
            raise AdapterError(
                f"{folder}: {key} holds NaN or infinite values once scaled by its lora_alpha (scale {scale:g}) "
                f"in {str(kind).removeprefix('torch.')}; the adapter is refused"
            )


_TORCH_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64"}


ONE_READ_MAX_BYTES = 32_000_000


def read_tensors(path: Path) -> dict:
    """A safetensors file as tensors. Up to 32 MB in one read into one buffer (views at the header's offsets):
    safetensors' `load_file` pays ~30 µs a tensor, 12 ms for the 420 factors of a rank-8 adapter, twice the time
    of the bytes. Bigger files go to `load_file`: measured here (read + prepare, rank 64, 78 MB) it is faster,
    since a fresh buffer that large costs a page fault per 4 kB and the library's reads do not."""
    import os

    import torch
    from safetensors.torch import load_file

    header = read_safetensors_header(path)
    if path.stat().st_size > ONE_READ_MAX_BYTES:
        return load_file(str(path))
    if any(entry.get("dtype") not in _TORCH_DTYPES for entry in header.values()):
        return load_file(str(path))  # integer or quantised tensors: the library knows them all
    with path.open("rb", buffering=0) as f:
        (length,) = struct.unpack("<Q", f.read(8))
        f.seek(8 + length)
        data = torch.empty(os.fstat(f.fileno()).st_size - 8 - length, dtype=torch.uint8)
        view, done = memoryview(data.numpy()), 0
        while done < len(view):
            got = f.readinto(view[done:])
            if not got:
                raise ValueError(f"the file ends after {done} of {len(view)} data bytes")
            done += got
    tensors = {}
    for key, entry in header.items():
        start, end = entry["data_offsets"]
        dtype = getattr(torch, _TORCH_DTYPES[entry["dtype"]])
        count = math.prod(entry["shape"])
        if not 0 <= start <= end <= len(data) or end - start != count * dtype.itemsize:
            raise ValueError(f"tensor {key!r}: offsets {start}..{end} do not fit its shape or the file")
        if start % dtype.itemsize:  # unaligned (legal, rare): a view cannot start there
            return load_file(str(path))
        tensors[key] = data[start:end].view(dtype).view(entry["shape"])
    return tensors


def problem_line(info: AdapterInfo, problems: list[str], shown: int = 3) -> str:
    """One line for logs and errors: the first few problems and how many more."""
    more = f" (+{len(problems) - shown} more)" if len(problems) > shown else ""
    return f"adapter {info.path}: " + "; ".join(problems[:shown]) + more


# --- naming -------------------------------------------------------------------------------------------------


def _strip_prefix(key: str) -> str:
    return key[len(PEFT_PREFIX) :] if key.startswith(PEFT_PREFIX) else key


def _split(key: str) -> tuple[str, str | None]:
    """(module name in the base model, LoRA factor) of a saved key; factor None for a non-LoRA tensor."""
    for suffix, factor in _LORA_SUFFIXES.items():
        if key.endswith(suffix):
            return _strip_prefix(key[: -len(suffix)]), factor
    return _strip_prefix(key), None


def _unmatched_targets(targets: tuple[str, ...] | str, modules: dict, nn) -> list[str]:
    names = [name for name in modules if name]
    if targets == "all-linear":  # PEFT's shorthand: every Linear layer but the output head
        return [] if any(isinstance(m, nn.Linear) for m in modules.values()) else [targets]
    if isinstance(targets, str):  # a regex that must match a whole module name
        return [] if any(_regex_matches(targets, name) for name in names) else [targets]
    # A listed name matches a module whose dotted name is it or ends with it (PEFT's rule).
    return [t for t in targets if not any(name == t or name.endswith("." + t) for name in names)]


def _regex_matches(pattern: str, name: str) -> bool:
    try:
        return compile_pattern(pattern).matches_whole(name)
    except PatternError:
        return False


def _rank_of(info: AdapterInfo, module_name: str) -> int:
    key = pattern_key(info.rank_pattern, module_name)  # PEFT's rule: the first key matching a name's end
    return info.r if key is None else info.rank_pattern[key]


def _expected_shape(module, factor: str, rank: int, nn) -> tuple[int, ...] | None:
    if isinstance(module, nn.Linear):
        return {
            "A": (rank, module.in_features),
            "B": (module.out_features, rank),
            "B_bias": (module.out_features,),
            "magnitude": (module.out_features,),
        }.get(factor)
    if isinstance(module, nn.Embedding):
        return {"embedding_A": (rank, module.num_embeddings), "embedding_B": (module.embedding_dim, rank)}.get(factor)
    return None
