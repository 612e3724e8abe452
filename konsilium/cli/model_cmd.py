"""`konsilium model info`: what the configured engine is (loads it, or asks its upstream)."""

from __future__ import annotations

import typer

from .output import HomeOption, JsonOption, home_from, out, print_json, user_errors

model_app = typer.Typer(help="The base model that answers.", no_args_is_help=True)


@model_app.command("info")
def info(ctx: typer.Context, home: HomeOption = None, as_json: JsonOption = False):
    """Load the engine konsilium.yaml configures (by default the embedded SmolLM2-135M-Instruct) and describe it."""
    with user_errors(as_json):
        from ..pipeline.assemble import load_configured_engine

        data = load_configured_engine(home_from(ctx, home)).info()
    if as_json:
        print_json(data)
        return
    for key, value in data.items():
        shown = "-" if value is None else (f"{value:,}" if key == "parameters" else value)
        out.print(f"{key:>13}: {shown}", highlight=False)
