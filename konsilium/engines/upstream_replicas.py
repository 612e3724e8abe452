"""Several upstream servers for one model (replicas): each request goes to the healthy one with the fewest requests
in flight; one that cannot be reached is skipped for `dead_s` seconds, then tried again.

n8n's many agents hit one konsilium, which spreads them over N vLLM replicas; each replica keeps its own set of
loaded adapters (`UpstreamAdapters` tracks them per replica).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field

import openai

from ..errors import UpstreamError

log = logging.getLogger("konsilium.engines")

PLACEHOLDER_KEY = "EMPTY"


@dataclass(eq=False)
class Replica:
    url: str
    client: openai.OpenAI
    in_flight: int = 0
    dead_until: float = 0.0  # monotonic time; 0: healthy
    last_error: str | None = None
    picked: int = 0  # how often it was chosen: ties go to the least used
    loaded: OrderedDict = field(default_factory=OrderedDict)  # adapter names it holds, least recently used first
    using: Counter = field(default_factory=Counter)  # adapter name -> requests in flight on it here
    lock: threading.Lock = field(default_factory=threading.Lock)  # one adapter load/unload at a time here

    def up(self, now: float | None = None) -> bool:
        return self.dead_until <= (time.monotonic() if now is None else now)


def make_client(url: str, api_key: str | None, timeout_s: float) -> openai.OpenAI:
    # Always an explicit key: given None, the client would read $OPENAI_API_KEY and send the user's OpenAI
    # key to this server. Local servers ignore the placeholder.
    client = openai.OpenAI(base_url=url, api_key=api_key or PLACEHOLDER_KEY, max_retries=0, timeout=timeout_s)
    # Likewise $OPENAI_ORG_ID, $OPENAI_PROJECT_ID and $OPENAI_ADMIN_KEY are no business of this server.
    client.organization = client.project = client.admin_api_key = None
    return client


class ReplicaPool:
    def __init__(self, urls: list[str], api_key: str | None, timeout_s: float, dead_s: float = 30.0):
        if not urls:
            raise ValueError("engine.upstream_url: give at least one URL")
        self.replicas = [Replica(url.rstrip("/"), make_client(url.rstrip("/"), api_key, timeout_s)) for url in urls]
        self.dead_s = dead_s
        self._lock = threading.Lock()

    def pick(self, tried: set[Replica] = frozenset()) -> Replica:
        """The healthy replica with the fewest requests in flight, counted as taken; when none is healthy, the one
        that failed longest ago (it may be back). UpstreamError when every replica was tried."""
        with self._lock:
            left = [r for r in self.replicas if r not in tried]
            if not left:
                reasons = "; ".join(f"{r.url}: {r.last_error}" for r in self.replicas)
                raise UpstreamError(f"no upstream replica answered ({reasons})")
            now = time.monotonic()
            healthy = [r for r in left if r.up(now)]
            replica = (
                min(healthy, key=lambda r: (r.in_flight, r.picked))
                if healthy
                else min(left, key=lambda r: r.dead_until)
            )
            replica.in_flight += 1
            replica.picked += 1
            return replica

    def done(self, replica: Replica) -> None:
        with self._lock:
            replica.in_flight -= 1

    def failed(self, replica: Replica, reason: str) -> None:
        with self._lock:
            if replica.up():
                log.warning("upstream replica %s is down for %gs: %s", replica.url, self.dead_s, reason)
            replica.dead_until, replica.last_error = time.monotonic() + self.dead_s, reason

    def answered(self, replica: Replica) -> None:
        if replica.dead_until:
            with self._lock:
                replica.dead_until, replica.last_error = 0.0, None

    def status(self) -> list[dict]:
        now = time.monotonic()
        return [
            {"url": r.url, "up": r.up(now), "in_flight": r.in_flight, "adapters": list(r.loaded), "error": r.last_error}
            for r in self.replicas
        ]
