"""A TP/PP split for a model that does not fit one card, and the `vllm serve` line and konsilium config that run it.

vLLM's own advice: tensor parallel within a node (NVLink/PCIe, an all-reduce every layer), pipeline parallel across
nodes (one hand-over per stage), Ray as the executor when there is more than one node. The smallest split that fits
wins: every extra GPU costs communication. A mixture of experts gets expert parallel once it is split: whole experts
per GPU instead of every expert sliced across all of them.
"""

from __future__ import annotations

import shlex

from .architectures import ModelShape, PlanError

# vLLM's --reasoning-parser for model families that think in <think> blocks (konsilium returns reasoning_content).
REASONING_PARSERS = {"qwen3": "qwen3", "qwen3_moe": "qwen3", "deepseek_v3": "deepseek_r1"}
QUANTIZATION = {"fp8": "fp8"}  # --dtype values vLLM quantizes to on load; int4 and GGUF come from the checkpoint


def per_gpu_bytes(result: dict, split: int) -> float:
    """Weights, adapters and KV cache divided among `split` GPUs; activations and the runtime on each one."""
    shared = result["weights_bytes"] + result["adapters_bytes"] + result["kv_cache_bytes"]
    return shared / split + result["activation_bytes_estimate"]


def recommend(
    shape: ModelShape,
    cfg: dict,
    result: dict,
    gpu_mem: float,
    gpus_per_node: int,
    nodes: int = 1,
    utilization: float = 0.9,
) -> dict:
    """The smallest TP (a divisor of the node's GPUs and of the attention heads) that fits one node, else a full
    node's TP with the fewest pipeline stages (nodes) that fit; `fits: false` with the largest split otherwise."""
    if gpus_per_node < 1 or nodes < 1:
        raise PlanError("--gpus and --nodes must be at least 1")
    if not 0 < utilization <= 1:
        raise PlanError("--gpu-memory-utilization must be in (0, 1]")
    usable = gpu_mem * utilization
    heads = int(cfg.get("num_attention_heads") or 0)
    sizes = [tp for tp in range(1, gpus_per_node + 1) if gpus_per_node % tp == 0 and (not heads or heads % tp == 0)]
    options = [(tp, 1) for tp in sizes] + [(sizes[-1], pp) for pp in range(2, nodes + 1)]
    tp, pp = next(((t, p) for t, p in options if per_gpu_bytes(result, t * p) <= usable), options[-1])
    need = per_gpu_bytes(result, tp * pp)
    experts = max((layer.experts for layer in shape.layers), default=0)
    expert_parallel = bool(experts) and tp * pp > 1 and experts % (tp * pp) == 0
    notes = []
    if need > usable:
        notes.append(
            f"does not fit even on {tp * pp} GPUs ({need / 1e9:.1f} GB a GPU, {usable / 1e9:.1f} GB usable): "
            "add nodes, lower --context or --batch, or a smaller --dtype"
        )
    if pp > 1:
        notes.append(f"{pp} pipeline stages across {pp} nodes: start a Ray cluster on them first (ray start)")
    if expert_parallel:
        notes.append(f"{experts} experts: expert parallel puts {experts // (tp * pp)} whole experts on each GPU")
    return {
        "tensor_parallel_size": tp,
        "pipeline_parallel_size": pp,
        "gpus_used": tp * pp,
        "nodes_used": pp,
        "enable_expert_parallel": expert_parallel,
        "distributed_executor_backend": "ray" if pp > 1 else None,
        "gpu_memory_utilization": utilization,
        "per_gpu_bytes": round(need),
        "usable_per_gpu_bytes": round(usable),
        "fits": need <= usable,
        "notes": notes,
    }


def vllm_serve_args(model: str, split: dict, result: dict, lora_rank: int = 0, adapters: int = 0) -> list[str]:
    """`vllm serve` with the split, the context, the LoRA limits and the reasoning parser."""
    args = ["vllm", "serve", model, "--tensor-parallel-size", str(split["tensor_parallel_size"])]
    if split["pipeline_parallel_size"] > 1:
        args += ["--pipeline-parallel-size", str(split["pipeline_parallel_size"])]
    if split["enable_expert_parallel"]:
        args.append("--enable-expert-parallel")
    utilization = f"{split['gpu_memory_utilization']:g}"
    args += ["--max-model-len", str(result["context"]), "--gpu-memory-utilization", utilization]
    if result["dtype"] in QUANTIZATION:
        args += ["--quantization", QUANTIZATION[result["dtype"]]]
    if lora_rank or adapters:
        args += ["--enable-lora", "--max-loras", str(max(adapters, 1)), "--max-lora-rank", str(max(lora_rank, 8))]
    if split["distributed_executor_backend"]:
        args += ["--distributed-executor-backend", split["distributed_executor_backend"]]
    parser = REASONING_PARSERS.get(result["model_type"])
    if parser:
        args += ["--reasoning-parser", parser]
    return args


def engine_section(model: str, split: dict, result: dict) -> dict:
    """The `engine:` section of konsilium.yaml that runs the same split in-process (kind vllm)."""
    section = {
        "kind": "vllm",
        "model": model,
        "tensor_parallel_size": split["tensor_parallel_size"],
        "pipeline_parallel_size": split["pipeline_parallel_size"],
        "enable_expert_parallel": split["enable_expert_parallel"],
        "gpu_memory_utilization": split["gpu_memory_utilization"],
        "context_length": result["context"],
    }
    if split["distributed_executor_backend"]:
        section["distributed_executor_backend"] = split["distributed_executor_backend"]
    if result["dtype"] in QUANTIZATION:
        section["quantization"] = QUANTIZATION[result["dtype"]]
    return section


def command_line(args: list[str]) -> str:
    return shlex.join(args)
