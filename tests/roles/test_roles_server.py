"""Roles over the real server: model ids, per-request adapters, routing, the guard, dual answers, and hot load /
unload with vLLM's endpoint names — driven by the official `openai` client.

Most tests run on the fake slots engine (tests/fake_engine.py): real PEFT adapter folders, the real registry, cache,
router and server, and an engine whose answer names the adapter it ran on (with a fingerprint of its weights). The
numerics of LoRA slots are tested against PEFT in test_stacking_and_slots.py; the `real_model` tests at the end run
roles end to end on the embedded SmolLM2."""

from __future__ import annotations

import json
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import openai
import pytest
import yaml
from adapters import MLP, edit_config, make_adapter
from fake_engine import FakeSlotsEngine
from live_server import running_server
from typer.testing import CliRunner

from konsilium.config import default_home, open_home
from konsilium.index.embedder import make_embedder
from konsilium.roles.registry import RoleRegistry
from konsilium.roles.runtime import RoleService
from konsilium.server import create_app

ESSAY = "Напиши школьное эссе о Второй мировой войне"
MARATHON = "Как мне тренироваться перед марафоном?"
DISCLAIMER = "A personal training philosophy, not medical advice."


def ask(client, model, content, **extra):
    return client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": content}], temperature=0, max_tokens=40, **extra
    )


def text(answer) -> str:
    return answer.choices[0].message.content


def roles_config(adapters: dict) -> dict:
    return {
        # runtime loading is opt-in: on here, from pytest's base folder (module and per-test folders lie in it)
        "adapter_cache": {
            "max_loaded": 3,
            "max_rank": 32,
            "runtime_loading": True,
            "runtime_folders": [str(Path(adapters["extra"]).parents[2])],
        },
        "adapters": {"sport": {"path": str(adapters["sport"])}, "physics": {"path": str(adapters["physics"])}},
        "roles": {
            "coach": {
                "description": "Personal sports science: training plans, recovery, nutrition for athletes",
                "adapters": {"sport": 1.0},
                "label": "alternative",
                "disclaimer": DISCLAIMER,
                "topics": ["sport", "training", "спорт", "тренировки", "марафон"],
            },
            "physicist": {
                "description": "Physics tutor: mechanics, quantum physics, relativity",
                "adapters": {"physics": 1.0},
            },
            "tutor": {"description": "A patient tutor", "system_prompt": "You are a patient tutor. Answer briefly."},
            "blend": {"description": "both", "adapters": {"sport": 1.0, "physics": 0.5}},
        },
    }


def make_folders(model, root) -> dict:
    return {
        "sport": make_adapter(model, root / "a" / "sport", rank=8, seed=1, scale=0.3),
        "physics": make_adapter(model, root / "a" / "physics", rank=16, targets=MLP, seed=2, scale=0.3),
        "extra": make_adapter(model, root / "a" / "extra", rank=4, seed=3, scale=0.3),
    }


def role_service(engine, home_dir, with_router: bool) -> RoleService:
    home = open_home(home_dir)
    embed = make_embedder(home.config, "use-m3").embed if with_router else None
    return RoleService(engine, RoleRegistry.open(home), cache_settings=home.config.adapter_cache, embed=embed)


def write_home(root, adapters) -> object:
    home_dir = root / "home"
    home_dir.mkdir()
    (home_dir / "konsilium.yaml").write_text(yaml.safe_dump(roles_config(adapters)), encoding="utf-8")
    return home_dir


@pytest.fixture(scope="module")
def served(tiny_llama, tmp_path_factory):
    root = tmp_path_factory.mktemp("roles")
    adapters = make_folders(tiny_llama, root)  # real PEFT folders; the fake engine does not check shapes
    home_dir = write_home(root, adapters)
    engine = FakeSlotsEngine()
    roles = role_service(engine, home_dir, with_router=True)
    with running_server(create_app(engine, roles=roles)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=120)
        yield client, url, adapters, roles, home_dir, engine
    assert default_home() != home_dir


def test_every_role_and_auto_are_model_ids(served):
    client, *_ = served
    ids = [m.id for m in client.models.list().data]
    assert ids[0] == "konsilium" and ids[-1] == "auto"
    assert sorted(ids[1:-1]) == ["blend", "coach", "physicist", "tutor"]


def test_a_roles_system_prompt_goes_first(served):
    client, *_, engine = served
    base, tutor = ask(client, "konsilium", "Hi"), ask(client, "tutor", "Hi")
    assert engine.last.messages[0] == {"role": "system", "content": "You are a patient tutor. Answer briefly."}
    assert text(tutor).startswith("[base] notes=0 system=yes |") and text(base).startswith("[base] notes=0 system=no")
    assert tutor.usage.prompt_tokens != base.usage.prompt_tokens
    assert tutor.model_extra["role"] == {"id": "tutor", "label": "neutral"}


def test_a_role_answers_with_its_adapter_and_concurrent_roles_do_not_mix(served):
    client, *_ = served
    alone = {model: text(ask(client, model, "Tell me about energy.")) for model in ("konsilium", "physicist", "blend")}
    assert alone["konsilium"].startswith("[base] ")
    assert alone["physicist"].startswith("[physics#")
    assert alone["blend"].startswith("[") and not alone["blend"].startswith(("[base]", "[physics#", "[sport#"))
    assert len(set(alone.values())) == 3  # the stack is an adapter of its own, with its own weights
    models = ["physicist", "konsilium", "blend", "physicist", "konsilium", "blend"]
    with ThreadPoolExecutor(len(models)) as pool:
        together = list(pool.map(lambda m: ask(client, m, "Tell me about energy."), models))
    for model, answer in zip(models, together, strict=True):
        assert text(answer) == alone[model], model
        assert answer.model == model


def test_an_alternative_view_is_labelled_and_named_in_the_response(served):
    client, *_ = served
    answer = ask(client, "coach", MARATHON)
    content = text(answer)
    assert content.startswith("> [!warning] Alternative view: coach\n> " + DISCLAIMER)
    assert "[sport#" in content  # and then the answer, on the role's adapter
    assert answer.model_extra["role"] == {"id": "coach", "label": "alternative"}
    streamed = list(
        client.chat.completions.create(
            model="coach", messages=[{"role": "user", "content": MARATHON}], temperature=0, max_tokens=40, stream=True
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == content


def test_auto_routes_on_topic_and_keeps_the_alternative_view_out_of_neutral_tasks(served):
    client, *_ = served
    essay = ask(client, "auto", ESSAY)
    assert essay.model_extra["role"]["id"] is None
    assert "coach" in essay.model_extra["role"]["routing"]["reason"]  # excluded, and said so
    assert not text(essay).startswith("> [!warning]") and "[sport#" not in text(essay)
    training = ask(client, "auto", MARATHON)
    assert training.model_extra["role"]["id"] == "coach"
    assert text(training) == text(ask(client, "coach", MARATHON))


def test_dual_gives_the_neutral_answer_and_the_roles_side_by_side(served):
    client, *_ = served
    dual = ask(client, "coach", MARATHON, extra_body={"dual": True})
    assert [c.index for c in dual.choices] == [0, 1]
    assert dual.choices[0].message.content == text(ask(client, "konsilium", MARATHON))
    assert dual.choices[1].message.content == text(ask(client, "coach", MARATHON))
    assert dual.choices[0].message.content != dual.choices[1].message.content
    with pytest.raises(openai.BadRequestError):
        ask(client, "konsilium", MARATHON, extra_body={"dual": True})


def test_hot_load_makes_an_id_usable_unload_makes_it_404_and_broken_ones_are_refused(served, tiny_llama, tmp_path):
    client, url, adapters, _, _, engine = served
    loaded = httpx2.post(
        f"{url}/v1/load_lora_adapter", json={"lora_name": "extra", "lora_path": str(adapters["extra"])}, timeout=120
    )
    assert loaded.status_code == 200, loaded.text
    assert loaded.json()["warnings"] == []
    assert "extra" in [m.id for m in client.models.list().data]
    assert text(ask(client, "extra", "Hi")).startswith("[extra#")
    where = {a["name"]: a for a in httpx2.get(f"{url}/v1/adapters", timeout=30).json()["data"]}
    assert where["extra"]["tier"] == "gpu" and where["extra"]["bytes"] > 0 and where["extra"]["runtime"]
    assert "extra" in engine.loaded_adapters()
    assert httpx2.post(f"{url}/v1/unload_lora_adapter", json={"lora_name": "extra"}, timeout=120).status_code == 200
    assert "extra" not in engine.loaded_adapters()
    with pytest.raises(openai.NotFoundError) as caught:
        ask(client, "extra", "Hi")
    assert caught.value.code == "model_not_found"
    again = httpx2.post(f"{url}/v1/unload_lora_adapter", json={"lora_name": "extra"}, timeout=30)
    assert again.status_code == 404 and again.json()["error"]["message"]
    too_big = make_adapter(tiny_llama, tmp_path / "big", rank=64)
    refused = httpx2.post(
        f"{url}/v1/load_lora_adapter", json={"lora_name": "big", "lora_path": str(too_big)}, timeout=120
    )
    assert refused.status_code == 400 and "rank" in refused.json()["error"]["message"]
    missing = httpx2.post(
        f"{url}/v1/load_lora_adapter", json={"lora_name": "x", "lora_path": str(tmp_path / "no")}, timeout=30
    )
    assert missing.status_code == 400
    taken = httpx2.post(
        f"{url}/v1/load_lora_adapter", json={"lora_name": "coach", "lora_path": str(adapters["extra"])}, timeout=30
    )
    assert taken.status_code == 400  # a role's id cannot be taken by an adapter
    assert text(ask(client, "physicist", "Hi")).startswith("[physics#")  # still serving


def test_unload_waits_for_the_answer_in_flight(served):
    client, url, adapters, *_, engine = served
    body = {"lora_name": "late", "lora_path": str(adapters["extra"])}
    assert httpx2.post(f"{url}/v1/load_lora_adapter", json=body, timeout=120).status_code == 200
    gate = threading.Event()
    engine.gate = gate  # every chunk after the first waits until the test opens the gate
    try:
        stream = client.chat.completions.create(
            model="late", messages=[{"role": "user", "content": "Count to ten."}], max_tokens=24, stream=True
        )
        chunks = iter(stream)
        first = next(chunks)
        unloaded = threading.Event()
        threading.Thread(
            target=lambda: (
                httpx2.post(f"{url}/v1/unload_lora_adapter", json={"lora_name": "late"}, timeout=300),
                unloaded.set(),
            ),
            daemon=True,
        ).start()
        assert not unloaded.wait(0.5)  # the answer in flight holds its adapter
        assert "late" in engine.loaded_adapters()
    finally:
        gate.set()
        engine.gate = None
    rest = list(chunks)
    answer = "".join(c.choices[0].delta.content or "" for c in [first, *rest] if c.choices)
    assert answer.startswith("[late#") and rest[-1].choices[0].finish_reason == "stop"  # finished on its adapter
    assert unloaded.wait(30)
    assert "late" not in engine.loaded_adapters()
    with pytest.raises(openai.NotFoundError):
        ask(client, "late", "Hi")


def test_adapters_list_live_shows_where_each_adapter_is_on_the_running_server(served):
    from konsilium.cli.main import app

    client, url, _, _, home_dir, _ = served
    ask(client, "physicist", "Hi")  # physics is on the device now
    result = CliRunner().invoke(app, ["adapters", "list", "--live", "--url", url, "--json", "--home", str(home_dir)])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["physics"]["live"]["tier"] == "gpu" and rows["physics"]["live"]["bytes"] > 0
    assert rows["sport"]["live"]["tier"] in {"gpu", "cpu", "disk"} and rows["sport"]["rank"] == 8
    table = CliRunner().invoke(app, ["adapters", "list", "--live", "--url", url, "--home", str(home_dir)])
    assert table.exit_code == 0 and "now" in table.stdout
    down = CliRunner().invoke(
        app, ["adapters", "list", "--live", "--url", "http://127.0.0.1:9", "--home", str(home_dir)]
    )
    assert down.exit_code == 1 and "no konsilium server answers at http://127.0.0.1:9" in down.output


# --- on the real model ------------------------------------------------------------------------------------------


@pytest.mark.real_model
def test_roles_on_the_real_model_answer_with_their_adapters_side_by_side(base_model, tmp_path):
    """End to end on SmolLM2 with LoRA slots: each role's answer is its own, also when requests share batches, and
    an adapter trained on another base model is loaded with a warning."""
    from konsilium.engines import embedded_default
    from konsilium.engines.transformers_engine import TransformersEngine

    adapters = make_folders(base_model, tmp_path)
    # An engine of its own: roles put LoRA slots into the model, the session's shared engine stays plain.
    engine = TransformersEngine(*embedded_default())
    roles = role_service(engine, write_home(tmp_path, adapters), with_router=False)
    with running_server(create_app(engine, roles=roles)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=300)

        def short(model):
            return text(
                client.chat.completions.create(
                    model=model,
                    messages=[{"role": "user", "content": "Tell me about energy."}],
                    temperature=0,
                    max_tokens=8,
                )
            )

        alone = {model: short(model) for model in ("konsilium", "physicist", "blend")}
        assert alone["physicist"] != alone["konsilium"] and alone["blend"] != alone["physicist"]
        models = ["physicist", "konsilium", "blend", "physicist", "konsilium", "blend"]
        with ThreadPoolExecutor(len(models)) as pool:
            together = list(pool.map(short, models))
        assert together == [alone[model] for model in models]
        other = edit_config(shutil.copytree(adapters["extra"], tmp_path / "other"), base_model_name_or_path="org/other")
        warned = httpx2.post(
            f"{url}/v1/load_lora_adapter", json={"lora_name": "other", "lora_path": str(other)}, timeout=120
        )
        assert warned.status_code == 200 and "trained on 'org/other'" in warned.json()["warnings"][0]
        assert short("other")


@pytest.mark.real_model
def test_ask_answers_as_a_role_from_the_command_line(base_model, tmp_path):
    """`konsilium ask --role` in this process, on an engine of its own (the model file named in the config, so the
    session's shared engine gets no LoRA slots)."""
    from konsilium.cli.main import app
    from konsilium.engines import embedded_default

    folder, gguf_file = embedded_default()
    sport = make_adapter(base_model, tmp_path / "sport", rank=8, seed=1, scale=0.3)
    home = tmp_path / "home"
    home.mkdir()
    config = {
        "engine": {"model": str(Path(folder) / gguf_file)},
        "adapters": {"sport": str(sport)},
        "roles": {"coach": {"adapters": {"sport": 1.0}, "label": "alternative", "disclaimer": DISCLAIMER}},
    }
    (home / "konsilium.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    command = ["--home", str(home), "ask", MARATHON, "--local", "--no-retrieval", "--role", "coach", "--json"]
    command += ["--max-tokens", "4"]
    done = CliRunner().invoke(app, command)
    assert done.exit_code == 0, done.output
    answer = json.loads(done.stdout)
    assert answer["role"] == "coach" and answer["answer"].startswith("> [!warning] Alternative view: coach")


def test_ask_names_the_roles_there_are_when_given_an_unknown_one(tiny_llama, tmp_path):
    """In this process, over an upstream on the fake engine: the error comes before any answer is made."""
    from konsilium.cli.main import app

    sport = make_adapter(tiny_llama, tmp_path / "sport", rank=8, seed=1, scale=0.3)
    with running_server(create_app(FakeSlotsEngine(), model_id="upstream-model")) as url:
        engine = {"kind": "openai-upstream", "upstream_url": f"{url}/v1", "model": "upstream-model"}
        config = {
            "engine": engine,
            "adapters": {"sport": str(sport)},
            "roles": {"coach": {"adapters": {"sport": 1.0}, "label": "alternative", "disclaimer": DISCLAIMER}},
        }
        (tmp_path / "konsilium.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        ask_nobody = ["--home", str(tmp_path), "ask", MARATHON, "--local", "--no-retrieval", "-r", "nobody"]
        unknown = CliRunner().invoke(app, ask_nobody)
    assert unknown.exit_code == 1 and "unknown role 'nobody'" in unknown.stderr and "coach" in unknown.stderr
