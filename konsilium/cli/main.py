"""The `konsilium` command: each group lives in its own module; this file only wires them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .ask_cmd import ask
from .config_cmd import config_app
from .eval_cmd import eval_app
from .history_cmd import history_app
from .import_cmd import import_app
from .index_cmds import IndexCommand, index, search, stats
from .lab_cmd import lab
from .memory_cmd import memory_app
from .model_cmd import model_app
from .plan_cmd import explain, plan_app
from .roles_cmd import adapters_app, roles_app
from .serve_cmd import serve
from .task_cmd import task
from .train_cmds import dataset_app, train

app = typer.Typer(
    help="konsilium: a private AI over your Obsidian vault, running entirely on this machine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Every group inherits this. Rich markup would eat help text in brackets (`[[wikilink]]`,
    # `[default: retrieval.k]`); Markdown shows it as written.
    rich_markup_mode="markdown",
)


@app.callback()
def main(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option("--home", help="State directory (default: $KONSILIUM_HOME or ~/.konsilium)."),
    ] = None,
):
    ctx.obj = {"home": home}


app.command(cls=IndexCommand)(index)
app.command()(search)
app.command()(stats)
app.command()(serve)
app.command()(ask)
app.command()(task)
app.command()(train)
app.command()(lab)
app.add_typer(config_app, name="config")
app.add_typer(eval_app, name="eval")
app.add_typer(dataset_app, name="dataset")
app.add_typer(import_app, name="import")
app.add_typer(plan_app, name="plan")
app.add_typer(model_app, name="model")
app.add_typer(history_app, name="history")
app.add_typer(memory_app, name="memory")
app.add_typer(roles_app, name="roles")
app.add_typer(adapters_app, name="adapters")
app.command()(explain)

if __name__ == "__main__":
    app()
