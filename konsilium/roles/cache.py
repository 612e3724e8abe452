"""The tiered adapter cache: every adapter lives on the compute device ("gpu"), in RAM ("cpu") or only on disk.

Each adapter has a preferred tier where it rests (and is warmed to when registered) or is pinned on the device.
Using an adapter brings it to the device; budgets in bytes per tier (and a count of adapters on the device) are
kept by evicting the least recently used idle adapters one tier down: device → RAM → disk. An adapter in use
is never evicted, so budgets are soft while every resident adapter is busy. The slots are not: when every one
holds an adapter in use, a request for another adapter waits in a fair queue (scheduler.py) until one frees, at
most `queue_timeout_s`. On a CPU-only machine the "gpu" tier is the compute device itself (the weights sit
inside the model's LoRA layers).

The engine is reached through `AdapterHost` (load/unload one named adapter), so the same cache works for
every engine that holds adapters itself. A host with `prepare_adapter` gets each adapter once as it enters RAM
(checked and put in the form its slots take), so every later move to the device is only a copy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from .scheduler import Waiter, plan

TIERS = ("gpu", "cpu", "disk")


class AdapterHost(Protocol):
    def load_adapter(self, name: str, config, weights) -> None: ...

    def unload_adapter(self, name: str) -> None: ...


class UnknownAdapterError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown adapter"


class SlotWaitError(RuntimeError):
    """A request could not get a device slot for its adapter (the server answers 503)."""


class AdapterQueueTimeout(SlotWaitError, TimeoutError):
    def __init__(self, message: str, name: str, waited_s: float, slots: int, holders: dict[str, int]):
        super().__init__(message)
        self.name, self.waited_s, self.slots, self.holders = name, waited_s, slots, holders


class AdapterWaitCancelled(SlotWaitError):
    """The caller gave up (its client went away) while the request waited for a slot; it left the queue."""


class SlotsPinnedError(SlotWaitError):
    """No wait can free a slot: every one holds a pinned adapter (or, outside the queue, one in use)."""


_CANCEL_POLL_S = 0.05  # how soon a waiter notices its cancel event (only waiting requests poll)


def _cancelled(waiter: Waiter) -> AdapterWaitCancelled:
    return AdapterWaitCancelled(
        f"request for adapter {waiter.name!r} was cancelled after {time.monotonic() - waiter.since:.1f} s in the "
        "queue for a device slot"
    )


def tensor_bytes(weights) -> int:
    if hasattr(weights, "nbytes"):  # a host's prepared form
        return weights.nbytes
    return sum(t.numel() * t.element_size() for t in weights.values())


@dataclass
class Registered:
    """What every adapter book keeps of an adapter: where it comes from, where it should rest, who uses it."""

    name: str
    source: Callable[[], object]  # reads the adapter (or builds a stack of others)
    preferred: str
    pinned: bool
    size: int  # bytes of weights (a file-size estimate until first loaded)
    refs: int = 0
    last_used: float = 0.0
    removed: bool = False


class AdapterBook:
    """Registered adapters and their in-flight uses; an unregister waits for them. Subclasses say what using
    (`_ready`), releasing (`_released_one`) and freeing (`_free`) an adapter means for their engine."""

    entry_type: type[Registered] = Registered

    def __init__(self):
        self._entries: dict[str, Registered] = {}
        self._lock = threading.RLock()
        self._released = threading.Condition(self._lock)

    def register(
        self,
        name: str,
        source: Callable[[], object],
        preferred: str = "cpu",
        pinned: bool = False,
        size_hint: int = 0,
        warm: bool = True,
    ) -> None:
        if preferred not in TIERS:
            raise ValueError(f"adapter {name}: tier must be one of {', '.join(TIERS)}, got {preferred!r}")
        with self._lock:
            if name in self._entries and not self._entries[name].removed:
                raise ValueError(f"adapter {name!r} is already registered")
            self._entries[name] = self.entry_type(name, source, "gpu" if pinned else preferred, pinned, size_hint)
        if warm:
            self.warm(name)

    def unregister(self, name: str, wait_s: float = 300.0) -> None:
        """Stop new uses at once; free the adapter when its in-flight requests have finished."""
        with self._lock:
            entry = self._get(name)
            entry.removed = True
            self._removed()
            deadline = time.monotonic() + wait_s
            while entry.refs > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"adapter {name!r} is still in use after {wait_s:.0f} s")
                self._released.wait(left)
            self._free(entry)
            del self._entries[name]

    def set_pinned(self, name: str, pinned: bool) -> None:
        """Pin an adapter on the device (it is brought there now and never evicted) or let it go again."""
        with self._lock:
            entry = self._get(name)
            entry.pinned = pinned
            if pinned:
                entry.preferred = "gpu"
        if pinned:
            self.warm(name)

    def names(self) -> list[str]:
        with self._lock:
            return [name for name, entry in self._entries.items() if not entry.removed]

    def __contains__(self, name: str) -> bool:
        with self._lock:
            return name in self._entries and not self._entries[name].removed

    @contextmanager
    def use(self, name: str, cancel: threading.Event | None = None, timeout_s: float | None = None) -> Iterator[None]:
        """The adapter stays usable for the duration (an in-flight request keeps it)."""
        self.acquire(name, cancel=cancel, timeout_s=timeout_s)
        try:
            yield
        finally:
            self.release(name)

    def acquire(self, name: str, cancel: threading.Event | None = None, timeout_s: float | None = None) -> None:
        """Hold the adapter for one request. A book that queues for device slots waits here (at most `timeout_s`,
        giving up when `cancel` is set); one that does not ignores both."""
        entry = self._admit(name, cancel, timeout_s)
        try:
            self._ready(entry)
        except BaseException:
            self.release(name)
            raise

    def release(self, name: str) -> None:
        with self._lock:
            entry = self._entries.get(name)
            if entry is None:
                return
            entry.refs = max(0, entry.refs - 1)
            entry.last_used = time.monotonic()
            self._released.notify_all()
            self._released_one()

    def status(self) -> list[dict]:
        """Every registered adapter: where it is (`_describe`), where it rests, its size and its current uses."""
        now = self._where_now()
        with self._lock:
            return [
                {
                    "name": e.name,
                    "preferred_tier": e.preferred,
                    "pinned": e.pinned,
                    "bytes": e.size,
                    "in_use": e.refs,
                    "idle_s": round(time.monotonic() - e.last_used, 3) if e.last_used else None,
                    **self._describe(e, now),
                }
                for e in self._entries.values()
                if not e.removed
            ]

    def warm(self, name: str) -> None:
        raise NotImplementedError

    def _where_now(self) -> object:
        """Asked once per `status` (outside the lock): what the engine says it holds, if it keeps that itself."""
        return None

    def _describe(self, entry, where_now) -> dict:
        """Where an adapter is now, in this book's terms."""
        return {}

    def _admit(self, name: str, cancel: threading.Event | None, timeout_s: float | None):
        """Count one more use of the adapter (at once: the engine schedules its own slots) and return its entry."""
        with self._lock:
            entry = self._get(name)
            entry.refs += 1
            entry.last_used = time.monotonic()
        return entry

    def _ready(self, entry) -> None:
        """Make a just-acquired adapter usable (called without the lock)."""

    def _removed(self) -> None:
        """An adapter was just marked removed (with the lock held)."""

    def _released_one(self) -> None:
        """After a release, with the lock held."""

    def _free(self, entry) -> None:
        """An unregistered adapter leaves the engine (with the lock held)."""

    def _get(self, name: str):
        entry = self._entries.get(name)
        if entry is None or entry.removed:
            raise UnknownAdapterError(f"unknown adapter {name!r}; registered: {', '.join(self.names()) or 'none'}")
        return entry


@dataclass
class _Entry(Registered):
    tier: str = "disk"
    config: object | None = None
    weights: dict | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)  # one load of this adapter at a time
    timings: dict = field(default_factory=dict)
    loading: bool = False  # holds a slot it is being copied into
    resident_since: float = 0.0  # when it took its slot: the oldest turn drains first

    @property
    def on_device(self) -> bool:
        return self.tier == "gpu" or self.loading


class AdapterCache(AdapterBook):
    entry_type = _Entry

    def __init__(
        self,
        host: AdapterHost,
        gpu_bytes: int,
        cpu_bytes: int,
        max_loaded: int = 8,
        queue_timeout_s: float = 30.0,
        slots: int | None = None,
    ):
        """`max_loaded` and the byte budgets say how much may stay on the device while idle; `slots` is how many
        adapters the host can hold at once (default max_loaded: the runtime sizes the engine's slots so)."""
        super().__init__()
        if queue_timeout_s < 0:
            raise ValueError(f"queue_timeout_s must be 0 or more, got {queue_timeout_s}")
        self.host = host
        self.budget = {"gpu": gpu_bytes, "cpu": cpu_bytes}
        self.max_loaded = max_loaded
        self.slots = slots or max_loaded
        self.queue_timeout_s = queue_timeout_s
        self._waiting: list[Waiter] = []  # arrival order
        self._draining: set[str] = set()

    # --- use: the adapter is on the device while a request holds it ---------------------------------------------

    def _admit(self, name: str, cancel: threading.Event | None, timeout_s: float | None) -> _Entry:
        """Wait in the fair queue until the adapter has a slot this request may use (see scheduler.py)."""
        limit = self.queue_timeout_s if timeout_s is None else timeout_s
        with self._lock:
            entry = self._get(name)
            waiter = Waiter(name, time.monotonic(), cancel=cancel)
            self._waiting.append(waiter)
            self._schedule()
            while not waiter.admitted and waiter.error is None:
                waited = time.monotonic() - waiter.since
                if cancel is not None and cancel.is_set():
                    self._leave(waiter)
                    raise _cancelled(waiter)
                if waited >= limit:
                    error = self._timeout(name, waited)  # before leaving: the queue as this request saw it
                    self._leave(waiter)
                    raise error
                left = limit - waited
                self._released.wait(min(left, _CANCEL_POLL_S) if cancel is not None else left)
            if waiter.error is not None:
                raise waiter.error
        return entry

    def _leave(self, waiter: Waiter) -> None:
        self._waiting.remove(waiter)
        self._schedule()  # fewer waiting: an adapter may stop draining

    def _timeout(self, name: str, waited: float) -> AdapterQueueTimeout:
        holders = {e.name: e.refs for e in self._entries.values() if e.on_device}
        held = ", ".join(
            f"{n} ({refs} in use{', pinned' if self._entries[n].pinned else ''}"
            f"{', draining' if n in self._draining else ''})"
            for n, refs in sorted(holders.items())
        )
        return AdapterQueueTimeout(
            f"adapter {name!r} waited {waited:.1f} s (adapter_cache.queue_timeout_s) for one of {self.slots} device "
            f"slots; they hold: {held or 'nothing'}; {len(self._waiting) - 1} other request(s) queued",
            name,
            waited,
            self.slots,
            holders,
        )

    def _schedule(self) -> None:
        """With the lock held: let in whoever may go now, evicting idle adapters for slots (scheduler.plan). A
        waiter whose request was cancelled leaves first, even before its own thread has seen it: no slot is given
        to a request that is gone, and the ones behind it move up."""
        changed = False
        for waiter in list(self._waiting):
            entry = self._entries.get(waiter.name)
            if entry is None or entry.removed:
                waiter.error = UnknownAdapterError(f"adapter {waiter.name!r} was removed while this request waited")
            elif waiter.cancel is not None and waiter.cancel.is_set():
                waiter.error = _cancelled(waiter)
            else:
                continue
            self._waiting.remove(waiter)
            changed = True
        decision = plan(self._waiting, self._entries, self.slots)
        now = time.monotonic()
        for name, victim in decision.claims:
            if victim is not None:
                self._drop_to(self._entries[victim], "cpu")
            entry = self._entries[name]
            entry.loading, entry.resident_since = True, now
        for waiter in decision.admit:
            entry = self._entries[waiter.name]
            entry.refs += 1
            entry.last_used = now
            waiter.admitted = True
            self._waiting.remove(waiter)
        for waiter, why in decision.refuse:
            waiter.error = SlotsPinnedError(f"adapter {waiter.name!r} cannot get a device slot: {why}")
            self._waiting.remove(waiter)
        self._draining = decision.draining
        if changed or decision.admit or decision.refuse:
            self._released.notify_all()

    def _ready(self, entry: _Entry) -> None:
        self._to_device(entry)

    def _released_one(self) -> None:
        self._fit_budgets()
        self._schedule()

    def _removed(self) -> None:
        self._schedule()  # its waiters learn at once

    def _free(self, entry: _Entry) -> None:
        self._drop_to(entry, "disk")
        self._schedule()  # a slot may have freed

    def warm(self, name: str) -> None:
        """Bring an adapter to its preferred tier (pinned: the device) ahead of use. An unpinned adapter that
        prefers the device rests in RAM while every slot is busy or requests wait for one."""
        with self._lock:
            entry = self._get(name)
        if entry.preferred == "gpu":
            self._to_device(entry, queued_first=not entry.pinned)
            if entry.tier != "gpu":
                self._to_memory(entry)
                with self._lock:
                    self._fit_budgets()
        elif entry.preferred == "cpu":
            self._to_memory(entry)
            with self._lock:
                self._fit_budgets()

    def prefetch(self, name: str) -> threading.Thread | None:
        """Read an adapter that is only on disk into RAM in the background (a role was asked for: its weights
        should be near by the time it runs). None when there is nothing to read."""
        with self._lock:
            entry = self._entries.get(name)
            if entry is None or entry.removed or entry.weights is not None or entry.tier == "gpu":
                return None
        thread = threading.Thread(target=self._quiet_to_memory, args=(name,), daemon=True, name=f"prefetch-{name}")
        thread.start()
        return thread

    def _quiet_to_memory(self, name: str) -> None:
        try:
            with self._lock:
                entry = self._get(name)
            self._to_memory(entry)
            with self._lock:
                self._fit_budgets()
        except Exception:  # a prefetch is a hint; the real use reports the error
            pass

    # --- status ------------------------------------------------------------------------------------------------

    def _describe(self, entry: _Entry, where_now) -> dict:
        return {
            "tier": entry.tier,
            "timings_ms": dict(entry.timings),
            "queued": sum(w.name == entry.name for w in self._waiting),
            "draining": entry.name in self._draining,
        }

    def usage(self) -> dict[str, int]:
        with self._lock:
            return {
                tier: sum(e.size for e in self._entries.values() if self._holds(e, tier)) for tier in ("gpu", "cpu")
            }

    # --- moving between tiers --------------------------------------------------------------------------------

    @staticmethod
    def _holds(entry: _Entry, tier: str) -> bool:
        if tier == "gpu":
            return entry.tier == "gpu"
        return entry.weights is not None  # a RAM copy, also kept while on the device if the budget allows

    def _to_memory(self, entry: _Entry) -> None:
        with entry.lock:
            if entry.weights is not None or entry.tier == "gpu":
                return
            started = time.perf_counter()
            config, weights = self._read(entry)
            entry.timings["disk_to_cpu"] = round((time.perf_counter() - started) * 1000, 3)
            with self._lock:
                entry.config, entry.weights, entry.size = config, weights, tensor_bytes(weights)
                entry.tier = "cpu"

    def _to_device(self, entry: _Entry, queued_first: bool = False) -> None:
        """Copy the adapter into its slot: the one the queue claimed for it, else (a warm, or a retry after a
        failed load) a free or idle one now. No slot to be had: a pinned or in-use adapter raises, others stay."""
        with entry.lock:
            with self._lock:
                if entry.tier == "gpu":
                    return
                if not entry.loading and not self._claim_now(entry, queued_first):
                    if entry.pinned or entry.refs:
                        raise SlotsPinnedError(
                            f"adapter {entry.name!r} cannot get a device slot now: all {self.slots} hold adapters "
                            "in use or pinned"
                        )
                    return
            try:
                from_disk = entry.weights is None
                started = time.perf_counter()
                if from_disk:
                    config, weights = self._read(entry)
                    with self._lock:
                        entry.config, entry.weights, entry.size = config, weights, tensor_bytes(weights)
                with self._lock:
                    self._make_room_on_device(entry)
                self.host.load_adapter(entry.name, entry.config, entry.weights)
            except BaseException:
                with self._lock:
                    entry.loading = False
                    self._schedule()  # its slot goes to the next in line
                raise
            elapsed = round((time.perf_counter() - started) * 1000, 3)
            entry.timings["disk_to_gpu" if from_disk else "cpu_to_gpu"] = elapsed
            with self._lock:
                entry.tier, entry.loading = "gpu", False
                self._fit_budgets()
                self._schedule()

    def _claim_now(self, entry: _Entry, queued_first: bool) -> bool:
        """With the lock held: a slot outside the queue (free, or an idle adapter's). `queued_first`: none while
        requests wait for one."""
        if queued_first and self._waiting:
            return False
        on_device = [e for e in self._entries.values() if e.on_device]
        if len(on_device) >= self.slots:
            idle = sorted(self._evictable(on_device), key=lambda e: e.last_used)
            if not idle:
                return False
            self._drop_to(idle[0], "cpu")
        entry.loading, entry.resident_since = True, time.monotonic()
        return True

    def _read(self, entry: _Entry) -> tuple[object, object]:
        config, weights = entry.source()
        prepare = getattr(self.host, "prepare_adapter", None)
        return config, (prepare(entry.name, config, weights) if prepare else weights)

    def _make_room_on_device(self, incoming: _Entry) -> None:
        resident = [e for e in self._entries.values() if e.tier == "gpu" and e is not incoming]
        used = sum(e.size for e in resident)
        for victim in sorted(self._evictable(resident), key=lambda e: e.last_used):
            if used + incoming.size <= self.budget["gpu"] and len(resident) < self.max_loaded:
                break
            self._drop_to(victim, "cpu")
            resident.remove(victim)
            used -= victim.size

    def _fit_budgets(self) -> None:
        """Called with the lock held: push idle adapters down until each tier is within its budget."""
        resident = [e for e in self._entries.values() if e.tier == "gpu"]
        used = sum(e.size for e in resident)
        for victim in sorted(self._evictable(resident), key=lambda e: e.last_used):
            if used <= self.budget["gpu"] and len(resident) <= self.max_loaded:
                break
            self._drop_to(victim, "cpu")
            resident.remove(victim)
            used -= victim.size
        in_memory = [e for e in self._entries.values() if e.weights is not None]
        used = sum(e.size for e in in_memory)
        idle = (e for e in in_memory if e.refs == 0 and not e.pinned and not e.loading)  # a load reads its RAM copy
        for victim in sorted(idle, key=lambda e: e.last_used):
            if used <= self.budget["cpu"]:
                break
            if victim.tier == "gpu":  # its RAM copy goes; the device copy stays until evicted itself
                victim.weights = None
            else:
                self._drop_to(victim, "disk")
            used -= victim.size

    @staticmethod
    def _evictable(entries: list[_Entry]) -> list[_Entry]:
        return [e for e in entries if e.refs == 0 and not e.pinned and not e.loading]

    def _drop_to(self, entry: _Entry, tier: str) -> None:
        if entry.tier == "gpu":
            self.host.unload_adapter(entry.name)
            entry.tier = "cpu" if entry.weights is not None else "disk"
        if tier == "cpu" and entry.tier == "disk":
            return  # its RAM copy was already given up; it reloads from disk when needed
        if tier == "disk":
            entry.weights, entry.tier = None, "disk"
