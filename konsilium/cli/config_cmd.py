"""`konsilium config show|path`."""

from __future__ import annotations

import typer
import yaml

from .output import HomeOption, JsonOption, home_from, out, print_json, user_errors

config_app = typer.Typer(help="Show the settings in force.", no_args_is_help=True)


@config_app.command("show")
def show(ctx: typer.Context, home: HomeOption = None, as_json: JsonOption = False):
    """Print the merged settings (defaults + konsilium.yaml)."""
    with user_errors(as_json):
        h = home_from(ctx, home)
    settings = h.config.model_dump(mode="json")  # every key of the schema, in its order
    if as_json:
        print_json({"home": str(h.root), "config": str(h.config_path), "settings": settings})
        return
    out.print(f"# {h.config_path}", highlight=False)
    out.print(yaml.safe_dump(settings, allow_unicode=True, sort_keys=False), highlight=False)
