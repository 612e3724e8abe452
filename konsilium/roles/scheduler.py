"""Who gets a device slot next: the fair queue in front of the adapter cache's slots.

The device holds at most `slots` adapters, and a request keeps its adapter there until its answer is complete.
When every slot holds an adapter in use, requests for other adapters wait here instead of failing. The rules
(after LoRAX's adapter scheduler, which serves pending adapters in arrival order and takes active adapters out
in turn once others are pending):

1. A request for an adapter on the device proceeds at once, unless that adapter is draining.
2. A request whose adapter is not on the device takes a free slot, else the slot of an idle unpinned adapter
   (least recently used first), in arrival order: no later request gets a slot before an earlier one.
3. While adapters wait for a slot, as many resident adapters drain as there are distinct adapters waiting: they
   admit no new request (those queue too), so their answers finish and the slot frees. The adapters that have
   held their slot longest drain first, so every adapter gets its turn and a steady stream of overlapping
   requests cannot keep one resident forever.

`plan` is pure: the cache calls it with its lock held whenever something changed (an arrival, a release, a
cancelled or timed-out waiter, an unregister) and carries out what it returns.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(eq=False)
class Waiter:
    """One request waiting for its adapter."""

    name: str
    since: float  # time.monotonic() at arrival
    admitted: bool = False
    error: BaseException | None = None
    cancel: threading.Event | None = None  # set: the request gave up; it leaves the queue and gets no slot


class SlotView(Protocol):
    """What the plan needs to know of an adapter."""

    name: str
    refs: int  # requests using it now
    pinned: bool
    last_used: float
    resident_since: float  # when it took its slot (its turn started)

    @property
    def on_device(self) -> bool: ...  # in a slot, or being loaded into one

    @property
    def loading(self) -> bool: ...


@dataclass
class Plan:
    admit: list[Waiter] = field(default_factory=list)
    claims: list[tuple[str, str | None]] = field(default_factory=list)  # (adapter, victim to evict or None)
    draining: set[str] = field(default_factory=set)
    refuse: list[tuple[Waiter, str]] = field(default_factory=list)  # can never get a slot: why


def plan(waiting: Sequence[Waiter], adapters: Mapping[str, SlotView], slots: int) -> Plan:
    result = Plan()
    on_device = {name for name, a in adapters.items() if a.on_device}
    pinned = sorted(name for name in on_device if adapters[name].pinned)
    free = slots - len(on_device)
    queued_for = {w.name for w in waiting}
    # Idle adapters nobody is waiting for go first, then the least recently used.
    idle = sorted(
        (a for a in adapters.values() if a.on_device and a.refs == 0 and not a.pinned and not a.loading),
        key=lambda a: (a.name in queued_for, a.last_used),
    )
    blocked: list[str] = []  # adapters waiting for a slot, in the order of their first waiter
    for waiter in waiting:  # rule 2, in arrival order
        name = waiter.name
        if name in on_device or name in blocked or name not in adapters:
            continue
        if free > 0:
            free -= 1
            result.claims.append((name, None))
        elif idle:
            victim = idle.pop(0).name
            on_device.discard(victim)
            result.claims.append((name, victim))
        elif len(pinned) >= slots:
            result.refuse.append(
                (
                    waiter,
                    f"all {slots} device slots hold pinned adapters ({', '.join(pinned)}); unpin one or raise "
                    "adapter_cache.max_loaded",
                )
            )
            continue
        else:
            blocked.append(name)
            continue
        on_device.add(name)
    claimed = {name for name, _ in result.claims}
    turns = sorted(
        (adapters[name] for name in on_device if name not in claimed and not adapters[name].pinned),
        key=lambda a: a.resident_since,
    )
    result.draining = {a.name for a in turns[: len(blocked)]}  # rule 3
    refused = {id(w) for w, _ in result.refuse}
    result.admit = [  # rule 1 (and the waiters whose adapter just got a slot)
        w for w in waiting if w.name in on_device and w.name not in result.draining and id(w) not in refused
    ]
    return result
