"""konsilium's transformers engine on CUDA, checked on a machine with PyTorch, transformers and PEFT but no vLLM,
no package index and no model files: everything is built here from this repository's own files.

It builds a small random-weight Qwen3-MoE (a few layers, a few experts; `gpu_training.build_model`) with a
byte-level tokenizer, makes three real PEFT LoRA adapters on its attention projections (the experts are fused
tensors, not Linears), starts `TransformersEngine` with LoRA slots and checks:

- speed: engine tokens/s for one greedy request next to plain `model.generate` on the same prompt (same tokens?);
- a mixed-adapter batch: three adapters and the base model decoding together give the same text as each alone;
- a stacked role (two adapters, weights 1.0 and 0.5, `roles.stacking.stack`) against PEFT's own weighted merge
  (`add_weighted_adapter`, combination "cat"): last-token logits compared, and both differ from the base;
- 64 concurrent requests (threads, adapters mixed) all completing, with throughput;
- thinking mode: random weights never write `<think>`, so what is checked is the splitter on the engine's real
  stream: the streamed chunks are wrapped in `<think>`…`</think>` and fed chunk by chunk to
  `pipeline.thinking.ThinkSplitter`, which must give back exactly the reasoning and the answer;
- adapter load time (prepare, then the slot copy) next to a plain host-to-device copy of the same bytes;
- a short bf16 LoRA training run (`gpu_training.train_once`, on a dense Qwen3 of the same width).

    benchmarks/gpu_check.sh                       # CUDA (bf16), a few minutes; under 8 with the timeout
    python benchmarks/gpu_check.py --device cpu --tiny   # the same path, tiny and in float32 (smoke test)

Ran on an H200 (session 11: benchmarks/README.md, results/gpu_check.json); the CPU path is tested
(tests/benchmarks/test_gpu_check_script.py). Prints a table and writes benchmarks/results/gpu_check.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.gpu_training import TINY, attempt, build_model, corpus, train_once  # noqa: E402
from benchmarks.provenance import provenance, versions  # noqa: E402

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "gpu_check.json"
MOE = dict(
    hidden_size=1024,
    intermediate_size=3072,
    moe_intermediate_size=768,
    num_hidden_layers=8,
    num_attention_heads=16,
    num_key_value_heads=8,
    head_dim=128,
    num_experts=8,
    num_experts_per_tok=2,
    max_position_embeddings=4096,
)
TINY_MOE = dict(TINY, moe_intermediate_size=32, num_experts=4, num_experts_per_tok=2)
DENSE = {k: v for k, v in MOE.items() if k not in ("moe_intermediate_size", "num_experts", "num_experts_per_tok")}
ADAPTERS = {  # name: (rank, targets, seed)
    "attn8": (8, ["q_proj", "v_proj"], 1),
    "all16": (16, ["q_proj", "k_proj", "v_proj", "o_proj"], 2),
    "out4": (4, ["o_proj"], 3),
}
PROMPT = "<|im_start|>user\nWhat does konsilium do with LoRA adapters?<|im_end|>\n<|im_start|>assistant\n"


def make_adapter(folder: Path, model_dir: Path, rank: int, targets: list[str], seed: int) -> Path:
    """A real PEFT adapter for the model in `model_dir`, built over a meta-device skeleton; B is non-zero."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model_dir))
    config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=targets, lora_dropout=0.0)
    generator = torch.Generator().manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peft_model = get_peft_model(skeleton, config)
        for module in peft_model.modules():
            if "default" in getattr(module, "lora_A", {}):
                a, b = module.lora_A["default"], module.lora_B["default"]
                bound = a.in_features**-0.5  # PEFT's kaiming-uniform init of A has this bound
                a.weight = torch.nn.Parameter((torch.rand(a.weight.shape, generator=generator) * 2 - 1) * bound)
                b.weight = torch.nn.Parameter(torch.randn(b.weight.shape, generator=generator) * 0.2)
        peft_model.save_pretrained(str(folder), save_embedding_layers=False)
    (folder / "README.md").unlink(missing_ok=True)
    return folder


def sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def check_speed(engine, args) -> dict:
    import torch

    from konsilium.engines import SamplingParams
    from konsilium.engines.batching import attention_kernels

    params = SamplingParams(max_tokens=args.new_tokens, temperature=0)
    engine.generate(PROMPT, SamplingParams(max_tokens=4, temperature=0))  # warm-up
    started = time.perf_counter()
    result = engine.generate(PROMPT, params)
    engine_s = time.perf_counter() - started
    n = result.completion_tokens
    ids = torch.tensor([engine._encode(PROMPT)], device=engine.device)

    def plain(kernels):
        with torch.inference_mode(), kernels:
            engine.model.generate(ids, max_new_tokens=4, min_new_tokens=4, do_sample=False)  # warm-up
            sync(args.device)
            started = time.perf_counter()
            out = engine.model.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False)
            sync(args.device)
            return out, time.perf_counter() - started

    out, plain_s = plain(contextlib.nullcontext())  # torch's own choice of attention kernels
    _, same_kernels_s = plain(attention_kernels(engine.device))  # the kernels the engine's forwards use
    plain_text = engine.tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
    return {
        "tokens": n,
        "engine_tokens_per_s": round(n / engine_s, 1),
        "generate_tokens_per_s": round(n / plain_s, 1),
        "generate_engine_kernels_tokens_per_s": round(n / same_kernels_s, 1),
        "same_text": plain_text == result.text,
    }


def check_mixed_batch(engine, args) -> dict:
    from konsilium.engines import AdapterRequest, SamplingParams

    params = SamplingParams(max_tokens=args.new_tokens, temperature=0)
    names = [*ADAPTERS, None]

    def run(name):
        return engine.generate(PROMPT, params, AdapterRequest(name) if name else None).text

    alone = {name: run(name) for name in names}
    barrier = threading.Barrier(len(names))

    def together(name):
        barrier.wait()
        return run(name)

    with ThreadPoolExecutor(len(names)) as pool:
        mixed = dict(zip(names, pool.map(together, names), strict=True))
    return {
        "rows": len(names),
        "same_as_alone": {str(name): mixed[name] == alone[name] for name in names},
        "adapters_change_output": sum(alone[name] != alone[None] for name in ADAPTERS),
    }


def check_stack(engine, folder: Path, adapters: dict, args) -> dict:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from konsilium.roles.stacking import stack
    from konsilium.roles.validation import load_adapter_weights

    weights = {"attn8": 1.0, "all16": 0.5}
    parts = [(name, *load_adapter_weights(adapters[name]), weight) for name, weight in weights.items()]
    engine.load_adapter("stacked", *stack(parts))
    ids = torch.tensor([engine._encode(PROMPT)], device=engine.device)
    lora = engine._scheduler.lora
    with torch.inference_mode(), engine._scheduler.model_lock:
        with lora.serving(["stacked"]):
            ours = engine.model(input_ids=ids).logits[0, -1].float()
        base = engine.model(input_ids=ids).logits[0, -1].float()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = AutoModelForCausalLM.from_pretrained(folder, dtype=engine.model.dtype).to(engine.device)
        reference = PeftModel.from_pretrained(reference, str(adapters["attn8"]), adapter_name="attn8")
        reference.load_adapter(str(adapters["all16"]), adapter_name="all16")
        reference.add_weighted_adapter(list(weights), list(weights.values()), "merged", combination_type="cat")
        reference.set_adapter("merged")
    with torch.inference_mode():
        theirs = reference.eval()(input_ids=ids).logits[0, -1].float()
    del reference
    engine.unload_adapter("stacked")
    scale = float(theirs.abs().max())
    return {
        "max_abs_diff_vs_peft": float(f"{float((ours - theirs).abs().max()):.3g}"),
        "logit_scale": float(f"{scale:.3g}"),
        "same_top_token": int(ours.argmax()) == int(theirs.argmax()),
        "max_abs_diff_vs_base": float(f"{float((ours - base).abs().max()):.3g}"),
    }


def check_concurrent(engine, args) -> dict:
    from konsilium.engines import AdapterRequest, SamplingParams

    params = SamplingParams(max_tokens=args.new_tokens, temperature=0)
    names = [*ADAPTERS, None]

    def run(i):
        name = names[i % len(names)]
        return engine.generate(f"{PROMPT}{i}", params, AdapterRequest(name) if name else None)

    started = time.perf_counter()
    with ThreadPoolExecutor(args.concurrent) as pool:
        results = list(pool.map(run, range(args.concurrent)))
    seconds = time.perf_counter() - started
    tokens = sum(r.completion_tokens for r in results)
    return {
        "requests": args.concurrent,
        "completed": sum(r.finish_reason in ("stop", "length") for r in results),
        "tokens": tokens,
        "seconds": round(seconds, 2),
        "tokens_per_s": round(tokens / seconds, 1),
    }


def check_thinking(engine, args) -> dict:
    from konsilium.engines import SamplingParams
    from konsilium.pipeline.thinking import CLOSE, OPEN, ThinkSplitter, split

    params = SamplingParams(max_tokens=args.new_tokens, temperature=0)
    chunks = [c.text for c in engine.stream(PROMPT, params)]
    half = max(1, len(chunks) // 2)
    streamed = [OPEN, *chunks[:half], CLOSE, "\n\n", *chunks[half:]]
    splitter = ThinkSplitter()
    for chunk in streamed:
        splitter.feed(chunk)
    splitter.finish()
    want_reasoning, want_content = split("".join(streamed))
    return {
        "what": "engine stream wrapped in <think>...</think>, split chunk by chunk (random weights write no tags)",
        "chunks": len(chunks),
        "split_matches_whole": (splitter.reasoning, splitter.content) == (want_reasoning, want_content),
        "reasoning_is_the_first_half": splitter.reasoning == "".join(chunks[:half]).strip("\n"),
    }


def check_adapter_load(engine, adapters: dict, args) -> dict:
    import torch

    from konsilium.roles.validation import load_adapter_weights

    config, weights = load_adapter_weights(adapters["all16"])
    started = time.perf_counter()
    prepared = engine.prepare_adapter("timed", config, weights)
    prepare_s = time.perf_counter() - started
    sync(args.device)
    started = time.perf_counter()
    engine.load_adapter("timed", config, prepared)
    sync(args.device)
    load_s = time.perf_counter() - started
    engine.unload_adapter("timed")
    host = torch.empty(prepared.nbytes, dtype=torch.uint8, pin_memory=args.device == "cuda")
    target = torch.empty_like(host, device=args.device)
    target.copy_(host, non_blocking=True)  # warm-up
    sync(args.device)
    started = time.perf_counter()
    target.copy_(host, non_blocking=True)
    sync(args.device)
    copy_s = time.perf_counter() - started
    return {
        "bytes": prepared.nbytes,
        "prepare_ms": round(prepare_s * 1e3, 3),
        "slot_load_ms": round(load_s * 1e3, 3),
        "host_to_device_copy_ms": round(copy_s * 1e3, 3),
        "load_over_copy": round(load_s / copy_s, 1) if copy_s else None,
    }


def check_training(tmp: Path, texts: list[str], args) -> dict:
    from konsilium.training.base_model import BaseModel
    from konsilium.training.samples import Sample

    folder = tmp / "dense"
    folder.mkdir()
    build_model(folder, TINY if args.tiny else DENSE, texts, args.vocab)
    samples = [Sample(text=t, source=str(i), split="eval" if i % 20 == 0 else "train") for i, t in enumerate(texts)]
    options = argparse.Namespace(
        steps=args.train_steps,
        max_tokens=64 if args.tiny else 512,
        batch_tokens=128 if args.tiny else 4096,
        gradient_checkpointing=False,
    )
    precision = "bf16" if args.device == "cuda" else "fp32"
    return train_once(BaseModel(folder, None), samples, args.device, precision, options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="a 2-layer shape (CPU smoke test)")
    parser.add_argument("--new-tokens", type=int, default=None, help="tokens per request (64; tiny: 8)")
    parser.add_argument("--concurrent", type=int, default=64)
    parser.add_argument("--train-steps", type=int, default=None, help="(20; tiny: 2)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    args.new_tokens = args.new_tokens or (8 if args.tiny else 64)
    args.train_steps = args.train_steps or (2 if args.tiny else 20)
    args.vocab = 512 if args.tiny else 16000
    facts = {"provenance": provenance(), "device": args.device, "tiny": args.tiny, "versions": versions(args.device)}

    from konsilium.engines.transformers_engine import TransformersEngine

    texts = corpus(40 if args.tiny else 600)
    timings = {}
    with tempfile.TemporaryDirectory(prefix="konsilium-gpu-check-") as name:
        tmp = Path(name)
        folder = tmp / "moe"
        folder.mkdir()
        started = time.perf_counter()
        build_model(folder, TINY_MOE if args.tiny else MOE, texts, args.vocab, moe=True)
        adapters = {n: make_adapter(tmp / n, folder, *spec) for n, spec in ADAPTERS.items()}
        timings["build_s"] = round(time.perf_counter() - started, 1)
        engine = TransformersEngine(
            folder, device=args.device, dtype="bfloat16" if args.device == "cuda" else "float32", max_batch_size=64
        )
        engine.configure_adapters(slots=4, max_rank=32)
        from konsilium.roles.validation import load_adapter_weights

        for n, path in adapters.items():
            engine.load_adapter(n, *load_adapter_weights(path))
        facts["model"] = {k: v for k, v in engine.info().items() if k != "path"}
        for key, check, extra in (
            ("speed", check_speed, ()),
            ("mixed_batch", check_mixed_batch, ()),
            ("stacking", check_stack, (folder, adapters)),
            ("concurrent", check_concurrent, ()),
            ("thinking", check_thinking, ()),
            ("adapter_load", check_adapter_load, (adapters,)),
        ):
            started = time.perf_counter()
            facts[key] = attempt(check, engine, *extra, args)
            timings[key + "_s"] = round(time.perf_counter() - started, 1)
        del engine  # the training run gets the GPU to itself
        if args.device == "cuda":
            import torch

            torch.cuda.empty_cache()
        started = time.perf_counter()
        facts["training"] = attempt(check_training, tmp, texts, args)
        timings["training_s"] = round(time.perf_counter() - started, 1)
    facts["seconds"] = timings
    for key in ("speed", "mixed_batch", "stacking", "concurrent", "thinking", "adapter_load", "training"):
        shown = ", ".join(f"{k}={v}" for k, v in facts[key].items() if k != "what")
        print(f"{key:<14}{shown}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(facts, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
