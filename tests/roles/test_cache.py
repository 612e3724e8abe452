"""The tiered adapter cache over real slots in the real model: LRU down the tiers, pins, in-flight safety."""

from __future__ import annotations

import copy
import re
import threading
import time

import pytest
from adapters import make_adapter

from konsilium.engines.lora_slots import LoraSlots
from konsilium.roles.cache import (
    AdapterCache,
    AdapterQueueTimeout,
    AdapterWaitCancelled,
    SlotsPinnedError,
    UnknownAdapterError,
)
from konsilium.roles.validation import load_adapter_weights


@pytest.fixture(scope="module")
def folders(base_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("cache")
    return {name: make_adapter(base_model, root / name, rank=4, seed=i) for i, name in enumerate("abcp")}


@pytest.fixture(scope="module")
def host(base_model):
    return LoraSlots(copy.deepcopy(base_model), slots=4, max_rank=8)


def fresh(host, folders, gpu=10**9, cpu=10**9, max_loaded=2, pinned=("p",), preferred="cpu"):
    for name in list(host.slot_of):
        host.unload(name)
    cache = AdapterCache(host, gpu_bytes=gpu, cpu_bytes=cpu, max_loaded=max_loaded, slots=host.slots)
    for name, folder in folders.items():
        cache.register(name, lambda f=folder: load_adapter_weights(f), preferred=preferred, pinned=name in pinned)
    return cache


def tiers(cache) -> dict[str, str]:
    return {item["name"]: item["tier"] for item in cache.status()}


def test_adapters_rest_in_their_tier_and_pins_sit_on_the_device(host, folders):
    cache = fresh(host, folders)
    assert tiers(cache) == {"a": "cpu", "b": "cpu", "c": "cpu", "p": "gpu"}
    assert set(host.slot_of) == {"p"}


def test_least_recently_used_adapters_move_down_a_tier_and_pins_stay(host, folders):
    cache = fresh(host, folders, max_loaded=2)
    with cache.use("a"):
        assert tiers(cache)["a"] == "gpu"
    with cache.use("b"):  # the device holds two: p (pinned) and one more, so a goes back to RAM
        pass
    assert tiers(cache) == {"a": "cpu", "b": "gpu", "c": "cpu", "p": "gpu"}
    with cache.use("c"), cache.use("a"):  # both in use at once: the budget bends, nothing in use is evicted
        assert tiers(cache)["c"] == tiers(cache)["a"] == "gpu"
    assert sum(t == "gpu" for t in tiers(cache).values()) == 2 and tiers(cache)["p"] == "gpu"
    assert set(host.slot_of) == {n for n, t in tiers(cache).items() if t == "gpu"}


def test_a_small_ram_budget_leaves_the_rest_on_disk_and_they_still_load(host, folders):
    one = load_adapter_weights(folders["a"])[1]
    size = sum(t.numel() * t.element_size() for t in one.values())
    cache = fresh(host, folders, cpu=int(size * 1.5), pinned=())
    assert sorted(tiers(cache).values()).count("cpu") == 1
    with cache.use("a"), cache.use("b"):
        assert tiers(cache)["a"] == tiers(cache)["b"] == "gpu"
    timings = {item["name"]: item["timings_ms"] for item in cache.status()}
    assert any("disk_to_gpu" in t for t in timings.values())


def test_unregister_waits_for_the_request_in_flight(host, folders):
    cache = fresh(host, folders)
    cache.acquire("a")
    done = threading.Event()
    thread = threading.Thread(target=lambda: (cache.unregister("a"), done.set()))
    thread.start()
    time.sleep(0.3)
    assert not done.is_set() and "a" in host.slot_of  # still answering with it
    with pytest.raises(UnknownAdapterError):
        cache.acquire("a")  # but no new request may start on it
    cache.release("a")
    thread.join(timeout=10)
    assert done.is_set() and "a" not in host.slot_of and "a" not in cache.names()


def test_prefetch_reads_a_disk_adapter_into_ram_so_its_use_is_only_a_copy(host, folders):
    cache = fresh(host, folders, preferred="disk", pinned=())
    assert tiers(cache)["a"] == "disk"
    cache.prefetch("a").join(timeout=60)
    assert tiers(cache)["a"] == "cpu"
    with cache.use("a"):
        pass
    timings = next(item for item in cache.status() if item["name"] == "a")["timings_ms"]
    assert "cpu_to_gpu" in timings and "disk_to_gpu" not in timings
    with cache.use("a"):
        assert cache.prefetch("a") is None  # on the device already: nothing to read


# --- more roles than slots: the fair queue ------------------------------------------------------------------------


class EngineSlots(LoraSlots):
    """LoraSlots as the transformers engine drives them: one load or unload at a time (its model lock)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.model_lock = threading.Lock()

    def load_adapter(self, name, config, weights):
        with self.model_lock:
            super().load_adapter(name, config, weights)

    def unload_adapter(self, name):
        with self.model_lock:
            super().unload_adapter(name)


@pytest.fixture(scope="module")
def two_slots(base_model):
    """A model with room for exactly two adapters: one more load than that would fail in the slots themselves."""
    return EngineSlots(copy.deepcopy(base_model), slots=2, max_rank=8)


def queued(host, folders, queue_timeout_s=30.0) -> AdapterCache:
    for name in list(host.slot_of):
        host.unload(name)
    cache = AdapterCache(host, gpu_bytes=10**9, cpu_bytes=10**9, max_loaded=2, queue_timeout_s=queue_timeout_s)
    for name, folder in folders.items():
        cache.register(name, lambda f=folder: load_adapter_weights(f), preferred="cpu")
    return cache


def row(cache, name: str) -> dict:
    return next(item for item in cache.status() if item["name"] == name)


def until(condition, timeout: float = 30.0) -> None:
    """Wait for a state another thread reaches (waiters block inside acquire: nothing else to wait on)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the expected state was never reached"
        time.sleep(0.005)


def hold_both(cache) -> tuple[Holder, Holder]:
    """Both slots busy, a first: a has held its slot longer (it drains first)."""
    a = Holder(cache, "a")
    assert a.holding.wait(30) and a.error is None
    b = Holder(cache, "b")
    assert b.holding.wait(30) and b.error is None
    return a, b


class Holder(threading.Thread):
    """One request: acquires its adapter, reports that it holds it, keeps it until told to finish."""

    def __init__(self, cache, name, cancel=None, timeout_s=None, hold=True):
        super().__init__(daemon=True)
        self.cache, self.adapter, self.cancel, self.timeout_s = cache, name, cancel, timeout_s
        self.holding, self.finish = threading.Event(), threading.Event()
        self.error: BaseException | None = None
        self.slot_seen = False
        if not hold:
            self.finish.set()
        self.start()

    def run(self):
        try:
            with self.cache.use(self.adapter, cancel=self.cancel, timeout_s=self.timeout_s):
                self.slot_seen = self.adapter in self.cache.host.slot_of
                self.holding.set()
                self.finish.wait(30)
        except BaseException as exc:  # the test inspects it
            self.error = exc
            self.holding.set()


def test_eight_requests_over_four_adapters_share_two_slots_and_all_complete(two_slots, folders):
    cache = queued(two_slots, folders)
    first = list(hold_both(cache))
    rest = [Holder(cache, name, hold=False) for name in "abcpabcp"]
    # c and p cannot have a slot; a and b drain for them, so every later request queues behind.
    until(lambda: sum(item["queued"] for item in cache.status()) + sum(h.holding.is_set() for h in rest) == 8)
    assert row(cache, "c")["queued"] == 2 and row(cache, "p")["queued"] == 2
    for holder in first:
        holder.finish.set()
    for holder in first + rest:
        holder.join(60)
        assert not holder.is_alive() and holder.error is None and holder.slot_seen
    assert len(two_slots.slot_of) <= 2 and sum(item["queued"] for item in cache.status()) == 0


def test_a_resident_adapter_with_a_waiting_rival_drains_instead_of_admitting_forever(two_slots, folders):
    cache = queued(two_slots, folders)
    a1, b1 = hold_both(cache)
    c = Holder(cache, "c")
    until(lambda: row(cache, "c")["queued"] == 1)
    # One rival waits, so one adapter drains: a, which has held its slot longest. b keeps admitting.
    assert row(cache, "a")["draining"] and not row(cache, "b")["draining"]
    a2 = Holder(cache, "a")  # a new request on a busy resident adapter: it must not overtake c
    until(lambda: row(cache, "a")["queued"] == 1)
    b2 = Holder(cache, "b")
    assert b2.holding.wait(30) and b2.error is None
    assert not c.holding.is_set() and not a2.holding.is_set()
    a1.finish.set()  # a drains: its slot goes to c, which came first
    assert c.holding.wait(30) and c.error is None and c.slot_seen
    assert not a2.holding.is_set() and "a" not in two_slots.slot_of
    assert row(cache, "b")["draining"]  # now a waits, and b has held its slot longest
    b1.finish.set(), b2.finish.set()
    assert a2.holding.wait(30) and a2.error is None and a2.slot_seen
    for holder in (a1, b1, b2, c, a2):
        holder.finish.set()
        holder.join(30)


def test_a_request_that_waits_too_long_fails_saying_why(two_slots, folders):
    cache = queued(two_slots, folders, queue_timeout_s=0.3)
    a, b = hold_both(cache)
    started = time.monotonic()
    with pytest.raises(AdapterQueueTimeout) as info:
        cache.acquire("c")
    assert 0.3 <= time.monotonic() - started < 10
    message = str(info.value)
    assert re.fullmatch(
        r"adapter 'c' waited 0\.\d s \(adapter_cache\.queue_timeout_s\) for one of 2 device slots; "
        r"they hold: a \(1 in use, draining\), b \(1 in use\); 0 other request\(s\) queued",
        message,
    ), message
    assert info.value.holders == {"a": 1, "b": 1} and info.value.slots == 2
    assert row(cache, "c")["queued"] == 0 and not row(cache, "a")["draining"]  # it left the queue
    with pytest.raises(AdapterQueueTimeout, match="waited 0.0 s"):  # the caller's own limit wins
        cache.acquire("c", timeout_s=0)
    a.finish.set(), b.finish.set()
    a.join(30), b.join(30)
    with cache.use("c"):  # slots free again: no wait
        assert "c" in two_slots.slot_of


def test_a_cancelled_waiter_leaves_the_queue_and_loads_nothing(two_slots, folders):
    cache = queued(two_slots, folders)
    a, b = hold_both(cache)
    gone = threading.Event()
    c = Holder(cache, "c", cancel=gone)
    until(lambda: row(cache, "c")["queued"] == 1 and row(cache, "a")["draining"])
    gone.set()  # the client went away
    c.join(30)
    assert isinstance(c.error, AdapterWaitCancelled) and "cancelled after" in str(c.error)
    assert row(cache, "c")["queued"] == 0 and not row(cache, "a")["draining"]
    a_again = Holder(cache, "a")  # nobody waits now: a admits again at once
    assert a_again.holding.wait(30) and a_again.error is None
    for holder in (a, b, a_again):
        holder.finish.set()
        holder.join(30)
    assert row(cache, "c")["tier"] != "gpu" and "c" not in two_slots.slot_of


def test_a_waiter_for_an_adapter_being_removed_is_told_at_once(two_slots, folders):
    cache = queued(two_slots, folders)
    a, b = hold_both(cache)
    c = Holder(cache, "c")
    until(lambda: row(cache, "c")["queued"] == 1)
    cache.unregister("c")
    c.join(30)
    assert isinstance(c.error, UnknownAdapterError) and "removed while this request waited" in str(c.error)
    for holder in (a, b):
        holder.finish.set()
        holder.join(30)


def test_when_every_slot_is_pinned_a_request_fails_at_once(two_slots, folders):
    for name in list(two_slots.slot_of):
        two_slots.unload(name)
    cache = AdapterCache(two_slots, gpu_bytes=10**9, cpu_bytes=10**9, max_loaded=2)
    for name, folder in folders.items():
        cache.register(name, lambda f=folder: load_adapter_weights(f), pinned=name in ("a", "b"))
    with pytest.raises(SlotsPinnedError, match=r"all 2 device slots hold pinned adapters \(a, b\)"):
        cache.acquire("c")
    with cache.use("a"):  # the pins themselves serve as always
        pass
