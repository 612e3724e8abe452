"""`konsilium serve`: the OpenAI-compatible API on the configured engine, grounded in the indexed vault."""

from __future__ import annotations

from typing import Annotated

import typer

from .output import HomeOption, err, home_from, user_errors


def build_app(home, host: str, port: int, engine=None):
    """Check the address against the keys, load the engine, the index and the log; return the ASGI app."""
    from ..pipeline.assemble import assemble, load_configured_engine
    from ..server.settings import ServerSettings, check_bind

    settings = ServerSettings.from_home(home, bind_host=host)
    check_bind(host, port, settings.api_keys)
    from ..server import create_app

    if engine is None:
        config = home.config.engine
        err.print(f"loading the {config.kind} engine ({config.model})…", highlight=False, markup=False)
        engine = load_configured_engine(home)
        warm_up = getattr(engine, "warm_up", None)  # local engines probe their batching path once, here
        if warm_up is not None:
            warm_up()
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
    watch: Annotated[bool, typer.Option("--watch", help="Re-index vault.paths as notes are saved.")] = False,
):
    """Serve the OpenAI-compatible API: /v1/models, /v1/chat/completions, /v1/completions, /v1/embeddings."""
    stop_watching = None
    with user_errors():
        h = home_from(ctx, home)
        host = host or h.config.server.host
        port = port or h.config.server.port
        app = build_app(h, host, port)
        if watch or h.config.index.watch:
            from ..index.watch import start_watching

            stop_watching = _saying_when_done(start_watching(h, knowledge=app.state.pipeline.knowledge))
    err.print(f"konsilium serves on http://{host}:{port}/v1 (Ctrl-C stops)", highlight=False, markup=False)
    try:
        run_until_stopped(app, host, port, on_stop=stop_watching)
    finally:
        if stop_watching is not None:
            stop_watching()  # if the server never started; a second call does nothing


def _saying_when_done(stop):
    done = []

    def stop_once() -> None:
        if not done:
            done.append(True)
            stop()  # an index run in progress commits its batch first
            err.print("stopped watching the vault", highlight=False, markup=False)

    return stop_once


SHUTDOWN_GRACE_S = 5  # answers in progress get this long to end (they are stopped first), then the process exits


def run_until_stopped(app, host: str, port: int, on_stop=None) -> None:
    """uvicorn, with a shutdown that does not wait for answers still being generated: on Ctrl-C or SIGTERM every
    answer in progress is stopped (streams end with an in-band error, others get 503) and logged as cancelled.
    `on_stop` runs once the server has shut down, before a SIGTERM is raised again to end the process."""
    import contextlib

    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):
            # uvicorn re-raises a captured SIGTERM when this block ends, and its default action ends the process
            # at once: what must still happen (the vault watcher's last commit) happens inside it.
            with super().capture_signals():
                try:
                    yield
                finally:
                    if on_stop is not None:
                        on_stop()

        def handle_exit(self, sig, frame) -> None:
            stopped = app.state.in_flight.cancel_all("the server is shutting down")
            if stopped and not self.should_exit:
                err.print(f"stopping {stopped} answer(s) in progress…", highlight=False, markup=False)
            super().handle_exit(sig, frame)

    config = uvicorn.Config(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=SHUTDOWN_GRACE_S)
    Server(config).run()
