"""`konsilium model info`: what the configured engine is, read from the model files' headers (a local model is
never loaded for this), or asked of the upstream / vLLM."""

from __future__ import annotations

import typer

from .output import HomeOption, JsonOption, home_from, out, print_json, safe_line, user_errors

model_app = typer.Typer(help="The base model that answers.", no_args_is_help=True)


def describe(home) -> dict:
    engine = home.config.engine
    if engine.kind == "transformers":
        from ..engines.model_metadata import describe_local_model

        data = describe_local_model(engine.model, engine.dtype, engine.device)
        data["batching"] = engine.model_dump(include={"max_batch_size", "max_batch_tokens", "batch_invariant"})
        return data
    from ..pipeline.assemble import load_configured_engine

    return load_configured_engine(home).info()


@model_app.command("info")
def info(ctx: typer.Context, home: HomeOption = None, as_json: JsonOption = False):
    """Describe the base model konsilium.yaml configures (by default the embedded SmolLM2-135M-Instruct)."""
    with user_errors(as_json):
        data = describe(home_from(ctx, home))
    if as_json:
        print_json(data)
        return
    for key, value in data.items():
        if key == "replicas":  # one line each: where, up or down, what it holds
            for replica in value:
                state = "up" if replica["up"] else f"down ({replica['error']})"
                line = f"{replica['url']} {state}, {replica['in_flight']} in flight, adapters: {replica['adapters']}"
                out.print(f"{'replica':>14}: {safe_line(line)}", highlight=False, markup=False)
            continue
        shown = "-" if value is None else (f"{value:,}" if key in ("parameters", "context_length") else value)
        out.print(f"{key:>14}: {safe_line(shown)}", highlight=False, markup=False)
