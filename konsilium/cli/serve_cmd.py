"""`konsilium serve`: the OpenAI-compatible API on the embedded default model, on this machine only (for now)."""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer

from .output import err, user_errors

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8000


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_host(host: str) -> None:
    """Until API keys exist, the server must not be reachable from other machines."""
    if not is_loopback(host):
        raise ValueError(
            f"refusing to bind {host!r}: konsilium serves only on a loopback address (127.0.0.1, ::1, localhost) "
            "until API keys are supported"
        )


def run_server(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, engine=None, model_id: str = "konsilium") -> None:
    """Check the address, load the engine (the embedded default unless given) and serve until interrupted."""
    check_host(host)
    if not 0 < port < 65536:
        raise ValueError(f"port must be between 1 and 65535, got {port}")
    import uvicorn

    from ..server import create_app

    if engine is None:
        from ..engines import load_embedded_default

        err.print("loading the embedded default model…", highlight=False)
        engine = load_embedded_default()
    uvicorn.run(create_app(engine, model_id=model_id), host=host, port=port, log_level="info")


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to bind (loopback only for now).")] = DEFAULT_HOST,
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = DEFAULT_PORT,
):
    """Serve the OpenAI-compatible API (GET /v1/models, POST /v1/chat/completions)."""
    with user_errors():
        run_server(host=host, port=port)
