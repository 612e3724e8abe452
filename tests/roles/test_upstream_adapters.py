"""Roles through openai-upstream: adapters loaded into the upstream at run time, over replicas.

vLLM cannot run here, so the upstreams are real konsilium servers on the fake slots engine: they serve vLLM's
adapter surface (/v1/load_lora_adapter, /v1/unload_lora_adapter, loaded adapters as model ids, 404 for an
unknown one). The fake's answers name the adapter it ran on and a fingerprint of its weights."""

from __future__ import annotations

import contextlib
import json
from concurrent.futures import ThreadPoolExecutor

import httpx2
import openai
import pytest
import yaml
from adapters import make_adapter
from cli_runner import run
from fake_engine import FakeSlotsEngine
from live_server import free_port, running_server, wait_for

from konsilium.config import open_home
from konsilium.engines import AdapterRequest, AdapterSupport, SamplingParams
from konsilium.engines.openai_upstream import OpenAIUpstreamEngine
from konsilium.engines.upstream_adapters import max_loras_in_metrics
from konsilium.roles.registry import RoleRegistry
from konsilium.roles.runtime import RoleService
from konsilium.server import create_app

QUESTION = [{"role": "user", "content": "how do I train for a marathon?"}]
PARAMS = SamplingParams(max_tokens=40, temperature=0)


def upstream_server(stack: contextlib.ExitStack, root, name: str, port: int = 0):
    """A konsilium upstream that loads adapters at run time from anywhere under `root`."""
    home = root / name
    home.mkdir()
    settings = {"adapter_cache": {"runtime_loading": True, "runtime_folders": [str(root)], "max_rank": 64}}
    (home / "konsilium.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    engine = FakeSlotsEngine()
    roles = RoleService(engine, RoleRegistry.open(open_home(home)), cache_settings=open_home(home).config.adapter_cache)
    url = stack.enter_context(running_server(create_app(engine, roles=roles), port))
    return engine, f"{url}/v1"


@pytest.fixture(scope="module")
def world(tiny_llama, tmp_path_factory):
    root = tmp_path_factory.mktemp("upstream")
    folders = {
        name: make_adapter(tiny_llama, root / "adapters" / name, rank=4, seed=seed)
        for seed, name in enumerate(["core", "sport", "cold", "extra"], start=1)
    }
    with contextlib.ExitStack() as stack:
        up = [upstream_server(stack, root, f"up{i}") for i in (1, 2)]
        front_home = root / "front"
        front_home.mkdir()
        config = {
            "adapter_cache": {"max_rank": 16},
            "adapters": {name: {"path": str(folder)} for name, folder in folders.items()},
            "roles": {
                "runner": {"description": "running", "adapters": {"sport": 1.0}},
                "coach": {"description": "sport", "adapters": {"core": 1.0, "sport": 0.8}},
            },
        }
        (front_home / "konsilium.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        home = open_home(front_home)
        engine = OpenAIUpstreamEngine([url for _, url in up], "konsilium", max_loras=2, dead_s=60)
        roles = RoleService(engine, RoleRegistry.open(home), cache_settings=home.config.adapter_cache)
        front = stack.enter_context(running_server(create_app(engine, roles=roles)))
        client = openai.OpenAI(base_url=f"{front}/v1", api_key="unused", max_retries=0)
        yield {
            "engines": [e for e, _ in up],
            "urls": [u for _, u in up],
            "front": engine,
            "client": client,
            "folders": {name: str(folder) for name, folder in folders.items()},
            "root": root,
        }


def ask(client, model: str) -> str:
    return client.chat.completions.create(model=model, messages=QUESTION, max_tokens=40).choices[0].message.content


def test_the_engine_detects_runtime_loading_and_takes_role_folders(world):
    engine = world["front"]
    assert engine.adapter_support is AdapterSupport.PATHS
    info = engine.info()
    assert info["lora_loading"] is True and info["max_loras"] == 2
    assert [r["url"] for r in info["replicas"]] == world["urls"] and all(r["up"] for r in info["replicas"])


def test_a_role_loads_its_adapter_into_the_upstream_on_first_use(world):
    first = ask(world["client"], "runner")
    assert first.startswith("[sport#") and "----" not in first  # the upstream ran on the adapter's weights
    loads = sum(e.loads.count("sport") for e in world["engines"])
    for _ in range(3):
        assert ask(world["client"], "runner") == first
    # Loaded once per replica at most, then reused.
    assert sum(e.loads.count("sport") for e in world["engines"]) <= max(loads, 2)
    assert all(e.loads.count("sport") <= 1 for e in world["engines"])


def test_a_stacked_role_is_loaded_as_its_written_folder(world):
    answer = ask(world["client"], "coach")
    assert answer.startswith("[role-coach#") and "----" not in answer
    assert ask(world["client"], "runner") != answer.replace("role-coach", "sport")  # other weights, other print


def test_requests_spread_over_the_replicas(world):
    before = [len(e.received) for e in world["engines"]]
    for _ in range(4):
        ask(world["client"], "konsilium")
    after = [len(e.received) for e in world["engines"]]
    assert all(a > b for a, b in zip(after, before, strict=True))


def test_an_adapter_the_upstream_lost_is_loaded_again(world):
    engine, url = world["engines"][0], world["urls"][0]
    single = OpenAIUpstreamEngine(url, "konsilium", lora_loading="on")
    sport = AdapterRequest("sport", world["folders"]["sport"])
    assert single.generate_chat(QUESTION, PARAMS, sport).text.startswith("[sport#")
    # The upstream forgets it behind our back, as a restarted vLLM would.
    assert httpx2.post(f"{url}/unload_lora_adapter", json={"lora_name": "sport"}).status_code == 200
    loads = engine.loads.count("sport")
    assert single.generate_chat(QUESTION, PARAMS, sport).text.startswith("[sport#")
    assert engine.loads.count("sport") == loads + 1


def test_least_recently_used_adapters_are_unloaded_and_pins_stay(world):
    engine, url = world["engines"][1], world["urls"][1]
    single = OpenAIUpstreamEngine(url, "konsilium", lora_loading="on", max_loras=2)
    single.add_adapter("core", world["folders"]["core"], pinned=True)
    for name in ("core", "cold", "extra", "sport"):
        request = AdapterRequest(name, world["folders"][name])
        assert single.generate_chat(QUESTION, PARAMS, request).text.startswith(f"[{name}#")
    assert single.resident_adapters() == {"core", "sport"}  # "core" pinned; "cold", then "extra" evicted
    assert {"cold", "extra"} <= set(engine.unloads) and "core" not in engine.unloads
    single.remove_adapter("sport")
    assert "sport" not in single.resident_adapters() and "sport" in engine.unloads


def test_a_dead_replica_is_skipped_and_its_requests_move(world):
    with contextlib.ExitStack() as stack:
        engines, urls = zip(*(upstream_server(stack, world["root"], f"kill{i}") for i in (1, 2)), strict=True)
        with contextlib.ExitStack() as doomed:
            dying, dying_url = upstream_server(doomed, world["root"], "dying")
            front = OpenAIUpstreamEngine([dying_url, *urls], "konsilium", lora_loading="on", dead_s=60)
            sport = AdapterRequest("sport", world["folders"]["sport"])
            for _ in range(3):
                assert front.generate_chat(QUESTION, PARAMS, sport).text.startswith("[sport#")
            assert dying.received and all(e.received for e in engines)  # three replicas, one request each
        # The first replica is gone (its server shut down): every request still gets an answer, from the others.
        served = sum(len(e.received) for e in engines)
        for _ in range(4):
            assert front.generate_chat(QUESTION, PARAMS, sport).text.startswith("[sport#")
        assert sum(len(e.received) for e in engines) == served + 4
        replicas = {r["url"]: r for r in front.info()["replicas"]}
        assert not replicas[dying_url]["up"] and "cannot reach" in replicas[dying_url]["error"]
        assert all(replicas[u]["up"] and replicas[u]["adapters"] == ["sport"] for u in urls)


def test_model_info_says_what_the_upstream_supports(world, tmp_path):
    config = {"engine": {"kind": "openai-upstream", "model": "konsilium", "upstream_url": world["urls"]}}
    (tmp_path / "konsilium.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    info = json.loads(run(tmp_path, "model", "info", "--json").stdout)
    assert info["lora_loading"] is True and "load_lora_adapter" in info["lora_loading_reason"]
    assert [r["url"] for r in info["replicas"]] == world["urls"] and all(r["up"] for r in info["replicas"])
    shown = run(tmp_path, "model", "info").stdout
    assert all(f"replica: {url} up" in shown for url in world["urls"])


def test_a_streamed_role_answer_releases_its_replica_and_adapter(world):
    events = world["client"].chat.completions.create(model="runner", messages=QUESTION, max_tokens=40, stream=True)
    text = "".join(event.choices[0].delta.content or "" for event in events if event.choices)
    assert text.startswith("[sport#")
    replicas = world["front"].pool.replicas
    assert wait_for(lambda: all(r.in_flight == 0 and not r.using for r in replicas))  # nothing held after it


def test_the_adapter_budget_defaults_to_what_vllm_reports():
    scrape = (
        "# TYPE vllm:lora_requests_info gauge\n"
        'vllm:lora_requests_info{max_lora="8",running_lora_adapters="coach",waiting_lora_adapters=""} 1.7e+09\n'
    )
    assert max_loras_in_metrics(scrape) == 8
    assert max_loras_in_metrics("vllm:num_requests_running 2.0\n") is None  # no LoRA metric yet: the default, 4


def test_many_concurrent_agents_share_the_replicas_and_each_loads_an_adapter_once(world):
    before = [len(e.received) for e in world["engines"]]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: ask(world["client"], "coach"), range(16)))
    assert len(set(answers)) == 1 and answers[0].startswith("[role-coach#")
    assert all(len(e.received) > b for e, b in zip(world["engines"], before, strict=True))
    assert all(e.loads.count("role-coach") <= 1 for e in world["engines"])


def test_a_replica_that_comes_back_is_used_again_after_its_pause(world):
    port = free_port()
    with contextlib.ExitStack() as stack:
        live, live_url = upstream_server(stack, world["root"], "steady")
        late_url = f"http://127.0.0.1:{port}/v1"
        front = OpenAIUpstreamEngine([late_url, live_url], "konsilium", lora_loading="on", dead_s=0.5)
        sport = AdapterRequest("sport", world["folders"]["sport"])
        assert front.generate_chat(QUESTION, PARAMS, sport).text.startswith("[sport#")  # the late one is not up yet
        assert [r["up"] for r in front.info()["replicas"]] == [False, True]
        late, _ = upstream_server(stack, world["root"], "late", port)
        assert wait_for(lambda: front.info()["replicas"][0]["up"], 5)  # its pause is over: it is tried again
        for _ in range(2):
            assert front.generate_chat(QUESTION, PARAMS, sport).text.startswith("[sport#")
        assert late.received and late.loads == ["sport"]  # back in the pool, with the adapter loaded there
