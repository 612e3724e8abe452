"""Describe a local model from its files' headers, without loading a weight: what `konsilium model info` shows.

Loading the embedded GGUF through transformers dequantizes every tensor (a minute or more on a laptop CPU);
the GGUF header and tensor table, or config.json and the safetensors headers, already say everything
`model info` reports. The GGUF reader is ours (stdlib, a few dozen lines): it skips the 49k-entry tokenizer
arrays instead of materializing them, which is what makes the `gguf` package take seconds here.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import BinaryIO

from .model_files import embedded_default

GGUF_MAGIC = b"GGUF"
# Value types of GGUF metadata: struct formats of the scalars; 8 is a string, 9 an array.
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9
# general.file_type (llama.cpp's LLAMA_FTYPE): how the weights are stored.
FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K", 11: "Q3_K_S",
    12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 32: "BF16",
}  # fmt: skip
# transformers dequantizes a GGUF to this dtype unless engine.dtype says otherwise.
GGUF_COMPUTE_DTYPE = "float32"


class ModelMetadataError(ValueError):
    """The model files cannot be described (not a GGUF, truncated, no config.json): one line for the user."""


def read_gguf_header(path: Path) -> tuple[dict, list[tuple[str, list[int]]]]:
    """(metadata without arrays' contents, [(tensor name, shape)]) of a GGUF file; arrays become their length."""
    try:
        with open(path, "rb") as fh:
            if fh.read(4) != GGUF_MAGIC:
                raise ModelMetadataError(f"{path}: not a GGUF file")
            version, tensor_count, kv_count = struct.unpack("<IQQ", _exactly(fh, 20))
            if version not in (2, 3):
                raise ModelMetadataError(f"{path}: GGUF version {version} is not supported (2 or 3)")
            metadata = {}
            for _ in range(kv_count):
                key = _string(fh)
                metadata[key] = _value(fh, struct.unpack("<I", _exactly(fh, 4))[0])
            tensors = []
            for _ in range(tensor_count):
                name = _string(fh)
                (dims,) = struct.unpack("<I", _exactly(fh, 4))
                shape = list(struct.unpack(f"<{dims}Q", _exactly(fh, 8 * dims)))
                _exactly(fh, 12)  # tensor type (u32) and data offset (u64)
                tensors.append((name, shape))
    except (struct.error, UnicodeDecodeError, MemoryError) as exc:
        raise ModelMetadataError(f"{path}: damaged GGUF header ({exc})") from exc
    return metadata, tensors


def _exactly(fh: BinaryIO, size: int) -> bytes:
    data = fh.read(size)
    if len(data) != size:
        raise ModelMetadataError(f"{getattr(fh, 'name', 'file')}: truncated GGUF header")
    return data


def _string(fh: BinaryIO) -> str:
    (length,) = struct.unpack("<Q", _exactly(fh, 8))
    return _exactly(fh, length).decode("utf-8")


def _value(fh: BinaryIO, kind: int):
    if kind in _SCALARS:
        fmt = "<" + _SCALARS[kind]
        return struct.unpack(fmt, _exactly(fh, struct.calcsize(fmt)))[0]
    if kind == _STRING:
        return _string(fh)
    if kind == _ARRAY:
        item_kind, count = struct.unpack("<IQ", _exactly(fh, 12))
        if item_kind in _SCALARS:  # skipped in one seek
            fh.seek(struct.calcsize("<" + _SCALARS[item_kind]) * count, 1)
        else:
            for _ in range(count):
                _value(fh, item_kind)
        return count
    raise ModelMetadataError(f"{getattr(fh, 'name', 'file')}: unknown GGUF value type {kind}")


def describe_gguf(file: Path) -> dict:
    metadata, tensors = read_gguf_header(file)
    arch = metadata.get("general.architecture")
    file_type = metadata.get("general.file_type")
    return {
        "architecture": arch,
        "weights": FILE_TYPES.get(file_type, f"type {file_type}") if file_type is not None else None,
        "parameters": sum(math.prod(shape) for _, shape in tensors),
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
