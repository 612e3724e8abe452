"""`konsilium serve`: the OpenAI-compatible API on the configured engine, grounded in the indexed vault."""

from __future__ import annotations

from typing import Annotated

import typer

from .output import HomeOption, err, home_from, user_errors


def build_app(home, host: str, port: int, engine=None):
    """Check the address against the keys, load the engine, the index and the log; return the ASGI app."""
    from ..server.settings import ServerSettings, check_bind

    settings = ServerSettings.from_home(home)
    check_bind(host, port, settings.api_keys)
    from ..grounding import Knowledge
    from ..memory import ConversationLog
    from ..server import create_app

    if engine is None:
        err.print(f"loading the {home.get('engine.kind')} engine ({home.get('engine.model')})…", highlight=False)
        engine = load_configured_engine(home)
    knowledge = Knowledge(home)
    collections = knowledge.collections()
    if knowledge.default_collection in collections:
        err.print(f"loading the index of collection {knowledge.default_collection!r}…", highlight=False)
        knowledge.retriever(knowledge.default_collection)  # the first request should not pay for the embedder
    elif settings.retrieval:
        err.print(
            f"[yellow]note:[/] collection {knowledge.default_collection!r} is not indexed yet: answers will not "
            "use your notes until you run `konsilium index PATH`",
            highlight=False,
        )
    conversation_log = ConversationLog.open_home(home) if home.get("server.log") else None
    roles = role_service(home, engine, knowledge, settings.model_id)
    return create_app(engine, knowledge=knowledge, conversation_log=conversation_log, settings=settings, roles=roles)


def load_configured_engine(home):
    """The engine of konsilium.yaml; vLLM also gets its LoRA slots and CPU cache from `adapter_cache`."""
    from ..engines import load_engine

    lora_args = None
    if home.get("engine.kind") == "vllm":
        from ..roles.path_adapters import vllm_lora_args_for

        lora_args = vllm_lora_args_for(home)
    return load_engine(home.settings["engine"], lora_args)


def role_service(home, engine, knowledge, model_id: str):
    """Roles from konsilium.yaml / roles.yaml over the engine; adapters warm to their tiers in the background."""
    import threading

    from ..roles.registry import RoleRegistry
    from ..roles.runtime import RoleService

    registry = RoleRegistry.open(home)  # a bad definition stops the start with one line naming it
    roles = RoleService(
        engine,
        registry,
        base_model_id=model_id,
        cache_settings=home.settings["adapter_cache"],
        embed=lambda texts: knowledge.embedder().embed(texts),
    )
    if registry.roles():
        err.print(f"roles: {', '.join(registry.role_ids())} (and 'auto' to let the router pick)", highlight=False)
    threading.Thread(target=roles.warm_all, daemon=True, name="warm-adapters").start()
    return roles


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
        host = host or h.get("server.host")
        port = port or h.get("server.port")
        app = build_app(h, host, port)
    import uvicorn

    err.print(f"konsilium serves on http://{host}:{port}/v1 (Ctrl-C stops)", highlight=False)
    uvicorn.run(app, host=host, port=port, log_level="info")
