"""Read a model description: HF config.json (file or model directory) or GGUF metadata; apply `--set a.b=c`."""

from __future__ import annotations

import copy
import json
import struct
from pathlib import Path

from .architectures import PlanError

GGUF_MAGIC = b"GGUF"
# GGUF metadata value types -> struct format (8 = string, 9 = array)
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
# GGUF general.architecture -> HF model_type
GGUF_ARCH = {
    "llama": "llama",
    "mistral": "mistral",
    "qwen2": "qwen2",
    "qwen3": "qwen3",
    "gemma": "gemma",
    "gemma2": "gemma2",
    "gemma3": "gemma3_text",
    "qwen2moe": "qwen2_moe",
    "qwen3moe": "qwen3_moe",
    "deepseek2": "deepseek_v3",
}


def load_config(source: str | Path) -> dict:
    """A config dict from a config.json, a model directory holding one, or a .gguf file."""
    path = Path(source).expanduser()
    if path.is_dir():
        if (path / "config.json").is_file():
            path = path / "config.json"
        else:
            ggufs = sorted(path.glob("*.gguf"))
            if not ggufs:
                raise PlanError(f"{path}: no config.json or .gguf file in this directory")
            path = ggufs[0]
    if not path.exists():
        raise PlanError(f"{path}: no such file")
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic == GGUF_MAGIC:
        return gguf_to_config(read_gguf(path))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PlanError(f"{path}: not a JSON config or GGUF file ({exc})") from exc
    if not isinstance(data, dict):
        raise PlanError(f"{path}: expected a JSON object")
    return data


def parse_value(text: str):
    """`10` -> 10, `4.0` -> 4.0, `true` -> True, `null` -> None, `[1,2]` -> list; anything else stays a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def apply_overrides(cfg: dict, assignments: list[str]) -> tuple[dict, dict]:
    """Return (new config, {dotted key: (old, new)}) for `a.b=c` assignments; the input is not modified."""
    out = copy.deepcopy(cfg)
    changes: dict = {}
    for item in assignments:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise PlanError(f"--set {item!r}: expected FIELD=VALUE, e.g. --set num_experts_per_tok=10")
        parts = key.split(".")
        node = out
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        old = node.get(parts[-1])
        node[parts[-1]] = parse_value(raw.strip())
        changes[key] = (old, node[parts[-1]])
    return out, changes


# ---------------------------------------------------------------- GGUF


def _read(fh, fmt: str):
    size = struct.calcsize(fmt)
    data = fh.read(size)
    if len(data) != size:
        raise PlanError("truncated GGUF header")
    return struct.unpack(fmt, data)[0]


def _string(fh) -> str:
    n = _read(fh, "<Q")
    if n > 1 << 24:
        raise PlanError("corrupt GGUF header (string too long)")
    return fh.read(n).decode("utf-8", errors="replace")


def _value(fh, vtype: int, keep_arrays: bool):
    if vtype in _SCALARS:
        return _read(fh, _SCALARS[vtype])
    if vtype == 8:
        return _string(fh)
    if vtype == 9:
        itype, n = _read(fh, "<I"), _read(fh, "<Q")
        if itype in _SCALARS and not keep_arrays:
            fh.seek(n * struct.calcsize(_SCALARS[itype]), 1)
            return {"array_len": n}
        items = [_value(fh, itype, False) for _ in range(n)]
        return items if keep_arrays else {"array_len": n}
    raise PlanError(f"corrupt GGUF header (value type {vtype})")


def read_gguf(path: Path) -> dict:
    """Metadata key/values plus tensor infos (name, shape); tensor data is never read."""
    with path.open("rb") as fh:
        if fh.read(4) != GGUF_MAGIC:
            raise PlanError(f"{path}: not a GGUF file")
        version = _read(fh, "<I")
        if version < 2:
            raise PlanError(f"{path}: GGUF version {version} is too old")
        n_tensors, n_kv = _read(fh, "<Q"), _read(fh, "<Q")
        meta = {}
        for _ in range(n_kv):
            key = _string(fh)
            vtype = _read(fh, "<I")
            meta[key] = _value(fh, vtype, keep_arrays=key.endswith("head_count_kv") or key.endswith("head_count"))
        tensors = {}
        for _ in range(n_tensors):
            name = _string(fh)
            dims = [_read(fh, "<Q") for _ in range(_read(fh, "<I"))]
            _read(fh, "<I")  # ggml type
            _read(fh, "<Q")  # offset
            tensors[name] = dims
    return {"metadata": meta, "tensors": tensors}


def gguf_to_config(gguf: dict) -> dict:
    meta, tensors = gguf["metadata"], gguf["tensors"]
    arch = meta.get("general.architecture")
    if not arch:
        raise PlanError("GGUF file lacks general.architecture")

    def get(key: str, default=None):
        value = meta.get(f"{arch}.{key}", default)
        if isinstance(value, list):  # per-layer arrays: take the first (uniform models)
            value = value[0] if value else default
        return value

    cfg: dict = {"model_type": GGUF_ARCH.get(arch, arch), "source_format": "gguf"}
    pairs = {
        "hidden_size": "embedding_length",
        "intermediate_size": "feed_forward_length",
        "num_hidden_layers": "block_count",
        "num_attention_heads": "attention.head_count",
        "num_key_value_heads": "attention.head_count_kv",
        "head_dim": "attention.key_length",
        "max_position_embeddings": "context_length",
        "rope_theta": "rope.freq_base",
        "rms_norm_eps": "attention.layer_norm_rms_epsilon",
        "num_experts_per_tok": "expert_used_count",
        "moe_intermediate_size": "expert_feed_forward_length",
        "sliding_window": "attention.sliding_window",
        "kv_lora_rank": "attention.kv_lora_rank",
        "q_lora_rank": "attention.q_lora_rank",
        "qk_rope_head_dim": "rope.dimension_count",
        "n_shared_experts": "expert_shared_count",
        "first_k_dense_replace": "leading_dense_block_count",
    }
    for hf_key, gguf_key in pairs.items():
        value = get(gguf_key)
        if value is not None:
            cfg[hf_key] = value
    experts = get("expert_count")
    if experts:
        cfg["num_local_experts" if arch in {"mixtral", "llama"} else "num_experts"] = experts
        cfg["n_routed_experts"] = experts
        if arch == "llama":  # llama.cpp stores Mixtral as llama with experts
            cfg["model_type"] = "mixtral"
    if cfg["model_type"] == "qwen2_moe" and get("expert_shared_feed_forward_length"):
        cfg["shared_expert_intermediate_size"] = get("expert_shared_feed_forward_length")
    if cfg["model_type"] == "deepseek_v3":
        key_len, val_len = get("attention.key_length"), get("attention.value_length")
        if key_len and cfg.get("qk_rope_head_dim"):
            cfg["qk_nope_head_dim"] = key_len - cfg["qk_rope_head_dim"]
        if val_len:
            cfg["v_head_dim"] = val_len
        cfg.pop("head_dim", None)
    vocab = get("vocab_size") or (meta.get("tokenizer.ggml.tokens") or {}).get("array_len")
    if not vocab and "token_embd.weight" in tensors:
        vocab = tensors["token_embd.weight"][-1]
    if vocab:
        cfg["vocab_size"] = vocab
    if tensors:
        cfg["tie_word_embeddings"] = "output.weight" not in tensors
    return cfg
