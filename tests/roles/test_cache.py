"""The tiered adapter cache over real slots in the real model: LRU down the tiers, pins, in-flight safety."""

from __future__ import annotations

import copy
import threading
import time

import pytest
from adapters import make_adapter

from konsilium.engines.lora_slots import LoraSlots
from konsilium.roles.cache import AdapterCache, UnknownAdapterError
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
    cache = AdapterCache(host, gpu_bytes=gpu, cpu_bytes=cpu, max_loaded=max_loaded)
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
