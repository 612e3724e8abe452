"""`konsilium eval retrieval`."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..config import open_home
from .index_cmds import MODES, _quiet_model_loading
from .output import JsonOption, fail, out, print_json, progress_bar, user_errors

eval_app = typer.Typer(help="Measure quality.", no_args_is_help=True)


@eval_app.command("retrieval")
def retrieval(
    vault: Annotated[Path, typer.Option(help="Vault folder to index and query.")],
    questions: Annotated[Path, typer.Option(help='JSON lines: {"question": str, "expected": [note paths]}.')],
    k: Annotated[int, typer.Option("--k", min=1, max=100, help="Cut-off for hit@k.")] = 5,
    home: Annotated[Path | None, typer.Option(help="Index into this home (default: a temporary one).")] = None,
    mode: Annotated[list[str] | None, typer.Option(help="Modes to score (default: all).")] = None,
    details: Annotated[bool, typer.Option(help="Include per-question ranks in --json.")] = False,
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
        with tempfile.TemporaryDirectory(prefix="konsilium-eval-") as tmp:
            h = open_home(home or tmp)
            indexer = Indexer(h, roots=[vault])
            with progress_bar("indexing", enabled=not as_json) as progress:
                indexer.run([vault], progress)
            retriever = Retriever(indexer.store, indexer.embedder, h.config.retrieval.candidates)
            result = evaluate(retriever, items, k=k, modes=modes, details=details)
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
