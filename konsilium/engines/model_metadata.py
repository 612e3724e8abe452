"""Describe a local model from its files' headers, without loading a weight: what `konsilium model info` shows.

Loading the embedded GGUF through transformers dequantizes every tensor (a minute or more on a laptop CPU);
the GGUF header and tensor table, or config.json and the safetensors headers, already say everything
`model info` reports. The GGUF header is read by the planner's reader (`plan.config_source.read_gguf`, stdlib):
it skips numeric arrays in one seek and keeps no tokenizer arrays, where the `gguf` package takes seconds.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

from .model_files import embedded_default

# general.file_type (llama.cpp's LLAMA_FTYPE): how the weights are stored.
FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K", 11: "Q3_K_S",
    12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 32: "BF16",
}  # fmt: skip
# transformers dequantizes a GGUF to this dtype unless engine.dtype says otherwise.
GGUF_COMPUTE_DTYPE = "float32"


class ModelMetadataError(ValueError):
    """The model files cannot be described (not a GGUF, truncated, no config.json): one line for the user."""


def describe_gguf(file: Path) -> dict:
    from ..plan.architectures import PlanError
    from ..plan.config_source import read_gguf  # the planner's header reader: metadata and tensor shapes only

    try:
        header = read_gguf(file)
    except (PlanError, OSError, struct.error) as exc:
        raise ModelMetadataError(f"{file}: {exc}") from exc
    metadata = header["metadata"]
    arch = metadata.get("general.architecture")
    file_type = metadata.get("general.file_type")
    return {
        "architecture": arch,
        "weights": FILE_TYPES.get(file_type, f"type {file_type}") if file_type is not None else None,
        "parameters": sum(math.prod(shape) for shape in header["tensors"].values()),
        "context_length": metadata.get(f"{arch}.context_length"),
    }


def describe_hf_folder(folder: Path) -> dict:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelMetadataError(f"{folder}: cannot read config.json ({exc})") from exc
    text = config.get("text_config") or config  # multimodal configs nest the language model's
    context = next(
        (text[k] for k in ("max_position_embeddings", "n_positions", "max_seq_len") if isinstance(text.get(k), int)),
        None,
    )
    return {
        "architecture": config.get("model_type"),
        "weights": config.get("dtype") or config.get("torch_dtype"),
        "parameters": _safetensors_parameters(folder),
        "context_length": context,
    }


def _safetensors_parameters(folder: Path) -> int | None:
    """Elements of every tensor, from each safetensors file's JSON header (8-byte length + JSON)."""
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for file in files:
        try:
            with open(file, "rb") as fh:
                (length,) = struct.unpack("<Q", fh.read(8))
                header = json.loads(fh.read(length))
        except (OSError, ValueError, struct.error):
            return None
        total += sum(math.prod(t["shape"]) for name, t in header.items() if name != "__metadata__")
    return total


def describe_local_model(model: str, dtype: str = "auto", device: str = "cpu") -> dict:
    """What the transformers engine would be for `engine.model` (`embedded`, a .gguf file or a folder), read
    from the files' headers: the keys of `TransformersEngine.info()` but `batching` (the CLI adds the settings')."""
    if model == "embedded":
        folder, gguf_file = embedded_default()
    else:
        path = Path(model).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"engine.model: {path} does not exist (give a HF model folder, a .gguf file)")
        folder, gguf_file = (path.parent, path.name) if path.is_file() else (path, None)
        if gguf_file is None and not (folder / "config.json").is_file():
            ggufs = sorted(folder.glob("*.gguf"))
            if len(ggufs) != 1:
                found = f"{len(ggufs)} .gguf files" if ggufs else "no .gguf file"
                raise FileNotFoundError(f"engine.model: {folder} has no config.json and {found}: name the model file")
            gguf_file = ggufs[0].name
    facts = describe_gguf(folder / gguf_file) if gguf_file else describe_hf_folder(folder)
    stored = facts["weights"]
    compute = dtype if dtype != "auto" else (GGUF_COMPUTE_DTYPE if gguf_file else stored)
    return {
        "engine": "transformers",
        "path": str(folder.resolve()),
        "gguf_file": gguf_file,
        "architecture": facts["architecture"],
        "dtype": compute,
        "device": device,
        "parameters": facts["parameters"],
        "context_length": facts["context_length"],
    }
