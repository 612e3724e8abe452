"""Real PEFT LoRA adapters for tests, made in a second or so, and the ways to break them.

`make_adapter` builds the PEFT model over a *meta-device skeleton* of the base model (same config, no weights):
PEFT sees exactly the base model's modules and shapes, but nothing is copied and the base model itself is never
touched. Only the LoRA factors get real, seeded values; B is non-zero so the adapter changes the output.
"""

from __future__ import annotations

import copy
import json
import math
import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tiny_models import tiny_llama  # noqa: F401 - re-exported for the role tests

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP = ("gate_proj", "up_proj", "down_proj")


def _skeleton(model: torch.nn.Module) -> torch.nn.Module:
    config = getattr(model, "config", None)
    if config is not None and hasattr(type(model), "config_class"):  # a transformers model: rebuild on meta
        with torch.device("meta"):
            skeleton = type(model)(copy.deepcopy(config))
        skeleton.name_or_path = getattr(model, "name_or_path", config.name_or_path)
        return skeleton
    return copy.deepcopy(model)  # any other torch module: small enough to copy in tests


def make_adapter(
    model: torch.nn.Module,
    folder: Path | str,
    rank: int = 8,
    targets: tuple[str, ...] | str = ("q_proj", "v_proj"),
    seed: int = 0,
    scale: float = 0.02,
    alpha: float | None = None,
    **lora_options,
) -> Path:
    """Save a LoRA adapter for `model` in `folder` (adapter_config.json + adapter_model.safetensors)."""
    from peft import LoraConfig, get_peft_model

    folder = Path(folder)
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha if alpha is not None else rank,  # scaling 1: `scale` alone sets the adapter's strength
        target_modules=list(targets) if not isinstance(targets, str) else targets,
        lora_dropout=0.0,
        **lora_options,
    )
    with warnings.catch_warnings():  # PEFT notes it cannot find the GGUF model's config.json online; fine here
        warnings.simplefilter("ignore")
        peft_model = get_peft_model(_skeleton(model), config)
        _fill(peft_model, model, torch.Generator().manual_seed(seed), scale)
        peft_model.save_pretrained(str(folder), save_embedding_layers=False)
    (folder / "README.md").unlink(missing_ok=True)  # PEFT's model card template: noise in a test adapter
    return folder


def _fill(peft_model, model: torch.nn.Module, generator: torch.Generator, scale: float) -> None:
    """Give every LoRA tensor of the skeleton real values: A like PEFT's init, B seeded normal (non-zero)."""

    def uniform(shape, fan_in):  # PEFT's A init (kaiming-uniform, a=√5) has this bound
        return torch.nn.Parameter((torch.rand(shape, generator=generator) * 2 - 1) / math.sqrt(fan_in))

    def normal(shape):
        return torch.nn.Parameter(torch.randn(shape, generator=generator) * scale)

    real = dict(model.named_modules())
    for name, module in peft_model.named_modules():
        if "default" in getattr(module, "lora_A", {}):
            a, b = module.lora_A["default"], module.lora_B["default"]
            a.weight, b.weight = uniform(a.weight.shape, a.in_features), normal(b.weight.shape)
            if b.bias is not None:  # lora_bias=True
                b.bias = normal(b.bias.shape)
            if "default" in getattr(module, "lora_magnitude_vector", {}):  # DoRA: the row norms of W + s·BA
                weight = real[name.removeprefix("base_model.model.")].weight.detach()
                merged = weight + module.scaling["default"] * (b.weight.detach() @ a.weight.detach())
                module.lora_magnitude_vector["default"].weight = torch.nn.Parameter(merged.norm(dim=1))
        if "default" in getattr(module, "lora_embedding_A", {}):
            a = module.lora_embedding_A["default"]
            module.lora_embedding_A["default"] = uniform(a.shape, a.shape[1])
            module.lora_embedding_B["default"] = normal(module.lora_embedding_B["default"].shape)
    left = [n for n, p in peft_model.named_parameters() if "lora_" in n and p.is_meta]
    assert not left, f"LoRA tensors left without values: {left[:3]}"


# --- breaking an adapter ------------------------------------------------------------------------------------


def edit_config(folder: Path, **changes) -> Path:
    """Rewrite adapter_config.json with `changes` (e.g. peft_type="IA3", target_modules=[...], r=128)."""
    path = Path(folder) / CONFIG_FILE
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config, indent=2))
    return Path(folder)


def edit_weights(folder: Path, edit) -> Path:
    """Rewrite the safetensors file with `edit(dict[str, Tensor]) -> dict[str, Tensor]`."""
    path = Path(folder) / WEIGHTS_FILE
    save_file({k: v.contiguous() for k, v in edit(load_file(str(path))).items()}, str(path), metadata={"format": "pt"})
    return Path(folder)


def nan_weight(weights: dict) -> dict:
    """For `edit_weights`: one NaN in the first lora_B (by name)."""
    key = sorted(k for k in weights if k.endswith("lora_B.weight"))[0]
    weights[key] = weights[key].clone()
    weights[key][0, 0] = float("nan")
    return weights


def rank_zero(weights: dict) -> dict:
    """For `edit_weights`: every factor cut to rank 0 (empty A and B)."""
    return {k: v[:0] if k.endswith("lora_A.weight") else v[:, :0] for k, v in weights.items()}


def widen_inputs(folder: Path, extra: int = 64) -> Path:
    """As if trained on a model with a larger hidden size: every lora_A gets `extra` more input columns."""

    def edit(weights):
        return {
            k: torch.cat([v, torch.zeros(v.shape[0], extra)], dim=1) if k.endswith("lora_A.weight") else v
            for k, v in weights.items()
        }

    return edit_weights(folder, edit)


def rename_modules(folder: Path, old: str = "q_proj", new: str = "qkv_proj") -> Path:
    """As if trained on another architecture: the weights name a module the base model lacks."""
    edit_weights(folder, lambda weights: {k.replace(f".{old}.", f".{new}."): v for k, v in weights.items()})
    config = json.loads((Path(folder) / CONFIG_FILE).read_text())
    targets = config["target_modules"]
    return edit_config(folder, target_modules=[new if t == old else t for t in targets])
