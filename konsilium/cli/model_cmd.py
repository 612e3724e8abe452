"""`konsilium model info`: what the base model is (loads it)."""

from __future__ import annotations

import typer

from .output import JsonOption, out, print_json, user_errors

model_app = typer.Typer(help="The base model that answers.", no_args_is_help=True)


@model_app.command("info")
def info(as_json: JsonOption = False):
    """Load the base model (the embedded SmolLM2-135M-Instruct) and describe it."""
    with user_errors(as_json):
        from ..engines import load_embedded_default

        data = load_embedded_default().info()
    if as_json:
        print_json(data)
        return
    for key, value in data.items():
        shown = f"{value:,}" if key == "parameters" else ("-" if value is None else value)
        out.print(f"{key:>13}: {shown}", highlight=False)
