"""Does a training run fit? Bytes for LoRA / attention-only / router-only training, from the shape alone (no torch).

Components (all bytes):
- weights: the frozen model at `precision` (fp32 4, bf16/fp16 2 bytes per parameter; 4bit = QLoRA: bitsandbytes
  NF4 with double quantization, 4 + 8/64 + 32/(64*256) = 4.127 bits per weight, applied to nn.Linear weights only:
  embeddings, lm_head (skipped by transformers), norms, routers and biases stay bf16, and so do MoE experts,
  because transformers 5 stores them as fused 3-D parameters, not nn.Linear);
- trainable (fp32), their gradients (fp32) and AdamW's two moments (2 x fp32): 16 bytes per trainable parameter;
- activations kept for backward, per token (a = 2 bytes in bf16/fp16/4bit compute, 4 in fp32; f = 4):
    each layer:  each RMSNorm keeps an fp32 copy of its input       f·h (2 norms, Gemma 2/3: 4)
                 q/k/v (or MLA latents) and the attention output     a·(Σ fan_out of the input projections + o.fan_in)
                 q/k norms (Qwen3, Gemma 3; MLA latent norms)         f·(normed width)
                 dense / shared MLP: gate, up and act(gate)          a·3·intermediate
                 MoE: per routed expert gate, up, act, its output    k·a·(3·moe_intermediate + h), router f·experts
                 LoRA: each target's input cast to fp32 by PEFT      f·fan_in (fp32 training: one per distinct input)
                       and its A output                              f·rank            (experts: x k routed copies)
    gradient checkpointing (transformers, per decoder layer): every layer keeps only its input (a·h), and backward
    recomputes one layer at a time after the logits are freed, so the peak adds one full layer or the logits,
    whichever is larger (measured on the H200 below: the sum overestimated by 0.5 GiB at 8k tokens); without it
    every layer's full set is kept, and is alive beside the logits at the loss;
    on CUDA the layers' share is multiplied by CUDA_ACTIVATION_FACTOR (measured, see there);
- logits: batch x seq x vocab x 11 bytes in bf16/fp16 (the bf16 logits the model returns, their fp32 upcast for the
  loss, the fp32 log-softmax kept for backward and its gradient), 16 bytes in fp32 - measured, see below;
- overhead: memory.RUNTIME_OVERHEAD (1 GiB): CUDA context, allocator slack and kernel workspaces; on a CPU run it
  stands for the torch process itself.

Measured (torch 2.13 CPU, transformers 5.24, peft 0.21, sdpa attention, batch 2 x seq 256; the tensors saved for
backward summed through torch.autograd.graph.saved_tensors_hooks, peak RSS with MALLOC_MMAP_THRESHOLD_=65536): a
tiny Llama (hidden 256, intermediate 688, 4 layers, 2 KV heads, LoRA r=8 on q/k/v/o/gate/up/down) keeps 16,832
bytes per token per layer in bf16 (formula: 16,832) and 18,490 in fp32 (18,400); a tiny Qwen3-MoE (16 experts, top
4, LoRA on q/k/v/o) 14,746 (14,528). Peak RSS growth over the step against activations + logits here: bf16 213 MiB
without checkpointing (205), 181 with it (182); fp32 303 (286) and 269 (261). Logits: a vocab of 128,000 instead
of 32,000 raised the peak by 11.0 bytes per logit in bf16 and 16.0 in fp32. The estimate is an order-of-magnitude
tool: within ~5% on these, not a guarantee for every kernel.

Left out: the attention score matrix of eager attention (batch x heads x seq² per layer; sdpa / flash attention
keep none), lora_dropout > 0 (each target keeps its own dropped-out input and mask), the optimizer step's
temporaries, torch.compile, sequence packing, allocator fragmentation beyond the overhead, and the full expert
delta weights that PEFT's target_parameters (LoRA on transformers 5's fused experts) builds per layer. Under
torch.autocast the LoRA inputs are cast to bf16, not fp32: the estimate is then a little high.
"""

from __future__ import annotations

from .architectures import MOE_TYPES, Layer, Linear, ModelShape, PlanError
from .memory import RUNTIME_OVERHEAD, known_targets, lora_params

TRAIN_MODES = ("lora", "attention", "router")
TRAIN_PRECISIONS = ("fp32", "bf16", "fp16", "4bit")
NF4_BITS = 4 + 8 / 64 + 32 / (64 * 256)  # 4.127: NF4 codes, 8-bit absmax per 64 weights, fp32 scale per 256 absmax
F32 = 4
ADAMW_STATES = 2  # exp_avg and exp_avg_sq, fp32 each
# Activations on CUDA against the formula (measured on CPU, below): an H200, torch 2.11, transformers 5.17, peft 0.21,
# Qwen3-0.6B's shape (random weights), LoRA r=16 on q/k/v/o/gate/up/down, no checkpointing: the peak exceeded
# weights + trainable state + activations + logits by 14-19 % of the activations at 4k and 8k tokens per step (bf16
# and 4bit alike; benchmarks/gpu_training.py --grid). Not itemized: the CUDA attention kernels and casts keep more.
CUDA_ACTIVATION_FACTOR = 1.18
LOGIT_BYTES = {2: 11, 4: 16}  # per logit at the peak around the loss, by compute bytes (measured, see above)
# konsilium's transformers engine holds LoRA slots for these nn.Linear names (engines.lora_slots.DEFAULT_TARGETS,
# kept equal by a test; that module imports torch). They are also the default targets of `--mode lora`.
ENGINE_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
QK_NORM_TYPES = {"qwen3", "qwen3_moe", "gemma3_text"}

# What serves the result afterwards (checked in the vLLM source, 2025-2026):
# - LoRA on attention and dense/shared MLP linears: vLLM (models with SupportsLoRA) and konsilium's transformers
#   engine (the slot targets above).
# - LoRA on routed experts: vLLM before its fused-MoE LoRA (PR #21229, merged Oct 2025) warned "vLLM currently does
#   not support fused MoE LoRA inference" and dropped expert weights (PR #20932); since then FusedMoEWithLoRA
#   (vllm/lora/layers/fused_moe.py) serves it for models wired to it, but asserts "EP support for Fused MoE LoRA is
#   not implemented yet" (no expert parallelism), and not every MoE has it (Qwen3.5-MoE: issue #40005, open).
#   konsilium's transformers engine hooks nn.Linear modules only; transformers 5 experts are fused parameters.
# - Full router weights (PEFT modules_to_save): vLLM refuses any adapter with modules_to_save ("vLLM only supports
#   modules_to_save being None", vllm/lora/peft_helper.py; issue #9280; PRs #8082/#11714 adding it were closed).
#   Newer vLLM has LoRA on the router (vllm/lora/layers/gate_linear.py), which is not what router mode trains.
#   konsilium's LoRA slots take LoRA A/B weights only (lora_slots.prepare refuses other keys).
EXPERT_LORA_WARNING = (
    "LoRA on MoE expert weights ({names} of {experts} experts): vLLM serves it only through its fused-MoE LoRA "
    "(from late 2025, models wired for it, no expert parallelism; older vLLM drops or refuses expert weights); "
    "konsilium's transformers engine cannot serve it (its LoRA slots hook nn.Linear modules, and transformers 5 "
    "stores experts as fused parameters). Use --mode attention or targets without experts to stay servable."
)
ROUTER_WARNING = (
    "router mode trains full router matrices ({modules}), saved as PEFT modules_to_save, not a LoRA adapter: vLLM "
    "refuses adapters with modules_to_save, and konsilium's transformers engine loads LoRA A/B weights only. To "
    "serve it, write the trained routers into a full copy of the model: both engines load that folder as a base model."
)


def training_plan(
    shape: ModelShape,
    *,
    precision: str = "bf16",
    mode: str = "lora",
    rank: int = 16,
    targets: list[str] | None = None,
    batch: int = 1,
    seq_len: int = 1024,
    gradient_checkpointing: bool = True,
    capacity_bytes: float | None = None,
    device: str = "cuda",
) -> dict:
    """Bytes of one training step on `device` ("cuda" or "cpu"); `fits` and `headroom_bytes` when `capacity_bytes`
    is given. PlanError on bad input, naming the allowed values."""
    _check(shape, precision, mode, rank, targets, batch, seq_len, capacity_bytes)
    if device not in ("cuda", "cpu"):
        raise PlanError(f"device {device!r}: allowed values are cuda, cpu")
    if mode == "router":
        resolved: list[str] = []
        trainable = sum(layer.router for layer in shape.layers)
    else:
        resolved = _resolve_targets(shape, mode, targets)
        trainable = lora_params(shape, rank, resolved)
    a = F32 if precision == "fp32" else 2
    weights = _weights_bytes(shape, precision)
    tokens = batch * seq_len
    router = mode == "router"
    factor = CUDA_ACTIVATION_FACTOR if device == "cuda" else 1.0
    kept = {ck: _activation_bytes_per_token(shape, a, set(resolved), rank, router, ck, factor) for ck in (True, False)}
    per_token = {ck: sum(parts) for ck, parts in kept.items()}
    logit_per_token = shape.vocab_size * LOGIT_BYTES[a]
    logits = tokens * logit_per_token
    activations = tokens * per_token[gradient_checkpointing]
    fixed = weights + trainable * F32 * (2 + ADAMW_STATES) + RUNTIME_OVERHEAD
    peak_per_token = _peak_per_token(kept[gradient_checkpointing], logit_per_token, gradient_checkpointing)
    total = fixed + tokens * peak_per_token
    result: dict = {
        "model_type": shape.model_type,
        "moe": shape.is_moe,
        "total_params": shape.total_params,
        "mode": mode,
        "precision": precision,
        "device": device,
        "rank": rank if mode != "router" else None,
        "targets": resolved,
        "trained_modules": _trained_modules(shape, mode, resolved),
        "trainable_params": trainable,
        "batch": batch,
        "seq_len": seq_len,
        "gradient_checkpointing": gradient_checkpointing,
        "weights_bytes": weights,
        "trainable_bytes": trainable * F32,
        "gradients_bytes": trainable * F32,
        "optimizer_bytes": trainable * F32 * ADAMW_STATES,
        "activations_bytes": activations,
        "activations_bytes_with_checkpointing": tokens * per_token[True],
        "activations_bytes_without_checkpointing": tokens * per_token[False],
        "logits_bytes": logits,
        # with checkpointing this layer and the logits are never alive together: the total counts only the larger
        "recomputed_layer_bytes": tokens * kept[gradient_checkpointing][1],
        "overhead_bytes": RUNTIME_OVERHEAD,
        "total_bytes": total,
        "capacity_bytes": capacity_bytes,
        "fits": None if capacity_bytes is None else total <= capacity_bytes,
        "headroom_bytes": None if capacity_bytes is None else capacity_bytes - total,
        "max_seq_len_fits": None,
        "needs": ["cuda", "bitsandbytes"] if precision == "4bit" else [],
        "serving_warnings": _serving_warnings(shape, mode, resolved),
        "notes": _notes(shape, precision, resolved, seq_len),
    }
    if capacity_bytes is not None:
        per_seq_token = batch * peak_per_token
        longest = max(0, int((capacity_bytes - fixed) // per_seq_token))
        window = shape.context.extended or shape.context.trained
        result["max_seq_len_fits"] = min(longest, window) if window else longest
    return result


def _check(shape, precision, mode, rank, targets, batch, seq_len, capacity_bytes) -> None:
    if mode not in TRAIN_MODES:
        raise PlanError(f"--mode {mode!r}: allowed values are {', '.join(TRAIN_MODES)}")
    if precision not in TRAIN_PRECISIONS:
        raise PlanError(f"--precision {precision!r}: allowed values are {', '.join(TRAIN_PRECISIONS)}")
    if batch < 1 or seq_len < 1:
        raise PlanError("--batch and --seq-len must be at least 1")
    if mode != "router" and rank < 1:
        raise PlanError("--rank must be at least 1")
    if targets and mode != "lora":
        raise PlanError(f"--targets applies to --mode lora; --mode {mode} chooses its own modules")
    if capacity_bytes is not None and capacity_bytes <= 0:
        raise PlanError("the memory to fit in must be positive")
    if mode == "router" and not shape.is_moe:
        raise PlanError(
            f"--mode router: this {shape.model_type} model is dense, it has no router to train "
            f"(router mode needs a mixture-of-experts model: {', '.join(sorted(MOE_TYPES))})"
        )


def _resolve_targets(shape: ModelShape, mode: str, targets: list[str] | None) -> list[str]:
    known = known_targets(shape)
    if mode == "attention":  # every linear of the attention block: q/k/v/o, or MLA's q_a/q_b/kv_a/kv_b/o
        return list(dict.fromkeys(m.name for layer in shape.layers for m in layer.attention))
    if not targets:
        return [t for t in ENGINE_TARGETS if t in known]
    unknown = sorted(set(targets) - known)
    if unknown:
        raise PlanError(
            f"--targets {', '.join(unknown)}: not a linear of this model (known: {', '.join(sorted(known))})"
        )
    return list(dict.fromkeys(targets))


def _linears(layer: Layer):
    """(linear, copies per layer, block): like memory's walk over a layer, with the block each linear sits in."""
    for mod in layer.attention:
        yield mod, 1, "attn"
    for mod in layer.dense_mlp + layer.shared_mlp:
        yield mod, 1, "mlp"
    for mod in layer.expert_mlp:
        yield mod, layer.experts, "expert"


def _weights_bytes(shape: ModelShape, precision: str) -> int:
    total = shape.total_params
    if precision != "4bit":
        return total * (F32 if precision == "fp32" else 2)
    # bitsandbytes replaces nn.Linear only: fused expert parameters, biases and everything else stay bf16
    quantized = sum(m.fan_in * m.fan_out for layer in shape.layers for m, _, b in _linears(layer) if b != "expert")
    return round(quantized * NF4_BITS / 8) + (total - quantized) * 2


def _mlp_width(mlp: list[Linear]) -> int:
    return mlp[0].fan_out if mlp else 0  # gate_proj's output: the intermediate size


def _normed_width(shape: ModelShape, layer: Layer) -> int:
    if shape.model_type in QK_NORM_TYPES:
        return layer.attention[0].fan_out + layer.attention[1].fan_out  # q_norm and k_norm per head
    if shape.kv_kind == "mla-compressed":
        return layer.attn_other  # the q and kv latent norms
    return 0


def _layer_bytes(shape: ModelShape, layer: Layer, a: int, targets: set[str], rank: int, router: bool) -> int:
    """Bytes one layer keeps for backward per token (see the module docstring for each term)."""
    h = shape.hidden_size
    out = layer.attention[-1]
    kept = F32 * layer.norms  # each RMSNorm keeps an fp32 copy of its input (layer.norms = count x h)
    kept += a * (sum(m.fan_out for m in layer.attention[:-1]) + out.fan_in) + F32 * _normed_width(shape, layer)
    kept += a * 3 * (_mlp_width(layer.dense_mlp) + _mlp_width(layer.shared_mlp))
    if layer.experts:
        kept += layer.experts_per_token * a * (3 * _mlp_width(layer.expert_mlp) + h) + F32 * layer.experts
        kept += a * h if router else 0  # the trained router's input
    shared: set[tuple[str, int]] = set()
    for mod, _, block in _linears(layer):
        if mod.name.split(".")[-1] not in targets:
            continue
        copies = layer.experts_per_token if block == "expert" else 1  # each token visits k experts, not all
        kept += F32 * rank * copies  # LoRA A's output
        if a < F32:  # PEFT casts each target's input to its fp32 adapter: one copy per target
            kept += F32 * mod.fan_in * copies
        elif mod.name.endswith("down_proj"):  # fp32: act(gate) * up, kept only for this LoRA
            kept += F32 * mod.fan_in * copies
        elif mod is not out and (block, mod.fan_in) not in shared:  # q/k/v share an input, so do gate/up
            shared.add((block, mod.fan_in))
            kept += F32 * mod.fan_in * copies
    return kept


def _activation_bytes_per_token(
    shape, a: int, targets: set[str], rank: int, router: bool, ckpt: bool, factor: float
) -> tuple[int, int]:
    """(kept through the whole step, the one layer recomputed in backward with checkpointing: 0 without it)."""
    full = [round(factor * _layer_bytes(shape, layer, a, targets, rank, router)) for layer in shape.layers]
    final_norm = F32 * shape.hidden_size
    if ckpt:  # each layer's input, plus the one layer being recomputed in backward
        return len(full) * a * shape.hidden_size + final_norm, max(full)
    return sum(full) + final_norm, 0


def _peak_per_token(kept: tuple[int, int], logits: int, ckpt: bool) -> int:
    """Without checkpointing every layer's activations are alive at the loss, beside the logits. With it the
    logits are gone (consumed by lm_head's backward) before the first layer is recomputed: the larger of the two."""
    always, recomputed = kept
    return always + (max(recomputed, logits) if ckpt else logits)


def _expert_targets(shape: ModelShape, targets: list[str]) -> list[str]:
    names = {m.name.split(".")[-1] for layer in shape.layers for m in layer.expert_mlp}
    return [t for t in targets if t in names]


def _trained_modules(shape: ModelShape, mode: str, targets: list[str]) -> list[str]:
    """Module paths (layer number as *) that get LoRA, or, in router mode, are trained in full."""
    out: list[str] = []
    for layer in shape.layers:
        if mode == "router":
            names = ["mlp.gate"] if layer.experts else []
            if layer.shared_mlp and shape.model_type == "qwen2_moe":
                names.append("mlp.shared_expert_gate")
        else:
            names = []
            for mod, count, block in _linears(layer):
                if mod.name.split(".")[-1] in targets:
                    where = "self_attn" if block == "attn" else "mlp"
                    names.append(f"{where}.{mod.name}" + (f" (x{count})" if block == "expert" else ""))
        out += [f"model.layers.*.{n}" for n in names if f"model.layers.*.{n}" not in out]
    return out


def _serving_warnings(shape: ModelShape, mode: str, targets: list[str]) -> list[str]:
    if mode == "router":
        return [ROUTER_WARNING.format(modules=", ".join(_trained_modules(shape, mode, targets)))]
    warnings = []
    experts = _expert_targets(shape, targets)
    if experts:
        count = max(layer.experts for layer in shape.layers)
        warnings.append(EXPERT_LORA_WARNING.format(names="/".join(experts), experts=count))
    others = [t for t in targets if t not in ENGINE_TARGETS]
    if others:
        warnings.append(
            f"konsilium's transformers engine holds LoRA for {', '.join(ENGINE_TARGETS)} only: an adapter on "
            f"{', '.join(others)} is refused there (vLLM may serve it if its model class supports LoRA)"
        )
    return warnings


def _notes(shape: ModelShape, precision: str, targets: list[str], seq_len: int) -> list[str]:
    notes = []
    if precision == "4bit":
        notes.append(
            f"4bit (QLoRA): NF4 with double quantization, {NF4_BITS:.3f} bits per nn.Linear weight; embeddings, "
            "lm_head, norms and routers stay bf16; needs a CUDA GPU with bitsandbytes"
        )
        if shape.is_moe:
            notes.append(
                "4bit on an MoE model: transformers 5 keeps the experts as fused parameters, which bitsandbytes "
                "does not quantize: they are counted in bf16"
            )
    if precision == "fp16":
        notes.append("fp16 training needs loss scaling (AMP); bf16 is the safer choice where the GPU has it")
    if _expert_targets(shape, targets):
        notes.append(
            "LoRA on transformers 5's fused experts needs PEFT target_parameters (mlp.experts.gate_up_proj, "
            "mlp.experts.down_proj); target_modules names reach only real nn.Linear modules. The count assumes "
            "separate gate/up/down per expert; a fused gate_up LoRA has r*(h+2i) instead of 2r*(h+i) per expert"
        )
    window = shape.context.extended or shape.context.trained
    if window and seq_len > window:
        notes.append(f"--seq-len {seq_len:,} exceeds the model's context window {window:,}")
    return notes
