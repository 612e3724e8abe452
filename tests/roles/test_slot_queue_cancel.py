"""A request that gives up while it waits for an adapter slot (its client went away, a time limit, a shutdown)
leaves the queue at once: no slot is given to it, the requests behind it get theirs, and its exchange is logged as
cancelled. Real parts: PEFT adapter folders, the real cache and scheduler, the real server and HTTP clients; the
fake slots engine holds the adapters (it refuses a load past its slots, as the real ones do)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx2
import openai
import pytest
import yaml
from adapters import make_adapter
from fake_engine import FakeSlotsEngine
from live_server import running_server, wait_for

from konsilium.config import open_home
from konsilium.memory import ConversationLog
from konsilium.roles.cache import AdapterCache, AdapterWaitCancelled
from konsilium.roles.registry import RoleRegistry
from konsilium.roles.runtime import RoleService
from konsilium.roles.validation import load_adapter_weights
from konsilium.server import create_app

NAMES = ("a", "b", "c", "d")


@pytest.fixture(scope="module")
def folders(tiny_llama, tmp_path_factory):
    root = tmp_path_factory.mktemp("queue")
    return {name: make_adapter(tiny_llama, root / name, rank=4, seed=i) for i, name in enumerate(NAMES)}


def two_slot_cache(folders) -> tuple[AdapterCache, FakeSlotsEngine]:
    engine = FakeSlotsEngine(slots=2)
    cache = AdapterCache(engine, gpu_bytes=10**9, cpu_bytes=10**9, max_loaded=2, queue_timeout_s=30)
    for name, folder in folders.items():
        cache.register(name, lambda f=folder: load_adapter_weights(f), preferred="disk", warm=False)
    return cache, engine


def queued(cache) -> dict[str, int]:
    return {item["name"]: item["queued"] for item in cache.status() if item["queued"]}


class Waiting(threading.Thread):
    """One request for an adapter: acquires it (waiting in the queue), keeps it until told to finish."""

    def __init__(self, cache, name, cancel=None):
        super().__init__(daemon=True)
        self.cache, self.adapter, self.cancel = cache, name, cancel
        self.holding, self.finish = threading.Event(), threading.Event()
        self.error: BaseException | None = None
        self.ended_at: float | None = None
        self.start()

    def run(self):
        try:
            with self.cache.use(self.adapter, cancel=self.cancel):
                self.holding.set()
                self.finish.wait(30)
        except BaseException as exc:  # the test inspects it
            self.error = exc
        finally:
            self.ended_at = time.monotonic()
            self.holding.set()


def test_a_cancelled_waiter_leaves_at_once_and_the_one_behind_it_gets_the_slot(folders):
    cache, engine = two_slot_cache(folders)
    cache.acquire("a"), cache.acquire("b")  # both slots busy
    gone = threading.Event()
    c = Waiting(cache, "c", cancel=gone)
    assert wait_for(lambda: queued(cache) == {"c": 1}, 10)
    d = Waiting(cache, "d")
    assert wait_for(lambda: queued(cache) == {"c": 1, "d": 1}, 10)
    cancelled_at = time.monotonic()
    gone.set()  # c's client goes away
    c.join(10)
    assert isinstance(c.error, AdapterWaitCancelled) and c.ended_at - cancelled_at < 1  # no waiting for a slot
    assert queued(cache) == {"d": 1}
    cache.release("a")  # the slot c would have had goes to d
    assert d.holding.wait(10) and d.error is None
    assert engine.loaded_adapters() == ["b", "d"] and "c" not in engine.loads
    d.finish.set(), d.join(10)
    cache.release("b")


def test_a_waiter_cancelled_just_as_a_slot_frees_is_not_given_it(folders):
    """The slot frees after the cancel but before the waiter's thread runs again: the queue, not the waiter's
    next look at its cancel, must decide; the slot goes to the next in line."""
    cache, engine = two_slot_cache(folders)
    cache.acquire("a"), cache.acquire("b")
    gone = threading.Event()
    c = Waiting(cache, "c", cancel=gone)
    assert wait_for(lambda: queued(cache) == {"c": 1}, 10)
    d = Waiting(cache, "d")
    assert wait_for(lambda: queued(cache) == {"c": 1, "d": 1}, 10)
    with cache._lock:  # neither waiting thread can run until both have happened
        gone.set()
        cache.release("a")
    c.join(10)
    assert isinstance(c.error, AdapterWaitCancelled)
    assert d.holding.wait(10) and d.error is None
    assert "c" not in engine.loads and engine.loaded_adapters() == ["b", "d"]
    d.finish.set(), d.join(10)
    cache.release("b")
    assert queued(cache) == {} and not any(item["in_use"] for item in cache.status())


# --- over HTTP ------------------------------------------------------------------------------------------------


@pytest.fixture
def one_slot(folders, tmp_path):
    """A server with one adapter slot, a role per adapter, and the conversation log: (url, engine, roles, log)."""
    home_dir = tmp_path / "home"
    home_dir.mkdir()
    config = {
        "adapter_cache": {"max_loaded": 1, "queue_timeout_s": 60},
        "adapters": {name: {"path": str(folder), "tier": "disk"} for name, folder in folders.items()},
        "roles": {f"role-{name}": {"description": name, "adapters": {name: 1.0}} for name in folders},
    }
    (home_dir / "konsilium.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    home = open_home(home_dir)
    engine = FakeSlotsEngine(filler_words=6)
    roles = RoleService(engine, RoleRegistry.open(home), cache_settings=home.config.adapter_cache)
    log = ConversationLog(tmp_path / "log.sqlite3")
    with running_server(create_app(engine, roles=roles, conversation_log=log)) as url:
        yield url, engine, roles, log


def chat(model: str, stream: bool) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8, "stream": stream}


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_a_client_that_leaves_while_its_request_waits_for_a_slot_is_logged_cancelled(one_slot, stream):
    url, engine, roles, log = one_slot
    cache = roles.cache
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=60)
    gate = threading.Event()
    engine.gate = gate  # role-a's answer holds the only slot until the gate opens
    with ThreadPoolExecutor(2) as clients:
        try:
            holding = client.chat.completions.create(**chat("role-a", stream=True))
            assert next(iter(holding)).choices[0].delta.role == "assistant"
            body = chat("role-b", stream)  # waits for the slot; its client gives up after 2 s
            gone = clients.submit(httpx2.post, f"{url}/v1/chat/completions", json=body, timeout=2.0)
            assert wait_for(lambda: queued(cache) == {"b": 1}, 5)
            behind = clients.submit(client.chat.completions.create, **chat("role-c", False))  # queued behind it
            assert wait_for(lambda: queued(cache) == {"b": 1, "c": 1}, 5)
            with pytest.raises(httpx2.TimeoutException):
                gone.result(30)
            left = time.monotonic()
            assert wait_for(lambda: queued(cache) == {"c": 1}, 5), queued(cache)  # at once, not after 60 s
            assert time.monotonic() - left < 3
        finally:
            gate.set()
            engine.gate = None
        list(holding)
        assert behind.result(30).choices[0].message.content.startswith("[c#")  # next in line when the slot freed
    assert "b" not in engine.loads  # the gone request never got the slot
    rows = {row.model: row for row in log.list(limit=10)}
    assert rows["role-b"].status == "cancelled" and rows["role-b"].error == "the client went away"
    assert rows["role-b"].response == "" and rows["role-a"].status == rows["role-c"].status == "ok"
