"""What the server needs from `konsilium.yaml` (section `server`) and the environment, checked once at start."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass

API_KEY_ENV = "KONSILIUM_API_KEY"


@dataclass(frozen=True)
class ServerSettings:
    model_id: str = "konsilium"
    api_keys: tuple[str, ...] = ()
    max_body_bytes: int = 2_000_000
    retrieval: bool = True
    context_chunks: int = 6
    context_share: float = 0.5

    @classmethod
    def from_home(cls, home, environ=None) -> ServerSettings:
        section = home.settings["server"]
        return cls(
            model_id=section["model_id"],
            api_keys=api_keys(section["api_keys"], environ),
            max_body_bytes=section["max_body_bytes"],
            retrieval=section["retrieval"],
            context_chunks=section["context_chunks"],
            context_share=float(section["context_share"]),
        )


def api_keys(configured: list[str], environ=None) -> tuple[str, ...]:
    environ = os.environ if environ is None else environ
    keys = [key.strip() for key in configured if key.strip()]
    if environ.get(API_KEY_ENV, "").strip():
        keys.append(environ[API_KEY_ENV].strip())
    return tuple(dict.fromkeys(keys))


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, port: int, keys: tuple[str, ...]) -> None:
    """Other machines may reach the server only when every request must carry a key."""
    if not 0 < port < 65536:
        raise ValueError(f"port must be between 1 and 65535, got {port}")
    if not is_loopback(host) and not keys:
        raise ValueError(
            f"refusing to bind {host!r} without an API key: other machines could use your model and read your "
            f"notes. Set {API_KEY_ENV} (or server.api_keys in konsilium.yaml), or bind 127.0.0.1"
        )
