"""The slot queue's rules on their own (scheduler.plan is pure): arrival order, turns, what drains."""

from __future__ import annotations

from dataclasses import dataclass

from konsilium.roles.scheduler import Waiter, plan


@dataclass
class Adapter:
    name: str
    on_device: bool = False
    refs: int = 0
    pinned: bool = False
    loading: bool = False
    last_used: float = 0.0
    resident_since: float = 0.0


def adapters(*items: Adapter) -> dict[str, Adapter]:
    return {a.name: a for a in items}


def waiting(*names: str) -> list[Waiter]:
    return [Waiter(name, since=float(i)) for i, name in enumerate(names)]


def test_slots_go_to_waiters_in_arrival_order_free_ones_first_then_idle_least_recently_used():
    state = adapters(
        Adapter("a", on_device=True, last_used=5.0),
        Adapter("b", on_device=True, last_used=1.0),
        Adapter("c"),
        Adapter("d"),
        Adapter("e"),
    )
    decision = plan(waiting("c", "d", "e"), state, slots=3)
    assert decision.claims == [("c", None), ("d", "b"), ("e", "a")]
    assert [w.name for w in decision.admit] == ["c", "d", "e"] and decision.draining == set()


def test_an_idle_adapter_someone_waits_for_is_evicted_last():
    state = adapters(
        Adapter("a", on_device=True, last_used=1.0, refs=0),  # the least recently used
        Adapter("b", on_device=True, last_used=2.0, refs=0),
        Adapter("c"),
    )
    decision = plan([Waiter("c", 0.0), Waiter("a", 1.0)], state, slots=2)
    assert decision.claims == [("c", "b")]  # a has a request waiting: b goes although used later
    assert [w.name for w in decision.admit] == ["c", "a"]


def test_busy_slots_make_as_many_adapters_drain_as_distinct_adapters_wait_oldest_turn_first():
    state = adapters(
        Adapter("a", on_device=True, refs=2, resident_since=3.0),
        Adapter("b", on_device=True, refs=1, resident_since=1.0),
        Adapter("p", on_device=True, refs=1, pinned=True, resident_since=0.0),
        Adapter("c"),
        Adapter("d"),
    )
    one = plan(waiting("c", "c", "a", "b"), state, slots=3)
    assert one.claims == [] and one.draining == {"b"}  # two waiters, one adapter: one slot is needed
    assert [w.name for w in one.admit] == ["a"]  # a still admits; b (draining) does not
    two = plan(waiting("c", "d"), state, slots=3)
    assert two.draining == {"a", "b"}  # pins never drain
    assert two.admit == []


def test_no_slot_can_ever_free_when_all_hold_pinned_adapters():
    state = adapters(Adapter("p", on_device=True, pinned=True), Adapter("q", on_device=True, pinned=True))
    state["c"] = Adapter("c")
    decision = plan(waiting("c", "p"), state, slots=2)
    assert [(w.name, why) for w, why in decision.refuse] == [
        ("c", "all 2 device slots hold pinned adapters (p, q); unpin one or raise adapter_cache.max_loaded")
    ]
    assert [w.name for w in decision.admit] == ["p"]


def test_a_slot_being_loaded_counts_as_taken_and_its_later_waiters_ride_along():
    state = adapters(Adapter("a", on_device=True, loading=True, refs=1, resident_since=1.0), Adapter("b"))
    decision = plan(waiting("a", "b"), state, slots=1)
    assert decision.claims == [] and [w.name for w in decision.admit] == []
    assert decision.draining == {"a"}  # b waits: a finishes its turn, then yields
    assert [w.name for w in plan(waiting("a"), state, slots=1).admit] == ["a"]
