"""`konsilium lab PROFILES.yaml`: measure instead of guessing. Every profile (a model, inference knobs, thinking
on/off, a context) on the same held-out text and prompts, in one table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from .index_cmds import _quiet_model_loading
from .output import HomeOption, JsonOption, home_from, out, print_json, progress_bar, safe_line, user_errors

ANSWER_CHARS = 120


def lab(
    ctx: typer.Context,
    profiles: Annotated[
        Path, typer.Argument(help="The profiles file (YAML): text, prompts, profiles and/or a grid.", dir_okay=False)
    ],
    home: HomeOption = None,
    as_json: JsonOption = False,
):
    """Run every profile over the same held-out text and prompts: perplexity, generation tokens/s, peak memory and
    sample answers side by side."""
    from ..training.lab import read_lab
    from ..training.lab_run import run_lab

    with user_errors(as_json):
        h = home_from(ctx, home)
        spec = read_lab(profiles)
        _quiet_model_loading()
        # steps: the perplexity batches, then one per sample answer
        result = run_lab(h, spec, lambda profile: progress_bar(profile.name, enabled=not as_json, unit="steps"))
    if as_json:
        print_json(result)
        return
    print_result(result)


def print_result(result: dict) -> None:
    text = result["text"]
    source = f"notes {text['notes']}" if "notes" in text else f"{text['dataset']} ({text['split']})"
    sizes = ", ".join(f"{c['tokens']} tokens in windows of {c['context']}" for c in text["contexts"])
    table = Table(title=f"lab on {escape(source)}: {text['samples']} samples ({sizes}), {result['device']}")
    for column in ("profile", "model", "overrides"):
        table.add_column(column, overflow="fold")
    for column in ("context", "thinking", "perplexity", "gen tok/s", "peak memory"):
        table.add_column(column, justify="left" if column == "thinking" else "right", no_wrap=True)
    for p in result["profiles"]:
        table.add_row(
            escape(safe_line(p["name"])),
            escape(p["model"]),
            escape(", ".join(f"{k}={v}" for k, v in p["overrides"].items()) or "–"),
            str(p["context"]),
            {None: "–", True: "on", False: "off"}[p["thinking"]],
            f"{p['perplexity']:.3f}",
            "–" if p["generation_tokens_per_s"] is None else f"{p['generation_tokens_per_s']:.1f}",
            _size(p["peak_memory_bytes"]),
        )
    _print(table)
    prompts = [a["prompt"] for a in result["profiles"][0]["answers"]]
    if prompts:
        answers = Table(title=f"sample answers (greedy, at most {result['max_new_tokens']} tokens)")
        answers.add_column("profile")
        for prompt in prompts:
            answers.add_column(escape(safe_line(prompt if len(prompt) <= 40 else prompt[:39] + "…")))
        for p in result["profiles"]:
            cells = [escape(safe_line(_cut(a["text"].strip()))) for a in p["answers"]]
            answers.add_row(escape(safe_line(p["name"])), *cells)
        _print(answers)
    for note in result["notes"]:
        out.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    out.print(f"[dim]peak memory: {escape(result['peak_memory'])}[/]", highlight=False)


def _print(table: Table) -> None:
    """On a terminal, fitted to its width; piped (a file, a pager, a program), at its natural width: no column
    squeezed to `perpl…` because a pipe reports 80 columns."""
    if out.is_terminal:
        out.print(table)
        return
    natural, width = out.measure(table, options=out.options.update_width(10_000)).maximum, out.width
    out.width = max(width, natural)  # print(width=) cannot widen past the console's own width
    try:
        out.print(table)
    finally:
        out.width = width


def _cut(text: str) -> str:
    return text if len(text) <= ANSWER_CHARS else text[: ANSWER_CHARS - 1] + "…"


def _size(size: int | None) -> str:
    if size is None:
        return "–"
    return f"{size / 2**30:.2f} GiB" if size >= 2**30 else f"{size / 2**20:.0f} MiB"
