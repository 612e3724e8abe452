"""The CUDA path of `konsilium train`, runnable on a GPU machine with no downloads and no model files: it builds a
random-weight Qwen3 model locally (Qwen3-0.6B's shape by default) and a byte-level tokenizer trained on this
repository's own text, then trains LoRA with konsilium's trainer in bf16 and, when bitsandbytes is installed, as
QLoRA (4bit), and reports tokens/s and peak GPU memory next to the planner's estimate for the same run.

    python benchmarks/gpu_training.py                      # CUDA: bf16 and 4bit, ~3 min on an H100-class GPU
    python benchmarks/gpu_training.py --device cpu --tiny  # the same path on a CPU with a tiny shape (smoke test)

Random weights measure speed and memory, not learning (the loss still falls: the text repeats). Prints a table and
writes benchmarks/results/gpu_training.json (with provenance).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.provenance import provenance, versions  # noqa: E402

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "gpu_training.json"
QWEN3_0_6B = dict(
    hidden_size=1024,
    intermediate_size=3072,
    num_hidden_layers=28,
    num_attention_heads=16,
    num_key_value_heads=8,
    head_dim=128,
    max_position_embeddings=40960,
)
TINY = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    max_position_embeddings=2048,
)
GRID = ((1024, 8192, True), (1024, 4096, False), (2048, 4096, False), (512, 4096, False))  # seq, tokens, checkpointing
TINY_GRID = ((64, 256, True), (64, 128, False), (128, 256, False), (32, 128, False))  # the CPU smoke test's
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def corpus(limit: int | None = None) -> list[str]:
    """Text to train on: this repository's Markdown and Python, in ~2,000-character pieces (the first `limit`)."""
    texts = []
    for path in sorted(ROOT.glob("**/*.md")) + sorted((ROOT / "konsilium").glob("**/*.py")):
        if ".venv" in path.parts or ".git" in path.parts:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        texts += [text[i : i + 2000] for i in range(0, len(text), 2000)]
    return texts[:limit]


def build_model(folder: Path, shape: dict, texts: list[str], vocab: int, moe: bool = False) -> None:
    """A random-weight Qwen3 (Qwen3-MoE with `moe`: `shape` then holds the expert fields too) and a byte-level
    tokenizer trained on `texts`, saved in `folder` in bf16."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM, Qwen3MoeConfig, Qwen3MoeForCausalLM

    tokenizer = Tokenizer(models.BPE(unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(folder)
    torch.manual_seed(0)
    config_class, model_class = (Qwen3MoeConfig, Qwen3MoeForCausalLM) if moe else (Qwen3Config, Qwen3ForCausalLM)
    config = config_class(
        vocab_size=len(fast),
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        tie_word_embeddings=True,
        dtype="bfloat16",
        **shape,
    )
    model_class(config).to(torch.bfloat16).save_pretrained(folder)


def attempt(check, *args) -> dict:
    """One check's facts, or its error: a GPU session is short, and one failing check must not hide the others."""
    try:
        return check(*args)
    except Exception as error:  # noqa: BLE001 - reported in the table and the JSON, and the run goes on
        traceback.print_exc()
        return {"error": f"{type(error).__name__}: {error}"[:500]}


def train_once(base, samples, device: str, precision: str, args) -> dict:
    import torch

    from konsilium.plan import analyze, load_config
    from konsilium.plan.training import training_plan
    from konsilium.training.runs import RunDir
    from konsilium.training.trainer import TrainOptions, prepare, run_training

    options = TrainOptions(
        device=device,
        precision=precision,
        max_steps=args.steps,
        max_tokens=args.max_tokens,
        batch_tokens=args.batch_tokens,
        learning_rate=2e-4,
        warmup_steps=2,
        gradient_checkpointing=args.gradient_checkpointing,
        checkpoint_every_s=3600,
    )
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    started = time.monotonic()
    prepared = prepare(options, base, samples)
    with tempfile.TemporaryDirectory() as tmp:
        state = run_training(RunDir.create(Path(tmp), "gpu"), options, prepared)
    plan = training_plan(
        analyze(load_config(base.path)),
        precision=precision,
        rank=options.rank,
        batch=max(1, options.batch_tokens // options.max_tokens),
        seq_len=options.max_tokens,
        gradient_checkpointing=options.gradient_checkpointing,
        device=device,
    )
    measured_peak = torch.cuda.max_memory_allocated() if device == "cuda" else None
    vocab_size = len(prepared.tokenizer)
    del prepared
    return {
        "precision": precision,
        "steps": state.step,
        "first_loss": state.losses[0],
        "last_loss": state.losses[-1],
        "tokens_per_s": round(state.tokens / (state.seconds - state.eval_seconds), 1),
        "seconds_with_load": round(time.monotonic() - started, 1),
        "peak_gpu_bytes": measured_peak,
        "planned_bytes": plan["total_bytes"] - plan["overhead_bytes"],  # the CUDA context is not in torch's count
        "planned_parts": {k: plan[k + "_bytes"] for k in ("weights", "activations", "logits")},
        "vocab_size": vocab_size,
        "batch_tokens": args.batch_tokens,
        "max_tokens": args.max_tokens,
        "gradient_checkpointing": args.gradient_checkpointing,
        "held_out_before": state.evals[0]["perplexity"] if state.evals else None,
        "held_out_after": state.best_perplexity,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="a 2-layer shape (CPU smoke test)")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--max-tokens", type=int, default=1024)
    parser.add_argument("--batch-tokens", type=int, default=8192)
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--grid", action="store_true", help="also a few steps at other batch shapes (planner check)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()

    from konsilium.training.base_model import BaseModel
    from konsilium.training.samples import Sample

    texts = corpus(60 if args.tiny else None)
    samples = [Sample(text=t, source=str(i), split="eval" if i % 20 == 0 else "train") for i, t in enumerate(texts)]
    precisions = ["bf16"] if args.device == "cuda" else ["fp32"]
    if args.device == "cuda":
        try:
            import bitsandbytes  # noqa: F401

            precisions.append("4bit")
        except ImportError:
            print("bitsandbytes is not installed: QLoRA (4bit) skipped")
    rows = []
    with tempfile.TemporaryDirectory(prefix="konsilium-gpu-train-") as tmp:
        build_model(Path(tmp), TINY if args.tiny else QWEN3_0_6B, texts, 1024 if args.tiny else 32000)
        base = BaseModel(Path(tmp), None)
        for precision in precisions:
            rows.append({"precision": precision, **attempt(train_once, base, samples, args.device, precision, args)})
        if args.grid:  # the planner's estimate against the measured peak at other shapes, a few steps each
            for precision in precisions:
                for max_tokens, batch_tokens, checkpointing in TINY_GRID if args.tiny else GRID:
                    changed = {"steps": 3, "max_tokens": max_tokens, "batch_tokens": batch_tokens}
                    shape = argparse.Namespace(**{**vars(args), **changed, "gradient_checkpointing": checkpointing})
                    facts = attempt(train_once, base, samples, args.device, precision, shape)
                    rows.append({"precision": precision, **facts})
    print(f"{'precision':<10}{'shape':>14}{'steps':>6}{'loss':>16}{'tok/s':>10}{'peak GiB':>10}{'planned GiB':>12}")
    for row in rows:
        if "error" in row:
            print(f"{row['precision']:<10}failed: {row['error']}")
            continue
        peak = f"{row['peak_gpu_bytes'] / 2**30:.2f}" if row["peak_gpu_bytes"] else "-"
        print(
            f"{row['precision']:<10}{row['batch_tokens'] // row['max_tokens']:>5}x{row['max_tokens']:<5}"
            f"{'gc' if row['gradient_checkpointing'] else '':>3}{row['steps']:>6}"
            f"{row['first_loss']:>8.2f}->{row['last_loss']:<6.2f}"
            f"{row['tokens_per_s']:>10}{peak:>10}{row['planned_bytes'] / 2**30:>12.2f}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    facts = {"provenance": provenance(), "device": args.device, "tiny": args.tiny, "runs": rows}
    facts["versions"] = versions(args.device)
    args.json.write_text(json.dumps(facts, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
