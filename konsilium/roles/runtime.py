"""Roles at serving time: which model ids exist, what a request's `model` resolves to, and the adapters behind.

`RoleService` ties the registry (what is defined), the tiered cache (where adapters are) and the router
(`model: "auto"`) to one engine. Engines that hold adapters themselves (transformers: `load_adapter` /
`unload_adapter`) get the tiered cache; vLLM keeps its own tiers and takes adapters by folder (`with_lora`):
it gets a `PathAdapterPool` (stacked roles written once as a folder); an OpenAI upstream maps each adapter
name to an upstream model name (vLLM's `--lora-modules` names), so stacked roles need an engine of our own.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import RoleUnavailableError
from .cache import AdapterCache, UnknownAdapterError
from .path_adapters import PathAdapterPool, write_stacked
from .routing import Route, Router
from .spec import ROUTING_ID, RoleSpec

log = logging.getLogger("konsilium.roles")


class UnknownModelError(LookupError):
    pass


@dataclass
class Resolution:
    model: str  # the id the client asked for
    role: RoleSpec | None  # None: the base model
    adapter: str | None  # the engine-side adapter name (stacked roles get one of their own)
    route: Route | None = None  # set when `auto` chose
    engine: object | None = None  # the engine to run this request on (an upstream bound to a model name)

    @property
    def role_id(self) -> str | None:
        return self.role.id if self.role else None


class RoleService:
    def __init__(
        self, engine, registry=None, base_model_id: str = "konsilium", cache_settings: dict | None = None, embed=None
    ):
        self.engine, self.registry, self.base_model_id = engine, registry, base_model_id
        self.embed = embed  # callable(list[str]) -> vectors, for routing; loaded lazily by the caller
        settings = {"gpu_bytes": 2_000_000_000, "cpu_bytes": 8_000_000_000, "max_rank": 64, "max_loaded": 8}
        settings.update(cache_settings or {})
        self.max_rank = settings["max_rank"]
        self.holds_adapters = hasattr(engine, "load_adapter")
        self.loads_by_path = not self.holds_adapters and hasattr(engine, "with_lora")
        if hasattr(engine, "configure_adapters"):  # slots sized to the cache: one per adapter on the device
            engine.configure_adapters(
                slots=settings["max_loaded"], max_rank=settings["max_rank"], max_bytes=settings["gpu_bytes"]
            )
        self.cache: AdapterCache | PathAdapterPool | None = None
        if self.holds_adapters:
            self.cache = AdapterCache(engine, settings["gpu_bytes"], settings["cpu_bytes"], settings["max_loaded"])
        elif self.loads_by_path:
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
        ids = [self.base_model_id, *(role.id for role in self.roles())]
        if self.roles():
            ids.append(ROUTING_ID)
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

    # --- resolving a request -----------------------------------------------------------------------------------

    def resolve(self, model: str, query: str = "") -> Resolution:
        if model == self.base_model_id:
            return Resolution(model, None, None, engine=self.engine)
        if model == ROUTING_ID and self.roles():
            route = self.router().route(query)
            resolution = self.resolve(route.role or self.base_model_id)
            resolution.model, resolution.route = model, route
            return resolution
        if self.registry is not None and model in self.registry:
            role = self.registry.role(model)
            adapter = self._adapter_for(role)
            if adapter is not None and self.holds_adapters:
                self.cache.prefetch(adapter)  # read from disk while the request's notes are being retrieved
            return Resolution(model, role, adapter, engine=self._engine_for(role))
        if model in self.runtime_adapters:
            return Resolution(model, None, model, engine=self._bound_engine(model))
        raise UnknownModelError(f"The model '{model}' does not exist.")

    def router(self) -> Router:
        with self._lock:
            if self._router is None:
                if self.embed is None:
                    raise RoleUnavailableError("routing needs an embedder (index a collection first)")
                self._router = Router(self.roles(), self.embed)
            return self._router

    @contextmanager
    def using(self, resolution: Resolution) -> Iterator[None]:
        """Keep the request's adapter on the device until the answer is complete (in-flight protection)."""
        if resolution.adapter is None or self.cache is None:
            yield
            return
        try:
            self.cache.acquire(resolution.adapter)
        except UnknownAdapterError:
            raise UnknownModelError(f"The model '{resolution.model}' does not exist.") from None
        except Exception as exc:
            raise RoleUnavailableError(f"role {resolution.model!r} is unavailable: {exc}") from exc
        try:
            yield
        finally:
            self.cache.release(resolution.adapter)

    def _adapter_for(self, role: RoleSpec) -> str | None:
        if not role.adapters:
            return None
        if len(role.adapters) == 1 and next(iter(role.adapters.values())) == 1.0:
            return next(iter(role.adapters))
        if self.cache is None:
            return None  # an upstream cannot stack; _engine_for reports it
        name = f"role:{role.id}"
        with self._lock:
            if name not in self.cache:
                self.cache.register(name, self._stack_source(role), preferred="cpu", warm=False)
        return name

    def _stack_source(self, role: RoleSpec):
        def build():
            from ..roles.validation import load_adapter_weights
            from .stacking import stack

            parts = []
            for spec, weight in self.registry.adapters_of(role.id):
                config, weights = load_adapter_weights(spec.path, self.max_rank)
                parts.append((spec.name, config, weights, weight))
            return stack(parts)

        if not self.loads_by_path:
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
            return write_stacked(self.registry.home_root / ".stacked" / role.id, config, weights)

        return build_folder

    def _engine_for(self, role: RoleSpec):
        if self.holds_adapters or not role.adapters:
            return self.engine
        if self.loads_by_path:
            return self._bound_engine(self._adapter_for(role))
        if len(role.adapters) > 1:
            raise RoleUnavailableError(
                f"role {role.id!r} stacks {len(role.adapters)} adapters; an upstream serves one model per request"
            )
        return self._bound_engine(next(iter(role.adapters)))

    def _bound_engine(self, adapter: str):
        if self.loads_by_path:
            try:
                return self.engine.with_lora(adapter, self.cache.path(adapter))
            except UnknownAdapterError:
                raise UnknownModelError(f"The model '{adapter}' does not exist.") from None
            except Exception as exc:  # a stack that cannot be built
                raise RoleUnavailableError(f"adapter {adapter!r} is unavailable: {exc}") from exc
        with_model = getattr(self.engine, "with_model", None)
        return with_model(adapter) if with_model else self.engine

    # --- hot load / unload (vLLM's endpoint names) ------------------------------------------------------------

    def load_lora(self, name: str, path: str) -> dict:
        from .spec import check_name
        from .validation import base_model_warnings, inspect_adapter

        check_name("lora_name", name)
        if name in self.model_ids():
            raise ValueError(f"the name {name!r} is already a model id; unload it first or choose another")
        if self.cache is None:
            raise ValueError("this engine serves adapters by upstream model name; load them on the upstream")
        info = inspect_adapter(path)  # a missing or broken folder is a clear error before anything changes
        self._register(name, Path(path), "gpu", False, warm=False)
        try:
            self.cache.warm(name)  # usable as a model id as soon as this returns
        except Exception:
            self.cache.unregister(name)
            raise
        self.runtime_adapters[name] = Path(path)
        warnings = base_model_warnings(info, getattr(self.engine, "model", None))
        for warning in warnings:
            log.warning("adapter %s: %s", name, warning)
        return {"name": name, "path": str(info.path), "rank": info.max_rank, "bytes": info.bytes, "warnings": warnings}

    def unload_lora(self, name: str) -> None:
        if name not in self.runtime_adapters:
            configured = self.registry is not None and name in {a.name for a in self.registry.adapters()}
            hint = " (it is configured in konsilium.yaml / roles.yaml)" if configured else ""
            raise UnknownModelError(f"no adapter {name!r} was loaded at run time{hint}")
        del self.runtime_adapters[name]  # no new requests from here on
        self.cache.unregister(name)  # waits for in-flight requests on it

    def _register(self, name: str, path: Path, tier: str, pinned: bool, warm: bool) -> None:
        def checked_folder(path=path):
            from .validation import AdapterError, check_info, inspect_adapter, problem_line

            info = inspect_adapter(path)  # header and config only: the engine reads the weights itself
            problems = check_info(info, self.max_rank)
            if problems:
                raise AdapterError(problem_line(info, problems))
            return Path(path)

        def source(path=path):
            from .validation import load_adapter_weights

            # Shapes and targets are checked against the model where they land (the engine's slots).
            return load_adapter_weights(path, self.max_rank)

        size = sum(f.stat().st_size for f in Path(path).glob("*.safetensors")) if Path(path).is_dir() else 0
        reader = checked_folder if self.loads_by_path else source
        self.cache.register(name, reader, preferred=tier, pinned=pinned, size_hint=size, warm=warm)

    def adapters_status(self) -> list[dict]:
        if self.cache is None:
            return []
        status = self.cache.status()
        for item in status:
            item["runtime"] = item["name"] in self.runtime_adapters
        return status
