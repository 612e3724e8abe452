"""`konsilium dataset build` (training samples, previewed) and `konsilium train ROLE` (a LoRA made from them,
measured, as the role's new version)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from .index_cmds import _quiet_model_loading
from .output import HomeOption, JsonOption, err, fail, home_from, out, print_json, progress_bar, safe_line, user_errors

dataset_app = typer.Typer(
    help="Training datasets from notes, the conversation log and JSONL files.", no_args_is_help=True
)
PREVIEW_SAMPLES = 3
PREVIEW_CHARS = 300


def _time(value: str | None, option: str) -> float | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date (use YYYY-MM-DD or YYYY-MM-DDTHH:MM)", param_hint=option
        ) from None


@dataset_app.command("build")
def build(
    ctx: typer.Context,
    out_file: Annotated[Path, typer.Option("--out", help="The JSONL file to write.")],
    notes: Annotated[list[Path] | None, typer.Option("--notes", help="A folder of notes; repeatable.")] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="--notes: only notes with this tag (nested too); repeatable.")
    ] = None,
    jsonl: Annotated[
        list[Path] | None, typer.Option("--jsonl", help="A JSONL file in the common chat format; repeatable.")
    ] = None,
    log: Annotated[bool, typer.Option("--log", help="Take exchanges from the conversation log.")] = False,
    role: Annotated[str | None, typer.Option("--role", help="--log: only exchanges with this model id.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="--log: from this date (YYYY-MM-DD).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="--log: before this date.")] = None,
    search: Annotated[str | None, typer.Option("--search", help="--log: only exchanges holding these words.")] = None,
    rated: Annotated[
        str | None, typer.Option("--rated", help="--log: only exchanges rated good or bad (`history rate`).")
    ] = None,
    eval_fraction: Annotated[
        float | None, typer.Option("--eval-fraction", min=0, max=0.9, help="Share of notes held out.")
    ] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
):
    """Collect training samples, clean them (empty, huge, mojibake, duplicates) and write FILE; prints counts,
    tokens, what was dropped and why, and a few samples."""
    from ..memory.log import RATINGS
    from ..training.samples import write_samples
    from ..training.sources import Collected, Limits, clean, collect_exchanges, collect_jsonl, collect_notes

    if not (notes or jsonl or log):
        fail("nothing to build from: give --notes DIR, --jsonl FILE or --log", as_json, code=2)
    if rated is not None and rated not in ("good", "bad"):
        fail(f"--rated {rated!r}: use good or bad", as_json, code=2)
    if tag and not notes:
        fail("--tag filters notes: add --notes DIR", as_json, code=2)
    if (role or since or until or search or rated) and not log:
        fail("--role, --since, --until, --search and --rated filter the log: add --log", as_json, code=2)
    with user_errors(as_json):
        h = home_from(ctx, home)
        limits = Limits.from_settings(h.config.training, eval_fraction)
        collected = Collected()
        for folder in notes or []:
            with progress_bar(f"reading {folder.name or folder}", enabled=not as_json) as progress:
                collect_notes(folder, limits, collected, progress, tags=tuple(tag or ()))
        for file in jsonl or []:
            collect_jsonl(file, limits, collected)
        if log:
            exchanges = _logged(
                h, role, _time(since, "--since"), _time(until, "--until"), search, RATINGS[rated] if rated else None
            )
            collect_exchanges(exchanges, limits, collected)
        clean(collected, limits)
        if not collected.samples:
            fail(f"no usable samples ({_dropped_text(collected) or 'nothing found'}); {out_file} not written", as_json)
        report = _report(collected, _tokens(h, collected.samples))
        write_samples(collected.samples, out_file)
        report["out"] = str(out_file)
    if as_json:
        print_json(report)
        return
    _print_report(report)


def _logged(home, role, since, until, search, rating) -> list:
    from ..memory.log import ConversationLog, log_path

    path = log_path(home)
    if not path.exists():
        return []
    with ConversationLog(path) as conversation_log:
        return conversation_log.list(search=search, limit=None, model=role, since=since, until=until, rating=rating)


def _tokens(home, samples) -> dict | None:
    """Tokens per split with the base model's own tokenizer (None when its weights are not on this machine)."""
    from ..training.base_model import TrainingSetupError, base_model_of, load_tokenizer
    from ..training.tokens import encode

    try:
        tokenizer = load_tokenizer(base_model_of(home))
    except (TrainingSetupError, OSError) as exc:
        err.print(f"[dim]tokens not counted: {escape(str(exc))}[/]")
        return None
    max_tokens = home.config.training.max_tokens
    counts = {"train": 0, "eval": 0, "learned_train": 0, "learned_eval": 0}
    for sample in samples:
        for window in encode(sample, tokenizer, max_tokens):
            counts[sample.split] += len(window.input_ids)
            counts[f"learned_{sample.split}"] += window.learned
    return counts


def _dropped_text(collected) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in collected.dropped.most_common())


def _report(collected, tokens: dict | None) -> dict:
    samples = collected.samples
    preview = []
    for sample in samples[:PREVIEW_SAMPLES]:
        body = sample.to_json()
        if "text" in body:
            body["text"] = body["text"][:PREVIEW_CHARS]
        else:
            body["messages"] = [{**m, "content": m["content"][:PREVIEW_CHARS]} for m in body["messages"][:4]]
        preview.append(body)
    return {
        "samples": len(samples),
        "by_split": {split: sum(s.split == split for s in samples) for split in ("train", "eval")},
        "by_kind": {kind: sum(s.kind == kind for s in samples) for kind in ("text", "chat")},
        "sources": len({s.source for s in samples}),
        "tokens": tokens,
        "dropped": dict(collected.dropped),
        "dropped_examples": collected.dropped_examples,
        "skipped_files": [{"path": s.path, "reason": s.reason} for s in collected.skipped_files],
        "preview": preview,
    }


def _print_report(report: dict) -> None:
    table = Table(show_header=True, header_style="bold", box=None)
    for column in ("", "samples", "tokens", "learned tokens"):
        table.add_column(column, justify="right" if column else "left")
    tokens = report["tokens"] or {}
    for split in ("train", "eval"):
        table.add_row(
            split, str(report["by_split"][split]), str(tokens.get(split, "?")), str(tokens.get(f"learned_{split}", "?"))
        )
    out.print(table)
    kinds = report["by_kind"]
    out.print(f"{kinds['text']} text pieces, {kinds['chat']} chats, from {report['sources']} sources")
    for reason, n in report["dropped"].items():
        examples = ", ".join(report["dropped_examples"].get(reason, [])[:3])
        out.print(f"[yellow]dropped {n}[/]: {escape(reason)} [dim]({escape(safe_line(examples))})[/]")
    for skipped in report["skipped_files"]:
        out.print(f"[yellow]skipped[/] {escape(safe_line(skipped['path']))}: {escape(skipped['reason'])}")
    for sample in report["preview"]:
        text = sample.get("text") or " | ".join(f"{m['role']}: {m['content']}" for m in sample["messages"])
        out.print(
            f"[dim]{escape(sample['split'])} {escape(safe_line(sample['source']))}:[/] {escape(safe_line(text[:160]))}"
        )
    out.print(f"wrote {report['samples']} samples to {escape(report['out'])}", highlight=False)


def train(
    ctx: typer.Context,
    role: Annotated[str, typer.Argument(metavar="ROLE", help="The role the adapter becomes a new version of.")],
    dataset: Annotated[
        Path | None, typer.Option("--dataset", help="A JSONL file from `konsilium dataset build`.")
    ] = None,
    minutes: Annotated[float | None, typer.Option("--minutes", min=0.05, help="Stop after this long.")] = None,
    max_steps: Annotated[int | None, typer.Option("--max-steps", min=1, help="Stop after this many steps.")] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", min=1, help="Passes over the data at most.")] = None,
    mode: Annotated[
        str | None, typer.Option("--mode", help="lora (default targets), attention (q/k/v/o only) or router.")
    ] = None,
    rank: Annotated[int | None, typer.Option("--rank", min=1, max=512, help="LoRA rank.")] = None,
    alpha: Annotated[float | None, typer.Option("--alpha", min=0.001, help="LoRA alpha.")] = None,
    learning_rate: Annotated[float | None, typer.Option("--lr", min=1e-8, max=1, help="Learning rate.")] = None,
    targets: Annotated[
        str | None, typer.Option("--targets", help="Comma-separated module names, e.g. q_proj,v_proj.")
    ] = None,
    rslora: Annotated[bool | None, typer.Option("--rslora/--no-rslora", help="Rank-stabilised scaling.")] = None,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", min=16, help="Tokens per sequence.")] = None,
    batch_tokens: Annotated[int | None, typer.Option("--batch-tokens", min=16, help="Tokens per step.")] = None,
    gradient_checkpointing: Annotated[
        bool | None, typer.Option("--gradient-checkpointing/--no-gradient-checkpointing")
    ] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto, cpu or cuda.")] = None,
    precision: Annotated[str | None, typer.Option("--precision", help="auto, fp32, bf16 or 4bit (QLoRA).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", min=0)] = None,
    base: Annotated[
        Path | None, typer.Option("--base", help="Base model weights (default: the engine's model).")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the role's last unfinished run.")] = False,
    home: HomeOption = None,
    as_json: JsonOption = False,
):
    """Train a LoRA for ROLE on a dataset: progress with loss, tokens/s and ETA; Ctrl-C stops at a checkpoint that
    `--resume` continues; the result is a PEFT folder with a run card, registered as the role's next version
    (`ROLE@N`), usable at once."""
    from ..training.service import resume_run, start_run
    from ..training.service import train as train_run
    from ..training.trainer import TrainingStopped, TrainOptions

    if resume == (dataset is not None):
        fail("give --dataset FILE for a new run, or --resume to continue the last one", as_json, code=2)
    with user_errors(as_json):
        h = home_from(ctx, home)
        _quiet_model_loading()
        if resume:
            run = resume_run(h, role)
        else:
            options = TrainOptions.from_settings(
                h.config.training,
                mode=mode,
                epochs=epochs,
                rank=rank,
                alpha=alpha,
                learning_rate=learning_rate,
                rslora=rslora,
                max_tokens=max_tokens,
                batch_tokens=batch_tokens,
                gradient_checkpointing=gradient_checkpointing,
                device=device,
                precision=precision,
                seed=seed,
                max_steps=max_steps,
                minutes=minutes,
                targets=tuple(t.strip() for t in targets.split(",") if t.strip()) if targets else None,
            )
            run = start_run(h, role, dataset, options, base)
        try:
            with progress_bar(f"training {role}", enabled=not as_json, unit="steps", status=True) as progress:
                result = train_run(h, run, progress=progress, resume=resume)
        except TrainingStopped as stopped:
            run.write_info(status="stopped")
            fail(f"{stopped}; continue with `konsilium train {role} --resume`", as_json, code=130)
    if as_json:
        print_json(result)
        return
    held = result["held_out_perplexity"]
    out.print(
        f"trained [cyan]{escape(result.get('model_id', role))}[/]: {result['steps']} steps, "
        f"{result['tokens']} tokens at {result['tokens_per_s']} tok/s, train loss {result['train_loss']}",
        highlight=False,
    )
    if held["before"] is not None:
        out.print(f"held-out perplexity {held['before']} -> {held['after']} ({held['tokens']} tokens)", highlight=False)
    out.print(f"adapter: {escape(result['adapter_path'])}", highlight=False)
