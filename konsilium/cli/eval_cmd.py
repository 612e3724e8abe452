"""`konsilium eval retrieval`."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ..config import default_home, open_home
from .index_cmds import MODES, StoreOption, _quiet_model_loading
from .output import HomeOption, JsonOption, fail, home_from, out, print_json, progress_bar, safe_line, user_errors

eval_app = typer.Typer(help="Measure quality.", no_args_is_help=True)


@eval_app.command("retrieval")
def retrieval(
    ctx: typer.Context,
    vault: Annotated[Path, typer.Option(help="Vault folder to index and query.")],
    questions: Annotated[Path, typer.Option(help='JSON lines: {"question": str, "expected": [note paths]}.')],
    k: Annotated[int, typer.Option("--k", min=1, max=100, help="Cut-off for hit@k.")] = 5,
    home: Annotated[
        Path | None,
        typer.Option(help="Index into this home (default: a cache per vault under the konsilium home)."),
    ] = None,
    mode: Annotated[list[str] | None, typer.Option(help="Modes to score (default: all).")] = None,
    details: Annotated[bool, typer.Option(help="Include per-question ranks in --json.")] = False,
    store: StoreOption = None,
    as_json: JsonOption = False,
):
    """Index VAULT and score hit@k and MRR@10 for every retrieval mode."""
    from ..evaluation.retrieval import evaluate, load_questions
    from ..index.indexer import Indexer
    from ..index.retrieval import Retriever

    modes = mode or list(MODES)
    for m in modes:
        if m not in MODES:
            fail(f"--mode {m!r}: allowed values are {', '.join(MODES)}", as_json, code=2)
    with user_errors(as_json):
        items = load_questions(questions)
        if not vault.is_dir():
            fail(f"{vault}: not a directory", as_json)
        _quiet_model_loading()
        h = open_home(home or eval_cache(Path((ctx.obj or {}).get("home") or default_home()), vault))
        indexer = Indexer(h, roots=[vault], store=store)
        with progress_bar("indexing", enabled=not as_json) as progress:
            report = indexer.run([vault], progress)
        retriever = Retriever(indexer.store, indexer.embedder, h.config.retrieval.candidates)
        result = evaluate(retriever, items, k=k, modes=modes, details=details)
        result["index"] = {
            "home": str(h.root),
            "embedder": indexer.embedder.name,
            "embedded_chunks": report.embedded_chunks,
            "unchanged": report.unchanged,
        }
    if as_json:
        print_json(result)
        return
    table = Table(title=f"retrieval on {vault} — {result['questions']} questions")
    table.add_column("mode")
    table.add_column(f"hit@{k}", justify="right")
    table.add_column("MRR@10", justify="right")
    for name, scores in result["modes"].items():
        table.add_row(name, f"{scores['hit']:.3f}", f"{scores['mrr']:.3f}")
    out.print(table)
    index = result["index"]
    out.print(f"[dim]index {index['home']}: {index['embedded_chunks']} chunks embedded[/]", highlight=False)


def eval_cache(konsilium_home: Path, vault: Path) -> Path:
    """The eval's own index of `vault`, kept between runs (incremental, like `konsilium index`): a second run on
    an unchanged vault embeds nothing."""
    resolved = vault.expanduser().resolve()
    key = hashlib.sha256(resolved.as_posix().encode()).hexdigest()[:16]
    return konsilium_home / "cache" / "eval" / f"{resolved.name[:40]}-{key}"


@eval_app.command("memory")
def memory(
    ctx: typer.Context,
    sessions: Annotated[Path, typer.Option(help='JSON lines: {"session", "time", "messages": [{"role", "content"}]}.')],
    questions: Annotated[
        Path, typer.Option(help='JSON lines: {"question", "time", "expected": [...], "stale": [...], "kind"}.')
    ],
    k: Annotated[int, typer.Option("--k", min=1, max=50, help="Memories offered per question.")] = 5,
    as_json: JsonOption = False,
):
    """Replay SESSIONS through the memory loop (fresh temporary home, nothing generated) and score the memories
    each question would get: current_hit (an expected answer among them), stale_leak (an outdated one)."""
    from ..evaluation.memory import EvalDataError, evaluate, load_jsonl

    with user_errors(as_json):
        try:
            items = load_jsonl(sessions, ("session", "time", "messages"), "sessions")
            asked = load_jsonl(questions, ("question", "time"), "questions")
        except EvalDataError as exc:
            fail(str(exc), as_json)
        settings = open_home((ctx.obj or {}).get("home") or default_home()).config.memory
        result = evaluate(items, asked, k=k, settings=settings)
    if as_json:
        print_json(result)
        return
    table = Table(title=f"memory on {sessions.name}: {result['questions']} questions, k={k}")
    for column in ("kind", "n", "hit", "leak"):
        table.add_column(column, justify="left" if column == "kind" else "right")
    for kind, scores in sorted(result["by_kind"].items()):
        hit = "–" if scores["hit"] is None else f"{scores['hit']:.2f}"
        table.add_row(kind, str(scores["n"]), hit, f"{scores['leak']:.2f}")
    hit = "–" if result["current_hit"] is None else f"{result['current_hit']:.3f}"
    table.add_row("all", str(result["questions"]), hit, f"{result['stale_leak']:.3f}", style="bold")
    out.print(table)
    for q in result["per_question"]:
        if q["hit"] is False or q["leak"]:
            why = "missed" if q["hit"] is False else "stale"
            out.print(f"[yellow]{why}[/] {escape(safe_line(q['question']))}: {escape(safe_line(str(q['memories'])))}")


@eval_app.command("perplexity")
def perplexity(
    ctx: typer.Context,
    model: Annotated[str, typer.Option("--model", help="The base model's id (or `base`), a role, or ROLE@N.")],
    notes: Annotated[Path | None, typer.Option("--notes", help="A folder of notes, all of it measured.")] = None,
    dataset: Annotated[Path | None, typer.Option("--dataset", help="A JSONL dataset file.")] = None,
    split: Annotated[str, typer.Option("--split", help="--dataset: eval, train or all.")] = "eval",
    context: Annotated[
        int | None, typer.Option("--context", min=16, help="Tokens per window (default: training.max_tokens).")
    ] = None,
    assignments: Annotated[
        list[str] | None,
        typer.Option("--set", help="An inference-time config override, e.g. num_experts_per_tok=16; repeatable."),
    ] = None,
    base: Annotated[Path | None, typer.Option("--base", help="Base model weights (default: the engine's).")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    home: HomeOption = None,
    as_json: JsonOption = False,
):
    """Token-weighted perplexity of a model on held-out text, tokenized exactly as training tokenizes it."""
    from ..training.measure import SPLITS, checked_overrides, measure, text_samples

    if (notes is None) == (dataset is None):
        fail("give --notes DIR or --dataset FILE (one of them)", as_json, code=2)
    if split not in SPLITS:
        fail(f"--split {split!r}: use {', '.join(SPLITS)}", as_json, code=2)
    with user_errors(as_json):
        h = home_from(ctx, home)
        settings = h.config.training
        overrides = checked_overrides(assignments or [])
        samples = text_samples(settings, notes, dataset, split)
        _quiet_model_loading()
        with progress_bar(f"measuring {model}", enabled=not as_json, unit="batches") as progress:
            result = measure(h, model, samples, context or settings.max_tokens, overrides, base, device, progress)
    if as_json:
        print_json(result)
        return
    out.print(
        f"{escape(result['model'])}: perplexity [bold]{result['perplexity']}[/] over {result['tokens']} tokens "
        f"({result['windows']} windows of at most {result['context']}; {result['tokens_per_s']} tok/s)",
        highlight=False,
    )
