"""The base model as training and perplexity load it: the same weights the transformers engine serves, on the
device and at the precision chosen for training, optionally under a role's adapters."""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

PRECISIONS = ("auto", "fp32", "bf16", "4bit")
_DTYPE_OF = {"bf16": "bfloat16"}


class TrainingSetupError(ValueError):
    """The run cannot start as asked (device, precision, model location): one line that says why."""


@dataclass(frozen=True)
class BaseModel:
    path: Path
    gguf_file: str | None

    @property
    def weights_files(self) -> list[Path]:
        if self.gguf_file:
            return [self.path / self.gguf_file]
        return sorted(self.path.glob("*.safetensors")) or sorted(self.path.glob("*.bin"))

    def fingerprint(self) -> str:
        """sha256 over each weights file's size, first and last 4 MiB: tells two base models apart in a run card
        without reading 60 GB (a full hash of a Qwen3-30B would take minutes)."""
        digest = hashlib.sha256()
        for file in self.weights_files:
            size = file.stat().st_size
            digest.update(f"{file.name}:{size}".encode())
            with file.open("rb") as fh:
                digest.update(fh.read(4 << 20))
                if size > 8 << 20:
                    fh.seek(size - (4 << 20))
                    digest.update(fh.read())
        return digest.hexdigest()

    def describe(self) -> dict:
        return {"path": str(self.path), "gguf_file": self.gguf_file, "fingerprint": self.fingerprint()}


def base_model_of(home, base: str | Path | None = None) -> BaseModel:
    """`base` (a HF folder or a .gguf file), else the engine's configured model when its weights are here."""
    from ..engines.factory import local_model
    from ..engines.hf_loading import model_location

    if base is not None:
        return BaseModel(*model_location(base))
    settings = home.config.engine
    if settings.kind == "openai-upstream":
        raise TrainingSetupError(
            "the base model is served by an upstream server (engine.kind: openai-upstream), so its weights are not "
            "on this machine's path: give them with --base PATH (a HF model folder or a .gguf file)"
        )
    return BaseModel(*model_location(*local_model(settings)))


def choose_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise TrainingSetupError("--device cuda: no CUDA device is visible to torch here")
    return device


def choose_precision(precision: str, device: str) -> str:
    if precision not in PRECISIONS:
        raise TrainingSetupError(f"precision {precision!r}: allowed values are {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if device == "cuda" else "fp32"
    if precision == "4bit":
        if device != "cuda":
            raise TrainingSetupError("precision 4bit (QLoRA) needs a CUDA device; on the CPU use fp32")
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise TrainingSetupError(
                "precision 4bit (QLoRA) needs bitsandbytes: pip install 'konsilium[qlora]'"
            ) from None
    if precision == "bf16" and device == "cpu":
        raise TrainingSetupError("precision bf16 on the CPU trains slowly and imprecisely here; use fp32")
    return precision


def load(base: BaseModel, device: str, precision: str, config_overrides: dict | None = None, gguf_cache: bool = True):
    """(tokenizer, model on `device`) for training or measuring."""
    import torch

    from ..engines.hf_loading import load_causal_lm

    kwargs = {"config_overrides": config_overrides} if config_overrides else {}
    if precision == "4bit":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
        kwargs["device_map"] = {"": 0}
    # fp32: loaded as the engine loads it (a GGUF's converted copy is shared with serving), then made float32.
    dtype = None if precision == "fp32" else _DTYPE_OF.get(precision, "bfloat16")
    loaded = load_causal_lm(base.path, base.gguf_file, dtype, gguf_cache, **kwargs)
    if precision == "4bit":
        return loaded.tokenizer, loaded.model
    # .to(float32), not .float(): a GGUF read directly (its converted copy not made yet) counts as quantized, and
    # transformers refuses .float() on those although the weights are already dequantized.
    model = loaded.model.to(torch.float32) if precision == "fp32" else loaded.model
    return loaded.tokenizer, model.to(device)


def load_tokenizer(base: BaseModel):
    """The tokenizer alone (dataset previews count tokens with it), from the converted copy when there is one."""
    from transformers import AutoTokenizer

    from ..engines.gguf_cache import find_converted

    copy = find_converted(base.path / base.gguf_file, None) if base.gguf_file else None
    if copy is not None or not base.gguf_file:
        return AutoTokenizer.from_pretrained(copy or base.path)
    return AutoTokenizer.from_pretrained(base.path, gguf_file=base.gguf_file)


def with_role(model, registry, role, workdir: Path):
    """The model under a role's adapters (`role`: a RoleSpec, any version; a PeftModel in eval mode). A stacked or
    weighted role is combined into one LoRA first, exactly as serving combines it."""
    from peft import PeftModel

    from ..roles.path_adapters import write_stacked
    from ..roles.stacking import stack
    from ..roles.validation import load_adapter_weights

    adapters = [(registry.adapter(name), weight) for name, weight in role.adapters.items()]
    if not adapters:
        return model  # a role without adapters answers with the base model
    if len(adapters) == 1 and adapters[0][1] == 1.0:
        folder = adapters[0][0].path
    else:
        parts = [(spec.name, *load_adapter_weights(spec.path), weight) for spec, weight in adapters]
        folder = write_stacked(Path(tempfile.mkdtemp(dir=workdir)), *stack(parts))
    return PeftModel.from_pretrained(model, str(folder)).eval()
