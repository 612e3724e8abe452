"""Bytes, fit, offload and bandwidth arithmetic on top of an exact ModelShape."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .architectures import Layer, ModelShape, PlanError

# Bits per weight. Block formats include their scales: q8_0 = 32 int8 + one fp16 scale per 32 weights = 8.5;
# q4_k_m is llama.cpp's measured average over a whole model (mix of Q4_K and Q6_K blocks); int4 assumes
# group-wise (group 64) fp16 scales as in GPTQ/AWQ.
WEIGHT_BITS = {
    "fp32": 32.0,
    "bf16": 16.0,
    "fp16": 16.0,
    "fp8": 8.0,
    "int8": 8.0,
    "q8_0": 8.5,
    "int4": 4.25,
    "q4_k_m": 4.85,
}
KV_BITS = {"fp32": 32.0, "bf16": 16.0, "fp16": 16.0, "fp8": 8.0, "int8": 8.0, "q8_0": 8.5, "q4_0": 4.5}
# Known cards: memory (bytes) and memory bandwidth (GB/s, vendor peak).
CARDS = {
    "rtx3090": (24e9, 936),
    "rtx4090": (24e9, 1008),
    "rtx5090": (32e9, 1792),
    "a100-40": (40e9, 1555),
    "a100-80": (80e9, 2039),
    "h100": (80e9, 3350),
    "h200": (141e9, 4800),
    "b200": (180e9, 8000),
    "l40s": (48e9, 864),
    "rtx6000-ada": (48e9, 960),
    "rtx-pro-6000": (96e9, 1792),
    "mi300x": (192e9, 5300),
}
# When only --gpu-mem is given, the card we assume for its bandwidth.
CARD_BY_MEMORY = {
    24: "rtx4090",
    32: "rtx5090",
    40: "a100-40",
    48: "l40s",
    80: "h100",
    94: "h100",
    96: "rtx-pro-6000",
    141: "h200",
    180: "b200",
    192: "mi300x",
}
DEFAULT_CPU_BANDWIDTH = 60.0  # GB/s, dual-channel DDR5 is ~60-90; servers reach 300+
RUNTIME_OVERHEAD = 1 * 1024**3  # CUDA context, allocator slack, kernels' workspace (estimate)
PREFILL_CHUNK = 8192  # tokens processed at once during prefill (chunked prefill; estimate)


def parse_bytes(text: str) -> float:
    """'96GB' -> 96e9, '80GiB' -> 80*2**30, '1TB', '512MB'; a bare number means GB."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]i?b?)?\s*", str(text).lower())
    if not m:
        raise PlanError(f"{text!r}: expected a size like 96GB, 80GiB or 1TB")
    value, unit = float(m.group(1)), (m.group(2) or "gb")
    powers = {"k": 1, "m": 2, "g": 3, "t": 4}
    base = 1024 if "i" in unit else 1000
    return value * base ** powers[unit[0]]


def bits_for(dtype: str, table: dict, what: str) -> float:
    key = dtype.lower().replace("-", "_")
    if key not in table:
        raise PlanError(f"{what} {dtype!r}: allowed values are {', '.join(table)}")
    return table[key]


@dataclass
class Hardware:
    gpu_mem: float | None = None  # bytes per GPU
    gpus: int = 1
    cpu_mem: float | None = None
    bandwidth: float | None = None  # GB/s per GPU
    cpu_bandwidth: float = DEFAULT_CPU_BANDWIDTH
    card: str | None = None


def lora_params(shape: ModelShape, rank: int, targets: list[str]) -> int:
    """LoRA A (r x in) + B (out x r) for every targeted linear; on MoE layers every expert gets its own pair."""
    total = 0
    wanted = set(targets)
    for layer in shape.layers:
        for mod in _layer_linears(layer):
            if mod[0].name.split(".")[-1] in wanted:
                total += mod[1] * rank * (mod[0].fan_in + mod[0].fan_out)
    return total


def _layer_linears(layer: Layer):
    for mod in layer.attention + layer.dense_mlp + layer.shared_mlp:
        yield mod, 1
    for mod in layer.expert_mlp:
        yield mod, layer.experts


def known_targets(shape: ModelShape) -> set[str]:
    return {mod.name.split(".")[-1] for layer in shape.layers for mod, _ in _layer_linears(layer)}


def activation_bytes(shape: ModelShape, context: int, batch: int) -> int:
    """Estimate of the peak transient memory: one prefill chunk's hidden states and MLP intermediates, fp32
    logits for the batch, and a fixed runtime overhead. Not exact: it depends on the engine and kernels."""
    tokens = min(context, PREFILL_CHUNK) * batch
    widest = 0
    for layer in shape.layers[:1] + shape.layers[-1:]:
        dense = max((m.fan_out for m in layer.dense_mlp), default=0)
        moe = max((m.fan_out for m in layer.expert_mlp), default=0) * layer.experts_per_token
        shared = max((m.fan_out for m in layer.shared_mlp), default=0)
        qkv = sum(m.fan_out for m in layer.attention[:3])
        widest = max(widest, 2 * dense, 2 * moe + 2 * shared, qkv)
    per_token = (4 * shape.hidden_size + widest) * 2  # bf16 residual stream, norms, widest intermediate
    logits = batch * shape.vocab_size * 4
    return tokens * per_token + logits + RUNTIME_OVERHEAD


def plan(
    shape: ModelShape,
    dtype: str = "bf16",
    kv_dtype: str = "bf16",
    context: int = 32768,
    batch: int = 1,
    lora_rank: int = 0,
    lora_targets: list[str] | None = None,
    adapters: int = 0,
    hw: Hardware | None = None,
) -> dict:
    if context < 1 or batch < 1:
        raise PlanError("--context and --batch must be at least 1")
    hw = hw or Hardware()
    wbits = bits_for(dtype, WEIGHT_BITS, "--dtype")
    kbits = bits_for(kv_dtype, KV_BITS, "--kv-dtype")
    total, active = shape.total_params, shape.active_params
    weights = round(total * wbits / 8)
    kv_per_token = shape.kv_elems_per_token * kbits / 8
    kv_per_token = int(kv_per_token) if float(kv_per_token).is_integer() else kv_per_token
    kv_cache = round(shape.kv_elems(context) * batch * kbits / 8)
    targets = lora_targets or []
    if targets and lora_rank > 0:
        unknown = sorted(set(targets) - known_targets(shape))
        if unknown:
            raise PlanError(
                f"--lora-targets {', '.join(unknown)}: not a linear of this model "
                f"(known: {', '.join(sorted(known_targets(shape)))})"
            )
    adapter_params = lora_params(shape, lora_rank, targets) if lora_rank > 0 and targets else 0
    n_adapters = adapters if adapters else (1 if adapter_params else 0)
    adapters_bytes = adapter_params * 2 * n_adapters  # adapters kept in bf16
    act = activation_bytes(shape, context, batch)
    total_bytes = weights + kv_cache + adapters_bytes + act
    window = shape.context
    model_max = window.extended  # the usable limit; the trained length is reported beside it
    result: dict = {
        "model_type": shape.model_type,
        "moe": shape.is_moe,
        "layers": len(shape.layers),
        "tied_embeddings": shape.tied,
        "total_params": total,
        "active_params": active,
        "embedding_params": shape.embed + shape.lm_head,
        "dtype": dtype,
        "bits_per_weight": wbits,
        "weights_bytes": weights,
        "kv_dtype": kv_dtype,
        "kv_kind": shape.kv_kind,
        "kv_bytes_per_token": kv_per_token,
        "context": context,
        "batch": batch,
        "kv_cache_bytes": kv_cache,
        "lora": {"rank": lora_rank, "targets": targets, "adapters": n_adapters, "params_per_adapter": adapter_params},
        "adapters_bytes": adapters_bytes,
        "activation_bytes_estimate": act,
        "activation_note": (
            f"estimate: a {min(context, PREFILL_CHUNK)}-token prefill chunk x batch, fp32 logits and "
            f"{RUNTIME_OVERHEAD / 2**30:.0f} GiB runtime overhead; real engines differ"
        ),
        "total_bytes": total_bytes,
        "model_max_context": model_max,
        "trained_context": window.trained,
        "extended_context": window.extended,
        "context_scaling": {"rope_type": window.rope_type, "factor": window.factor, "how": window.how},
        "notes": list(shape.notes),
    }
    if model_max and context > model_max:
        extend = " (set rope_scaling to extend it)" if window.extended == window.trained else ""
        result["notes"].append(f"context {context:,} exceeds the model's window {model_max:,}{extend}")
    elif window.trained and context > window.trained:
        result["notes"].append(
            f"context {context:,} is beyond the trained {window.trained:,}: "
            f"it relies on {window.rope_type} RoPE scaling"
        )
    if wbits < 16:
        result["notes"].append(f"{dtype}: {wbits} bits per weight on average, applied to all parameters")
    result.update(_hardware(shape, hw, result, wbits, kbits, context, batch))
    return result


def _hardware(shape, hw: Hardware, r: dict, wbits: float, kbits: float, context: int, batch: int) -> dict:
    out: dict = {}
    bandwidth, card = hw.bandwidth, hw.card
    gpu_mem = hw.gpu_mem
    if card:
        if card not in CARDS:
            raise PlanError(f"--card {card!r}: known cards are {', '.join(CARDS)}")
        gpu_mem = gpu_mem or CARDS[card][0]
    if gpu_mem and not bandwidth and not card:
        card = CARD_BY_MEMORY.get(round(gpu_mem / 1e9)) or CARD_BY_MEMORY.get(round(gpu_mem / 2**30))
    if card and not bandwidth:
        bandwidth = CARDS[card][1]
    read_weights = shape.read_params_per_token * wbits / 8
    kv_read = shape.kv_elems(context) * kbits / 8  # one sequence's whole cache is read per decoded token
    out["bytes_read_per_token"] = round(read_weights + kv_read)
    if gpu_mem is None:
        out["fits"] = None
        return out
    gpus = max(1, hw.gpus)
    capacity = gpu_mem * gpus
    fixed = r["weights_bytes"] + r["adapters_bytes"]
    out.update(
        {"gpu_mem_bytes": gpu_mem, "gpus": gpus, "gpu_total_bytes": capacity, "fits": r["total_bytes"] <= capacity}
    )
    out["max_context_fits"] = _max_context(shape, capacity, fixed, kbits, batch, r["model_max_context"])
    out["headroom_bytes"] = capacity - r["total_bytes"]
    gpu_weights = r["weights_bytes"]
    cpu_weights = 0.0
    if not out["fits"]:
        room = capacity - r["kv_cache_bytes"] - r["activation_bytes_estimate"] - r["adapters_bytes"]
        gpu_weights = max(0.0, min(r["weights_bytes"], room))
        cpu_weights = r["weights_bytes"] - gpu_weights
        fits_offload = hw.cpu_mem is not None and room > 0 and cpu_weights <= hw.cpu_mem
        out["offload"] = {
            "gpu_weights_bytes": round(gpu_weights),
            "cpu_weights_bytes": round(cpu_weights),
            "cpu_fraction": round(cpu_weights / r["weights_bytes"], 4) if r["weights_bytes"] else 0,
            "cpu_mem_bytes": hw.cpu_mem,
            "fits_with_offload": fits_offload,
        }
        if room <= 0:
            out["offload"]["reason"] = "KV cache and activations alone exceed GPU memory: lower --context or --batch"
        elif hw.cpu_mem is None:
            out["offload"]["reason"] = "give --cpu-mem to check whether the rest fits in RAM"
    if bandwidth:
        out["bandwidth_gbs"] = bandwidth
        out["bandwidth_source"] = "--bandwidth" if hw.bandwidth else f"default for {card}"
        frac_cpu = cpu_weights / r["weights_bytes"] if r["weights_bytes"] else 0
        gpu_bytes = read_weights * (1 - frac_cpu) + kv_read
        cpu_bytes = read_weights * frac_cpu
        seconds = gpu_bytes / (bandwidth * 1e9 * gpus) + cpu_bytes / (hw.cpu_bandwidth * 1e9)
        out["decode_tokens_per_s_upper_bound"] = round(1 / seconds, 1) if seconds > 0 else None
        out["decode_note"] = (
            "upper bound per sequence: bandwidth / bytes read per token (active weights only"
            + (", i.e. only the routed experts" if shape.is_moe else "")
            + " + this sequence's KV cache)"
            + (f"; offloaded part at {hw.cpu_bandwidth:g} GB/s" if cpu_weights else "")
            + ("; assumes tensor parallelism across GPUs" if gpus > 1 else "")
        )
    return out


def _max_context(shape, capacity: float, fixed: float, kbits: float, batch: int, model_max) -> int:
    def ok(ctx: int) -> bool:
        return fixed + shape.kv_elems(ctx) * batch * kbits / 8 + activation_bytes(shape, ctx, batch) <= capacity

    if not ok(1):
        return 0
    lo, hi = 1, 1 << 24  # 16M tokens
    if ok(hi):
        return hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo
