"""Exact parameter and KV-cache shapes per architecture family, from config fields alone (no torch).

Each layer is described as a list of linear modules (name, in, out, bias) so that the same description
serves the parameter count, the per-token bytes read at decode, and LoRA adapter sizes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .context import ContextWindow, context_window

DENSE_TYPES = {"llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text"}
MOE_TYPES = {"qwen3_moe", "qwen2_moe", "mixtral", "deepseek_v2", "deepseek_v3"}
ARCH_TO_TYPE = {
    "LlamaForCausalLM": "llama",
    "MistralForCausalLM": "mistral",
    "Qwen2ForCausalLM": "qwen2",
    "Qwen3ForCausalLM": "qwen3",
    "GemmaForCausalLM": "gemma",
    "Gemma2ForCausalLM": "gemma2",
    "Gemma3ForCausalLM": "gemma3_text",
    "Qwen3MoeForCausalLM": "qwen3_moe",
    "Qwen2MoeForCausalLM": "qwen2_moe",
    "MixtralForCausalLM": "mixtral",
    "DeepseekV2ForCausalLM": "deepseek_v2",
    "DeepseekV3ForCausalLM": "deepseek_v3",
}
SUPPORTED = sorted(DENSE_TYPES | MOE_TYPES)


class PlanError(ValueError):
    """Bad or unsupported model description; the message names what is missing."""


@dataclass
class Linear:
    name: str
    fan_in: int
    fan_out: int
    bias: bool = False

    @property
    def params(self) -> int:
        return self.fan_in * self.fan_out + (self.fan_out if self.bias else 0)


@dataclass
class Layer:
    attention: list[Linear]
    attn_other: int  # norms inside attention (q_norm, k_norm, MLA layernorms)
    norms: int  # per-layer RMSNorms around attention and MLP
    dense_mlp: list[Linear] = field(default_factory=list)
    experts: int = 0
    experts_per_token: int = 0
    expert_mlp: list[Linear] = field(default_factory=list)  # one routed expert
    shared_mlp: list[Linear] = field(default_factory=list)  # always-active shared expert(s)
    router: int = 0  # router weight (+ shared-expert gate), always read
    kv_elems_per_token: int = 0  # cached elements per token in this layer
    sliding_window: int | None = None

    def linear_params(self, mods: list[Linear]) -> int:
        return sum(m.params for m in mods)

    @property
    def total(self) -> int:
        experts = self.experts * self.linear_params(self.expert_mlp)
        return (
            self.linear_params(self.attention)
            + self.attn_other
            + self.norms
            + self.linear_params(self.dense_mlp)
            + experts
            + self.linear_params(self.shared_mlp)
            + self.router
        )

    @property
    def active(self) -> int:
        return self.total - (self.experts - self.experts_per_token) * self.linear_params(self.expert_mlp)


@dataclass
class ModelShape:
    model_type: str
    hidden_size: int
    vocab_size: int
    layers: list[Layer]
    tied: bool
    final_norm: int
    context: ContextWindow  # trained and RoPE-extended context lengths
    notes: list[str] = field(default_factory=list)
    kv_kind: str = "standard"  # or "mla-compressed"

    @property
    def embed(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def lm_head(self) -> int:
        return 0 if self.tied else self.vocab_size * self.hidden_size

    @property
    def total_params(self) -> int:
        return self.embed + self.lm_head + self.final_norm + sum(layer.total for layer in self.layers)

    @property
    def active_params(self) -> int:
        """Per token, counting the embedding table and LM head in full (the usual convention, e.g. Qwen's 3.3B)."""
        return self.embed + self.lm_head + self.final_norm + sum(layer.active for layer in self.layers)

    @property
    def read_params_per_token(self) -> int:
        """Parameters actually streamed from memory for one decoded token: one embedding row, not the table."""
        head = self.embed if self.tied else self.lm_head
        return self.active_params - self.embed - self.lm_head + head + self.hidden_size

    @property
    def is_moe(self) -> bool:
        return any(layer.experts for layer in self.layers)

    @property
    def kv_elems_per_token(self) -> int:
        return sum(layer.kv_elems_per_token for layer in self.layers)

    def kv_elems(self, context: int) -> int:
        """Cached elements for one sequence of `context` tokens (sliding-window layers keep only their window)."""
        total = 0
        for layer in self.layers:
            span = min(context, layer.sliding_window) if layer.sliding_window else context
            total += layer.kv_elems_per_token * span
        return total


def _need(cfg: dict, names: list[str], model_type: str) -> None:
    missing = [n for n in names if cfg.get(n) is None]
    if missing:
        raise PlanError(f"config for {model_type!r} lacks required field(s): {', '.join(missing)}")


# transformers 5 writes some fields under new names; read either.
ALIASES = {
    "num_experts": "num_local_experts",
    "num_local_experts": "num_experts",
    "n_routed_experts": "num_local_experts",
}


def _normalise(cfg: dict) -> dict:
    out = dict(cfg)
    for name, alias in ALIASES.items():
        if out.get(name) is None and out.get(alias) is not None:
            out[name] = out[alias]
    return out


def resolve_model_type(cfg: dict) -> str:
    mt = cfg.get("model_type")
    if mt == "gemma3" and isinstance(cfg.get("text_config"), dict):
        mt = "gemma3_text"
    if mt in DENSE_TYPES or mt in MOE_TYPES:
        return mt
    for arch in cfg.get("architectures") or []:
        if arch in ARCH_TO_TYPE:
            return ARCH_TO_TYPE[arch]
    return mt or ""


def _generic_fields_missing(cfg: dict) -> list[str]:
    need = ["hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size", "intermediate_size"]
    return [n for n in need if cfg.get(n) is None]


def analyze(cfg: dict) -> ModelShape:
    """Turn a (merged, overridden) HF config dict into an exact shape description."""
    cfg = _normalise(cfg)
    mt = resolve_model_type(cfg)
    if mt == "gemma3_text" and isinstance(cfg.get("text_config"), dict):
        cfg = _normalise({**cfg["text_config"], "model_type": "gemma3_text"})
    if mt not in DENSE_TYPES and mt not in MOE_TYPES:
        missing = _generic_fields_missing(cfg)
        hint = f"; it also lacks {', '.join(missing)}" if missing else ""
        raise PlanError(
            f"unknown architecture {mt or cfg.get('architectures') or '(no model_type)'!r}: "
            f"supported model_type values are {', '.join(SUPPORTED)} "
            f"(a llama-like model can be planned with --set model_type=llama){hint}"
        )
    if mt.startswith("deepseek"):
        return _deepseek(cfg, mt)
    _need(cfg, ["hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size"], mt)
    h = int(cfg["hidden_size"])
    n_layers = int(cfg["num_hidden_layers"])
    n_heads = int(cfg["num_attention_heads"])
    n_kv = int(cfg.get("num_key_value_heads") or n_heads)
    head_dim = int(cfg.get("head_dim") or h // n_heads)
    vocab = int(cfg["vocab_size"])
    tied_default = mt.startswith("gemma")
    tied = bool(cfg.get("tie_word_embeddings", tied_default))
    notes: list[str] = []

    qkv_bias = bool(cfg.get("attention_bias", False)) or mt in {"qwen2", "qwen2_moe"}
    o_bias = bool(cfg.get("attention_bias", False)) and mt not in {"qwen2", "qwen2_moe"}
    mlp_bias = bool(cfg.get("mlp_bias", False)) and mt == "llama"
    attention = [
        Linear("q_proj", h, n_heads * head_dim, qkv_bias),
        Linear("k_proj", h, n_kv * head_dim, qkv_bias),
        Linear("v_proj", h, n_kv * head_dim, qkv_bias),
        Linear("o_proj", n_heads * head_dim, h, o_bias),
    ]
    attn_other = 2 * head_dim if mt in {"qwen3", "qwen3_moe", "gemma3_text"} else 0
    norms = 4 * h if mt in {"gemma2", "gemma3_text"} else 2 * h

    layer_types = cfg.get("layer_types")
    window = cfg.get("sliding_window")
    use_window = mt in {"gemma2", "gemma3_text", "mistral"} or bool(cfg.get("use_sliding_window"))

    def mlp(size: int, prefix: str = "") -> list[Linear]:
        return [
            Linear(prefix + "gate_proj", h, size, mlp_bias),
            Linear(prefix + "up_proj", h, size, mlp_bias),
            Linear(prefix + "down_proj", size, h, mlp_bias),
        ]

    layers = []
    for i in range(n_layers):
        layer = Layer(attention=attention, attn_other=attn_other, norms=norms)
        layer.kv_elems_per_token = 2 * n_kv * head_dim
        if window and use_window:
            sliding = layer_types[i] == "sliding_attention" if isinstance(layer_types, list) else None
            if sliding is None and mt == "gemma2":
                sliding = i % 2 == 0
            if sliding is None and mt == "mistral":
                sliding = True
            if sliding:
                layer.sliding_window = int(window)
        if mt in DENSE_TYPES:
            _need(cfg, ["intermediate_size"], mt)
            layer.dense_mlp = mlp(int(cfg["intermediate_size"]))
        elif mt == "mixtral":
            _need(cfg, ["intermediate_size", "num_local_experts", "num_experts_per_tok"], mt)
            layer.experts = int(cfg["num_local_experts"])
            layer.experts_per_token = int(cfg["num_experts_per_tok"])
            layer.expert_mlp = mlp(int(cfg["intermediate_size"]), "experts.")
            layer.router = layer.experts * h
        else:  # qwen3_moe, qwen2_moe
            _need(cfg, ["num_experts", "num_experts_per_tok", "moe_intermediate_size"], mt)
            experts = int(cfg["num_experts"])
            step = int(cfg.get("decoder_sparse_step") or 1)
            sparse = i not in (cfg.get("mlp_only_layers") or []) and experts > 0 and (i + 1) % step == 0
            if sparse:
                layer.experts = experts
                layer.experts_per_token = int(cfg["num_experts_per_tok"])
                layer.expert_mlp = mlp(int(cfg["moe_intermediate_size"]), "experts.")
                layer.router = experts * h
                shared = int(cfg.get("shared_expert_intermediate_size") or 0) if mt == "qwen2_moe" else 0
                if shared:
                    layer.shared_mlp = mlp(shared, "shared_expert.")
                    layer.router += h  # shared_expert_gate
            else:
                _need(cfg, ["intermediate_size"], mt)
                layer.dense_mlp = mlp(int(cfg["intermediate_size"]))
        layers.append(layer)
    if any(layer.sliding_window for layer in layers):
        notes.append(f"sliding-window layers cache at most {window} tokens each")
    return ModelShape(
        model_type=mt,
        hidden_size=h,
        vocab_size=vocab,
        layers=layers,
        tied=tied,
        final_norm=h,
        context=context_window(cfg),
        notes=notes,
    )


def _deepseek(cfg: dict, mt: str) -> ModelShape:
    need = ["hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size", "intermediate_size"]
    need += ["kv_lora_rank", "qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim"]
    _need(cfg, need, mt)
    h = int(cfg["hidden_size"])
    n_heads = int(cfg["num_attention_heads"])
    rope, nope, v_dim = int(cfg["qk_rope_head_dim"]), int(cfg["qk_nope_head_dim"]), int(cfg["v_head_dim"])
    kv_rank = int(cfg["kv_lora_rank"])
    q_rank = cfg.get("q_lora_rank")
    bias = bool(cfg.get("attention_bias", False))
    qk = nope + rope
    if q_rank:
        attention = [Linear("q_a_proj", h, int(q_rank), bias), Linear("q_b_proj", int(q_rank), n_heads * qk)]
        attn_other = int(q_rank) + kv_rank
    else:
        attention = [Linear("q_proj", h, n_heads * qk)]
        attn_other = kv_rank
    attention += [
        Linear("kv_a_proj_with_mqa", h, kv_rank + rope, bias),
        Linear("kv_b_proj", kv_rank, n_heads * (nope + v_dim)),
        Linear("o_proj", n_heads * v_dim, h, bias),
    ]
    first_dense = int(cfg.get("first_k_dense_replace") or 0)
    routed = int(cfg.get("n_routed_experts") or 0)
    layers = []
    for i in range(int(cfg["num_hidden_layers"])):
        layer = Layer(attention=attention, attn_other=attn_other, norms=2 * h, kv_elems_per_token=kv_rank + rope)
        if i >= first_dense and routed:
            _need(cfg, ["moe_intermediate_size", "num_experts_per_tok"], mt)
            size = int(cfg["moe_intermediate_size"])
            layer.experts = routed
            layer.experts_per_token = int(cfg["num_experts_per_tok"])
            layer.expert_mlp = [
                Linear("experts.gate_proj", h, size),
                Linear("experts.up_proj", h, size),
                Linear("experts.down_proj", size, h),
            ]
            shared = size * int(cfg.get("n_shared_experts") or 0)
            if shared:
                layer.shared_mlp = [
                    Linear("shared_experts.gate_proj", h, shared),
                    Linear("shared_experts.up_proj", h, shared),
                    Linear("shared_experts.down_proj", shared, h),
                ]
            layer.router = routed * h
        else:
            size = int(cfg["intermediate_size"])
            layer.dense_mlp = [Linear("gate_proj", h, size), Linear("up_proj", h, size), Linear("down_proj", size, h)]
        layers.append(layer)
    notes = [
        "MLA: the cache holds the compressed latent (kv_lora_rank + qk_rope_head_dim per layer), as vLLM, "
        "SGLang, llama.cpp and transformers do"
    ]
    if cfg.get("num_nextn_predict_layers"):
        notes.append("multi-token-prediction layers in the checkpoint are not counted (not used for plain decoding)")
    return ModelShape(
        model_type=mt,
        hidden_size=h,
        vocab_size=int(cfg["vocab_size"]),
        layers=layers,
        tied=bool(cfg.get("tie_word_embeddings", False)),
        final_norm=h,
        context=context_window(cfg),
        notes=notes,
        kv_kind="mla-compressed",
    )
