"""Roles at serving time: which model ids exist, what a request's `model` resolves to, and the adapters behind.

`RoleService` is the one place where a model id becomes a role and an `AdapterRequest` (like vLLM's
`OpenAIServingModels`). It ties the registry (what is defined), the adapter tiers (where adapters are) and the
router (`model: "auto"`) to one engine, and follows what the engine declares in `adapter_support`:
- SLOTS (transformers): our tiered `AdapterCache` brings adapters into the engine's slots;
- PATHS (vLLM, or an openai-upstream that loads adapters at run time): the engine keeps its own tiers; a
  `PathAdapterPool` hands it folders (stacked roles written once);
- UPSTREAM_MODELS (an openai-upstream that cannot load adapters): an adapter name is an upstream model name, so a
  role stacks nothing;
- NONE: the base model only.

A role's trained versions are model ids too: `sport@1` is the role (its prompt, scope, topics, label) answering with
version 1's adapters; `sport` answers with the current version.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..config import AdapterCacheSettings
from ..engines.protocol import AdapterRequest, AdapterSupport
from ..errors import ModelNotFoundError, RoleUnavailableError
from .cache import AdapterCache, AdapterWaitCancelled, UnknownAdapterError
from .path_adapters import PathAdapterPool, write_stacked
from .routing import Route, Router, blocked_topic
from .spec import ROUTING_ID, RoleSpec, split_model_id

log = logging.getLogger("konsilium.roles")


class RuntimeLoadingRefused(Exception):
    """POST /v1/load_lora_adapter (or unload) refused by the settings: off, or a path outside the allowed
    folders (HTTP 403). The message never says whether the path exists."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


@dataclass
class Resolution:
    model: str  # the id the client asked for
    role: RoleSpec | None  # None: the base model
    adapter: AdapterRequest | None  # what the engine runs the request with (stacked roles get one of their own)
    route: Route | None = None  # set when `auto` chose
    declined: str | None = None  # why the named role did not answer (a blocked topic): the base model did

    @property
    def role_id(self) -> str | None:
        return self.role.id if self.role else None

    def to_json(self) -> dict | None:
        """The response's `role` field: who answered, with its label, and how it was chosen (None: plain base)."""
        if self.role is None and self.route is None and self.declined is None:
            return None
        # The id names what answered: `sport@2` for a versioned role (asked as `sport` or `sport@2`).
        body = {"id": self.role.model_id if self.role else None, "label": self.role.label if self.role else "neutral"}
        if self.route is not None:
            body["routing"] = self.route.to_json()
        if self.declined is not None:
            body["declined"] = self.declined
        return body


class RoleService:
    def __init__(
        self,
        engine,
        registry=None,
        base_model_id: str = "konsilium",
        cache_settings: AdapterCacheSettings | dict | None = None,
        embed=None,
    ):
        self.engine, self.registry, self.base_model_id = engine, registry, base_model_id
        self.embed = embed  # callable(list[str]) -> vectors, for routing and topics; loaded lazily by the caller
        settings = AdapterCacheSettings.model_validate(dict(cache_settings or {}))
        self.max_rank = settings.max_rank
        self.runtime_loading, self.runtime_folders = settings.runtime_loading, list(settings.runtime_folders)
        self.support = AdapterSupport(engine.adapter_support)
        self.cache: AdapterCache | PathAdapterPool | None = None
        if self.support is AdapterSupport.SLOTS:
            # Slots sized to the cache: one per adapter that may sit on the device.
            engine.configure_adapters(
                slots=settings.max_loaded, max_rank=settings.max_rank, max_bytes=settings.gpu_bytes
            )
            self.cache = AdapterCache(
                engine, settings.gpu_bytes, settings.cpu_bytes, settings.max_loaded, settings.queue_timeout_s
            )
        elif self.support is AdapterSupport.PATHS:
            self.cache = PathAdapterPool(engine)
        self.runtime_adapters: dict[str, Path] = {}  # loaded with POST /v1/load_lora_adapter: usable as ids
        self._lock = threading.Lock()
        self._router: Router | None = None
        if self.cache is not None and registry is not None:
            for spec in registry.adapters():
                self._register(spec.name, spec.path, spec.tier, spec.pinned, warm=False)

    # --- what exists -------------------------------------------------------------------------------------------

    def roles(self) -> list[RoleSpec]:
        return self.registry.roles() if self.registry is not None else []

    def model_ids(self) -> list[str]:
        # `auto` is always listed (clients such as Open WebUI offer only what is listed); without roles it is the
        # base model, and the response's role.routing says so.
        ids = [self.base_model_id, *(role.id for role in self.roles()), ROUTING_ID]
        ids += self.registry.version_ids() if self.registry is not None else []  # after the ids that were there
        return ids + [name for name in self.runtime_adapters if name not in ids]

    def warm_all(self) -> None:
        """Bring every configured adapter to its preferred tier (server start, in the background)."""
        if self.cache is None:
            return
        for name in self.cache.names():
            try:
                self.cache.warm(name)
            except Exception as exc:  # a broken adapter disables its roles, not the server
                log.error("adapter %s could not be warmed: %s", name, exc)

    def refresh(self) -> None:
        """Pick up roles and adapters added, changed or removed in the files since the last look (`konsilium roles
        add` while the server runs): cheap when nothing changed."""
        if self.registry is None:
            return
        changes = self.registry.refresh(min_interval_s=0)  # two stat calls: cheaper than a stale role
        if not changes:
            return
        with self._lock:
            self._router = None  # roles changed: profiles are embedded again on the next `auto`
        if self.cache is None:
            return
        for name in changes.adapters_removed + changes.adapters_changed:
            if name in self.cache:
                self.cache.unregister(name)
        changed = set(changes.roles_changed + changes.roles_removed)
        for name in self.cache.names():  # a stack (`role:sport`, `role:sport@2`) is rebuilt from its new parts on use
            if name.startswith("role:") and split_model_id(name.removeprefix("role:"))[0] in changed:
                self.cache.unregister(name)
        for name in changes.adapters_added + changes.adapters_changed:
            spec = self.registry.adapter(name)
            self._register(spec.name, spec.path, spec.tier, spec.pinned, warm=False)

    # --- resolving a request -----------------------------------------------------------------------------------

    def resolve(self, model: str, query: str = "") -> Resolution:
        """The role and adapter for a request's `model`. ModelNotFoundError (404) for an unknown id,
        RoleUnavailableError (503) for a role whose adapters cannot be used now."""
        self.refresh()
        if model == self.base_model_id:
            return Resolution(model, None, None)
        if model == ROUTING_ID:
            if not self.roles():  # nothing to choose from: no embedder needed, the base model answers
                return Resolution(model, None, None, route=Route(None, 0.0, "no roles to choose from"))
            route = self.router().route(query)
            resolution = self.resolve(route.role or self.base_model_id)
            resolution.model, resolution.route = model, route
            return resolution
        if self.registry is not None and split_model_id(model)[0] in self.registry:
            role = self.registry.role_at(model)  # `sport@1`: version 1's adapters (UnknownVersionError: a 404)
            blocked = self._blocked(role, query)
            if blocked is not None:  # the guard holds for named requests too: the neutral model answers
                return Resolution(model, None, None, declined=f"{role.id} does not answer on {blocked!r}")
            return Resolution(model, role, self._adapter_for(role))
        if model in self.runtime_adapters:
            return Resolution(model, None, self._request(model))
        raise ModelNotFoundError(f"The model '{model}' does not exist.")

    def router(self) -> Router:
        with self._lock:
            if self._router is None:
                if self.embed is None:
                    raise RoleUnavailableError("routing needs an embedder (index a collection first)")
                self._router = Router(self.roles(), self.embed)
            return self._router

    def _blocked(self, role: RoleSpec, query: str) -> str | None:
        if not role.blocked_topics or not query.strip():
            return None
        router = self.router() if self.embed is not None else None
        return blocked_topic(role, query, router)

    @contextmanager
    def using(self, resolution: Resolution, cancel: threading.Event | None = None) -> Iterator[None]:
        """Keep the request's adapter on the device until the answer is complete (in-flight protection); waits
        for a free slot when all are busy (the cache's fair queue)."""
        if resolution.adapter is None or self.cache is None:
            yield
            return
        name = resolution.adapter.name
        try:
            self.cache.acquire(name, cancel=cancel)  # leaves the slot queue when the request is cancelled
        except UnknownAdapterError:
            raise ModelNotFoundError(f"The model '{resolution.model}' does not exist.") from None
        except AdapterWaitCancelled:
            raise  # the request was cancelled while it waited: its caller knows why
        except Exception as exc:
            raise RoleUnavailableError(f"role {resolution.model!r} is unavailable: {exc}") from exc
        try:
            yield
        finally:
            self.cache.release(name)

    def _adapter_for(self, role: RoleSpec) -> AdapterRequest | None:
        if not role.adapters:
            return None
        single = len(role.adapters) == 1 and next(iter(role.adapters.values())) == 1.0
        if single:
            return self._request(next(iter(role.adapters)))
        if self.support is AdapterSupport.UPSTREAM_MODELS:
            weights = ", ".join(f"{name}: {weight:g}" for name, weight in role.adapters.items())
            raise RoleUnavailableError(
                f"role {role.id!r} combines adapters ({weights}); an upstream serves one model per request, "
                "so a role on this openai-upstream names one adapter at weight 1.0 (an upstream that loads adapters "
                "at run time, vLLM with VLLM_ALLOW_RUNTIME_LORA_UPDATING=True, stacks them)"
            )
        if self.cache is None:
            raise RoleUnavailableError(f"role {role.id!r} needs adapters, which this engine cannot apply")
        name = f"role:{role.model_id}"  # each version stacks its own weights
        with self._lock:
            if name not in self.cache:
                self.cache.register(name, self._stack_source(role), preferred="cpu", warm=False)
        return self._request(name)

    def _request(self, name: str) -> AdapterRequest:
        """The handle the engine gets: vLLM also needs the folder; a SLOTS engine starts reading it from disk now,
        while the request's notes are retrieved."""
        if self.support is AdapterSupport.PATHS:
            try:
                return AdapterRequest(name, str(self.cache.path(name)))
            except UnknownAdapterError:
                raise ModelNotFoundError(f"The model '{name}' does not exist.") from None
            except Exception as exc:  # a stack that cannot be built
                raise RoleUnavailableError(f"adapter {name!r} is unavailable: {exc}") from exc
        if self.support is AdapterSupport.SLOTS:
            self.cache.prefetch(name)
        elif self.support is AdapterSupport.NONE:
            raise RoleUnavailableError(f"adapter {name!r} cannot be applied: this engine serves the base model only")
        return AdapterRequest(name)

    def _stack_source(self, role: RoleSpec):
        def build():
            from .stacking import stack
            from .validation import load_adapter_weights

            parts = []
            for name, weight in role.adapters.items():  # this version's, not necessarily the current one's
                spec = self.registry.adapter(name)
                config, weights = load_adapter_weights(spec.path, self.max_rank)
                parts.append((spec.name, config, weights, weight))
            return stack(parts)

        if self.support is not AdapterSupport.PATHS:
            return build  # the engine's slots check the summed rank against max_rank

        def build_folder():
            # An engine that reads adapters from folders gets the stack as one, rewritten at each server start.
            from .validation import AdapterError

            config, weights = build()
            if config.r > self.max_rank:
                raise AdapterError(
                    f"role {role.id!r} stacks adapters of rank {config.r} in all, over adapter_cache.max_rank "
                    f"{self.max_rank}"
                )
            return write_stacked(self.registry.home_root / ".stacked" / role.model_id, config, weights)

        return build_folder

    # --- hot load / unload (vLLM's endpoint names) ------------------------------------------------------------

    def load_lora(self, name: str, path: str) -> dict:
        from .cache import SlotWaitError
        from .spec import check_name
        from .validation import AdapterError, base_model_warnings, inspect_adapter

        self._check_runtime_loading()
        check_name("lora_name", name)
        folder = self._allowed_path(path)  # before anything touches the path: existence is not revealed
        if name in self.model_ids():
            raise ValueError(f"the name {name!r} is already a model id; unload it first or choose another")
        if self.cache is None:
            raise ValueError("this engine serves adapters by upstream model name; load them on the upstream")
        info = inspect_adapter(folder)  # a missing or broken folder is a clear error before anything changes
        self._register(name, folder, "gpu", False, warm=False)
        try:
            self.cache.warm(name)  # usable as a model id as soon as this returns
        except BaseException as exc:
            self.cache.unregister(name)
            if isinstance(exc, SlotWaitError):
                raise RoleUnavailableError(f"adapter {name!r} cannot be loaded now: {exc}") from exc
            if isinstance(exc, Exception) and not isinstance(exc, (ValueError, OSError)):
                # whatever the adapter's files provoke is the adapter's fault (400), never a 500
                log.exception("adapter %s could not be loaded", name)
                raise AdapterError(f"adapter {name!r} could not be loaded: {type(exc).__name__}: {exc}") from exc
            raise
        self.runtime_adapters[name] = folder
        warnings = base_model_warnings(info, getattr(self.engine, "model", None))
        for warning in warnings:
            log.warning("adapter %s: %s", name, warning)
        return {"name": name, "path": str(info.path), "rank": info.max_rank, "bytes": info.bytes, "warnings": warnings}

    def _check_runtime_loading(self) -> None:
        if not self.runtime_loading:
            raise RuntimeLoadingRefused(
                "loading adapters at run time is off on this server; its owner can set "
                "adapter_cache.runtime_loading: true in konsilium.yaml (adapters are then read from "
                "<home>/adapters, or the folders in adapter_cache.runtime_folders) and restart it",
                code="runtime_loading_disabled",
            )

    def _allowed_path(self, path: str) -> Path:
        """The adapter folder with symlinks resolved, if it lies in an allowed folder (its two files too);
        else one refusal whatever the path, so a client cannot probe which server paths exist."""
        from .validation import WEIGHTS_FILE

        home = self.registry.home_root if self.registry is not None else None

        def resolved(value: str | Path) -> Path:
            candidate = Path(value).expanduser()
            if not candidate.is_absolute() and home is not None:  # relative: to the home, as in konsilium.yaml
                candidate = home / candidate
            return candidate.resolve()

        folders = [resolved(f) for f in self.runtime_folders] or ([resolved(home / "adapters")] if home else [])
        refused = RuntimeLoadingRefused(
            "lora_path is not inside a folder allowed for runtime adapters (adapter_cache.runtime_folders)",
            code="adapter_path_not_allowed",
        )
        try:
            folder = resolved(path)
            inside = [folder, *((folder / file).resolve() for file in ("adapter_config.json", WEIGHTS_FILE))]
        except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte: refused like any other path
            raise refused from None
        if not all(any(p.is_relative_to(f) for f in folders) for p in inside):
            raise refused
        return folder

    def unload_lora(self, name: str) -> None:
        self._check_runtime_loading()
        if name not in self.runtime_adapters:
            configured = self.registry is not None and name in {a.name for a in self.registry.adapters()}
            hint = " (it is configured in konsilium.yaml / roles.yaml)" if configured else ""
            raise ModelNotFoundError(f"no adapter {name!r} was loaded at run time{hint}")
        del self.runtime_adapters[name]  # no new requests from here on
        self.cache.unregister(name)  # waits for in-flight requests on it

    def _register(self, name: str, path: Path, tier: str, pinned: bool, warm: bool) -> None:
        def checked_folder(path=path):
            from .validation import check_adapter_folder

            # The engine reads the folder itself (vLLM), without our checks: all of them first, weights included.
            check_adapter_folder(path, self.max_rank)
            return Path(path)

        def source(path=path):
            from .validation import load_adapter_weights

            # Shapes and targets are checked against the model where they land (the engine's slots).
            return load_adapter_weights(path, self.max_rank)

        size = sum(f.stat().st_size for f in Path(path).glob("*.safetensors")) if Path(path).is_dir() else 0
        reader = checked_folder if self.support is AdapterSupport.PATHS else source
        self.cache.register(name, reader, preferred=tier, pinned=pinned, size_hint=size, warm=warm)

    def adapters_status(self) -> list[dict]:
        if self.cache is None:
            return []
        status = self.cache.status()
        for item in status:
            item["runtime"] = item["name"] in self.runtime_adapters
        return status
