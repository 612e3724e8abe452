"""Role adapters loaded into an OpenAI-compatible upstream at run time (vLLM's `/v1/load_lora_adapter`, with
VLLM_ALLOW_RUNTIME_LORA_UPDATING=True; another konsilium serves the same endpoints).

The upstream reads the adapter's folder itself (a role's PEFT folder, or the folder a stacked role is written to),
so it must see the same paths as this server. We keep our own view of what each replica holds: least recently used
first, at most `max_loras` (beyond that the least recently used adapter that is neither pinned nor answering is
unloaded), and forget it when the upstream says it does not know the adapter (a restarted server) so that the
next request loads it again.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import httpx

from .upstream_replicas import Replica

log = logging.getLogger("konsilium.engines")

DEFAULT_MAX_LORAS = 4
PROBE_NAME = "konsilium-probe-no-such-adapter"
UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
# vLLM's Prometheus gauge carries its --max-loras as a label (once its scheduler has run).
MAX_LORA_METRIC = re.compile(r'^vllm:lora_requests_info\{[^}]*\bmax_lora="(\d+)"', re.MULTILINE)


@dataclass
class _Wanted:
    path: str
    pinned: bool = False


def upstream_name(name: str) -> str:
    """The adapter's name on the upstream: `role:coach@2` -> `role-coach-2` (names both vLLM and konsilium take)."""
    return UNSAFE.sub("-", name)[:64]


def probe_lora_loading(url: str, api_key: str | None, timeout_s: float = 10) -> tuple[bool, str]:
    """Whether the upstream loads adapters at run time, and why we think so: where the endpoint exists, unloading
    an adapter it does not know is answered with a 400/404 naming that adapter (vLLM, konsilium); a missing route
    is a 404 that names none (vLLM without runtime updating, llama.cpp, Ollama); 403 is a konsilium that does not
    allow it."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        answer = httpx.post(
            f"{url}/unload_lora_adapter", json={"lora_name": PROBE_NAME}, headers=headers, timeout=timeout_s
        )
    except httpx.HTTPError as exc:
        return False, f"not reachable: {type(exc).__name__}"
    try:
        body = answer.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    message = (error.get("message") if isinstance(error, dict) else None) or ""
    if answer.status_code in (400, 404) and PROBE_NAME in message:  # it looked for the adapter: the endpoint is there
        return True, "the upstream serves /v1/load_lora_adapter"
    if answer.status_code == 403:
        return False, f"the upstream refuses runtime adapters: {message}"
    return False, (
        f"the upstream has no runtime adapter loading (HTTP {answer.status_code}); "
        "start vLLM with --enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True"
    )


def max_loras_in_metrics(text: str) -> int | None:
    """vLLM's `max_lora` label from its /metrics text; None when it is not there."""
    found = MAX_LORA_METRIC.search(text)
    return int(found.group(1)) if found and int(found.group(1)) > 0 else None


def reported_max_loras(url: str, api_key: str | None, timeout_s: float = 10) -> int | None:
    """What the upstream says its adapter budget is: vLLM's /metrics (at the server root, not under /v1)."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        answer = httpx.get(f"{url.removesuffix('/v1')}/metrics", headers=headers, timeout=timeout_s)
    except httpx.HTTPError:
        return None
    return max_loras_in_metrics(answer.text) if answer.status_code == 200 else None


class AdapterLoadError(RuntimeError):
    """The upstream answered a load with an error (a folder it cannot read, a rank over its max_lora_rank)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class UpstreamAdapters:
    def __init__(self, api_key: str | None, max_loras: int, timeout_s: float = 120):
        self.max_loras = max_loras
        self.timeout_s = timeout_s
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._wanted: dict[str, _Wanted] = {}  # adapters handed to us ahead of use (pinned ones never evicted)

    # --- what RoleService's PathAdapterPool calls (the PATHS surface) -------------------------------------

    def add(self, name: str, path: str, pinned: bool = False) -> None:
        self._wanted[name] = _Wanted(str(path), pinned)

    def remove(self, name: str, replicas: list[Replica]) -> None:
        self._wanted.pop(name, None)
        for replica in replicas:
            with replica.lock:
                if name in replica.loaded:
                    self._unload(replica, name)

    # --- per request ----------------------------------------------------------------------------------------

    def ensure(self, replica: Replica, name: str, path: str | None) -> str:
        """The upstream model id for adapter `name` on `replica`, loading it there first if needed; counts a use
        (call `release` when the answer is complete)."""
        with replica.lock:
            if name in replica.loaded:
                replica.loaded.move_to_end(name)
            else:
                folder = path or (self._wanted[name].path if name in self._wanted else None)
                if folder is None:
                    raise AdapterLoadError(f"adapter {name!r} has no folder to load into the upstream")
                self._make_room(replica)
                self._load(replica, name, folder)
                replica.loaded[name] = folder
            replica.using[name] += 1
        return upstream_name(name)

    def release(self, replica: Replica, name: str) -> None:
        with replica.lock:
            replica.using[name] -= 1
            if replica.using[name] <= 0:
                del replica.using[name]

    def forget(self, replica: Replica, name: str) -> None:
        """The upstream does not hold `name` after all (it restarted): load it again on the next use."""
        with replica.lock:
            replica.loaded.pop(name, None)

    def forget_all(self, replica: Replica) -> None:
        with replica.lock:
            replica.loaded.clear()

    def _make_room(self, replica: Replica) -> None:
        while len(replica.loaded) >= self.max_loras:
            victim = next(
                (n for n in replica.loaded if not replica.using[n] and not self._pinned(n)),
                None,
            )
            if victim is None:  # all pinned or answering: go over the budget rather than fail the request
                log.warning("upstream %s holds %d adapters, all in use or pinned", replica.url, len(replica.loaded))
                return
            self._unload(replica, victim)

    def _pinned(self, name: str) -> bool:
        wanted = self._wanted.get(name)
        return wanted is not None and wanted.pinned

    # --- HTTP -----------------------------------------------------------------------------------------------

    def _post(self, replica: Replica, endpoint: str, body: dict) -> httpx.Response:
        return httpx.post(f"{replica.url}/{endpoint}", json=body, headers=self._headers, timeout=self.timeout_s)

    def _load(self, replica: Replica, name: str, folder: str) -> None:
        body = {"lora_name": upstream_name(name), "lora_path": folder}
        answer = self._post(replica, "load_lora_adapter", body)
        if answer.status_code == 400 and "already" in answer.text:
            # Left from an earlier run of ours, perhaps from an older folder: load it afresh.
            self._post(replica, "unload_lora_adapter", {"lora_name": body["lora_name"]})
            answer = self._post(replica, "load_lora_adapter", body)
        if answer.status_code != 200:
            raise AdapterLoadError(
                f"the upstream at {replica.url} did not load adapter {name!r} from {folder} "
                f"(HTTP {answer.status_code}): {_message(answer)}",
                status=answer.status_code,
            )

    def _unload(self, replica: Replica, name: str) -> None:
        replica.loaded.pop(name, None)
        try:
            answer = self._post(replica, "unload_lora_adapter", {"lora_name": upstream_name(name)})
        except httpx.HTTPError as exc:  # a dead replica forgets its adapters anyway
            log.warning("could not unload adapter %s from %s: %s", name, replica.url, exc)
            return
        if answer.status_code not in (200, 400, 404):  # 400/404: it was not there (any more)
            log.warning("unloading adapter %s from %s: HTTP %d", name, replica.url, answer.status_code)


def _message(answer: httpx.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return " ".join(answer.text.split())[:300]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return str(body.get("message") or body.get("detail") or body)[:300] if isinstance(body, dict) else str(body)
