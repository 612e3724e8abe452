"""What the server needs from `konsilium.yaml` (section `server`) and the environment, checked once at start."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field

from ..config import ServerSection
from ..pipeline.settings import GroundingSettings

API_KEY_ENV = "KONSILIUM_API_KEY"


@dataclass(frozen=True)
class ServerSettings:
    """The typed `server` section, plus the keys from the environment (checked once at start)."""

    section: ServerSection = field(default_factory=ServerSection)
    api_keys: tuple[str, ...] = ()
    bind_host: str | None = None  # the address actually bound (`serve --host`), when it differs from section.host

    @classmethod
    def from_home(cls, home, environ=None, bind_host: str | None = None) -> ServerSettings:
        section = home.config.server
        return cls(section, api_keys(section.api_keys, environ), bind_host)

    @property
    def model_id(self) -> str:
        return self.section.model_id

    @property
    def max_body_bytes(self) -> int:
        return self.section.max_body_bytes

    @property
    def allowed_hosts(self) -> tuple[str, ...]:
        """Host header names accepted besides loopback: the configured ones, and a non-loopback bind address."""
        bound = self.bind_host or self.section.host
        return (*self.section.allowed_hosts, *(() if is_loopback(bound) else (bound,)))

    @property
    def grounding(self) -> GroundingSettings:
        return GroundingSettings.from_config(self.section)


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
