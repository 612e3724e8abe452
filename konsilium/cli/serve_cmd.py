"""`konsilium serve`: the OpenAI-compatible API on the configured engine, grounded in the indexed vault."""

from __future__ import annotations

from typing import Annotated

import typer

from .output import HomeOption, err, home_from, user_errors


def build_app(home, host: str, port: int, engine=None):
    """Check the address against the keys, load the engine, the index and the log; return the ASGI app."""
    from ..pipeline.assemble import assemble, load_configured_engine
    from ..server.settings import ServerSettings, check_bind

    settings = ServerSettings.from_home(home)
    check_bind(host, port, settings.api_keys)
    from ..server import create_app

    if engine is None:
        config = home.config.engine
        err.print(f"loading the {config.kind} engine ({config.model})…", highlight=False, markup=False)
        engine = load_configured_engine(home)
    pipeline = assemble(home, engine)
    knowledge = pipeline.knowledge
    collections = knowledge.collections()
    if knowledge.default_collection in collections:
        err.print(f"loading the index of collection {knowledge.default_collection!r}…", highlight=False, markup=False)
        knowledge.retriever(knowledge.default_collection)  # the first request should not pay for the embedder
    elif settings.section.retrieval:
        err.print(
            f"[yellow]note:[/] collection {knowledge.default_collection!r} is not indexed yet: answers will not "
            "use your notes until you run `konsilium index PATH`",
            highlight=False,
        )
    roles = pipeline.roles
    if roles.roles():
        names = ", ".join(role.id for role in roles.roles())
        err.print(f"roles: {names} (and 'auto' to let the router pick)", highlight=False, markup=False)
    return create_app(engine, settings=settings, pipeline=pipeline)


def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option("--host", help="Address to bind (default server.host; non-loopback needs a key).")
    ] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port to listen on (default server.port).")] = None,
    home: HomeOption = None,
):
    """Serve the OpenAI-compatible API: /v1/models, /v1/chat/completions, /v1/completions, /v1/embeddings."""
    with user_errors():
        h = home_from(ctx, home)
        host = host or h.config.server.host
        port = port or h.config.server.port
        app = build_app(h, host, port)
    import uvicorn

    err.print(f"konsilium serves on http://{host}:{port}/v1 (Ctrl-C stops)", highlight=False)
    uvicorn.run(app, host=host, port=port, log_level="info")
