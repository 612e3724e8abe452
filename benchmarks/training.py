"""Training a role on the embedded model, CPU: held-out perplexity before/after, a control folder it never saw,
training tokens/s next to a plain PEFT + transformers loop on the same data, peak RAM.

    python benchmarks/training.py                                   # ~12 min on 2 cores
    python benchmarks/training.py --folder "Obsidian Sync" --control "Bases" --minutes 5

The folder is built into a dataset exactly as `konsilium dataset build --notes` does (its held-out notes are the
dataset's eval split, never trained on), trained as `konsilium train --minutes M` does, and measured as `konsilium
eval perplexity` does. Goals (issue 12): held-out perplexity >= 25 % lower, control <= 3 % higher, tokens/s not
below the plain loop. Prints a table and writes benchmarks/results/training.json (with provenance).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.provenance import provenance  # noqa: E402

HELP_VAULT = ROOT.parent / "shared" / "obsidian-help-en"
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "training.json"


def plain_loop_tokens_per_s(base, samples, settings, learning_rate: float, seconds: float) -> dict:
    """The reference: PEFT's get_peft_model, one window a step through transformers' own loss, AdamW."""
    import torch
    from peft import LoraConfig, get_peft_model

    from konsilium.training.base_model import load
    from konsilium.training.tokens import encode_all

    tokenizer, model = load(base, "cpu", "fp32")
    windows = encode_all([s for s in samples if s.split == "train"], tokenizer, settings.max_tokens)
    model = get_peft_model(
        model,
        LoraConfig(
            r=settings.rank,
            lora_alpha=settings.alpha,
            lora_dropout=settings.dropout,
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
            task_type="CAUSAL_LM",
        ),
    )
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=learning_rate)
    tokens, steps, started = 0, 0, None
    for window in windows * 100:
        ids = torch.tensor([window.input_ids])
        labels = torch.tensor([window.labels])
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        steps += 1
        if steps == 2:  # the first steps pay for allocations: timed from here
            started = time.monotonic()
            continue
        if started is not None:
            tokens += int((labels[:, 1:] != -100).sum())
            if time.monotonic() - started >= seconds:
                break
    elapsed = time.monotonic() - started
    return {"tokens": tokens, "seconds": round(elapsed, 1), "tokens_per_s": round(tokens / elapsed, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", default="Obsidian Sync", help="a folder of the Obsidian help vault to train on")
    parser.add_argument("--control", default="Bases", help="a folder it never sees")
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--plain-seconds", type=float, default=90.0)
    parser.add_argument("--eval-fraction", type=float, default=0.2, help="share of the folder held out")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()

    from konsilium.config import open_home
    from konsilium.training.base_model import base_model_of
    from konsilium.training.measure import measure
    from konsilium.training.samples import write_samples
    from konsilium.training.service import start_run, train
    from konsilium.training.sources import Limits, notes_samples
    from konsilium.training.trainer import TrainOptions

    with tempfile.TemporaryDirectory(prefix="konsilium-bench-train-") as tmp:
        home = open_home(Path(tmp) / "home")
        settings = home.config.training
        samples = notes_samples(HELP_VAULT / args.folder, Limits.from_settings(settings, args.eval_fraction))
        control = notes_samples(HELP_VAULT / args.control, Limits.from_settings(settings, eval_fraction=0))
        held_out = [s for s in samples if s.split == "eval"]
        dataset = Path(tmp) / "dataset.jsonl"
        write_samples(samples, dataset)

        def ppl(model_id: str, which) -> dict:
            return measure(home, model_id, which, settings.max_tokens)

        before = {"held_out": ppl("base", held_out), "control": ppl("base", control)}
        run = start_run(home, "bench", dataset, TrainOptions.from_settings(settings, minutes=args.minutes))
        result = train(home, run)
        after = {"held_out": ppl("bench", held_out), "control": ppl("bench", control)}
        lr = result["options"]["learning_rate"]  # resolved for the model's size
        plain = plain_loop_tokens_per_s(base_model_of(home), samples, settings, lr, args.plain_seconds)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def change(which: str) -> float:
        return round(100 * (after[which]["perplexity"] / before[which]["perplexity"] - 1), 1)

    rows = {
        "folder": args.folder,
        "control_folder": args.control,
        "minutes": args.minutes,
        "notes_held_out": len({s.source for s in held_out}),
        "held_out_tokens": before["held_out"]["tokens"],
        "control_tokens": before["control"]["tokens"],
        "held_out_before": before["held_out"]["perplexity"],
        "held_out_after": after["held_out"]["perplexity"],
        "held_out_change_pct": change("held_out"),
        "control_before": before["control"]["perplexity"],
        "control_after": after["control"]["perplexity"],
        "control_change_pct": change("control"),
        "steps": result["steps"],
        "epochs": result["epochs"],
        "train_tokens": result["tokens"],
        "tokens_per_s": result["tokens_per_s"],
        "plain_loop_tokens_per_s": plain["tokens_per_s"],
        "speed_ratio": round(result["tokens_per_s"] / plain["tokens_per_s"], 2),
        "peak_rss_gb": round(peak / 1e9, 2),
        "settings": result["options"],
    }
    print(f"{'':<28}{'before':>10}{'after':>10}{'change':>10}")
    for label, which in (("held-out notes (trained)", "held_out"), ("control folder (unseen)", "control")):
        print(
            f"{label:<28}{rows[which + '_before']:>10.3f}{rows[which + '_after']:>10.3f}"
            f"{rows[which + '_change_pct']:>9.1f}%"
        )
    print(
        f"training: {rows['steps']} steps, {rows['epochs']} epochs, {rows['tokens_per_s']} tok/s "
        f"(plain PEFT loop {rows['plain_loop_tokens_per_s']} tok/s, ratio {rows['speed_ratio']}), "
        f"peak RSS {rows['peak_rss_gb']} GB"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"provenance": provenance(), **rows}, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
