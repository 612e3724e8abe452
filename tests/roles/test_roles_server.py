"""Roles over the real server and engine: model ids, per-request adapters in one batch, routing, the guard,
dual answers, and hot load / unload with vLLM's endpoint names — driven by the official `openai` client."""

from __future__ import annotations

import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx2
import openai
import pytest
import yaml
from adapters import MLP, edit_config, make_adapter
from live_server import running_server

from konsilium.config import default_home, open_home
from konsilium.engines import embedded_default
from konsilium.engines.transformers_engine import TransformersEngine
from konsilium.index.embedder import make_embedder
from konsilium.roles.registry import RoleRegistry
from konsilium.roles.runtime import RoleService
from konsilium.server import create_app

ESSAY = "Напиши школьное эссе о Второй мировой войне"
MARATHON = "Как мне тренироваться перед марафоном?"
DISCLAIMER = "A personal training philosophy, not medical advice."


def ask(client, model, content, **extra):
    return client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": content}], temperature=0, max_tokens=8, **extra
    )


@pytest.fixture(scope="module")
def served(base_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("roles")
    adapters = {
        "sport": make_adapter(base_model, root / "a" / "sport", rank=8, seed=1, scale=0.3),
        "physics": make_adapter(base_model, root / "a" / "physics", rank=16, targets=MLP, seed=2, scale=0.3),
        "extra": make_adapter(base_model, root / "a" / "extra", rank=4, seed=3, scale=0.3),
    }
    config = {
        "adapter_cache": {"max_loaded": 3, "max_rank": 32},
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
    home_dir = root / "home"
    home_dir.mkdir()
    (home_dir / "konsilium.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    home = open_home(home_dir)
    # An engine of its own: roles put LoRA slots into the model, the session's shared engine stays plain.
    engine = TransformersEngine(*embedded_default())
    embedder = make_embedder(home.settings, "use-m3")
    roles = RoleService(
        engine, RoleRegistry.open(home), cache_settings=home.settings["adapter_cache"], embed=embedder.embed
    )
    with running_server(create_app(engine, roles=roles)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=300)
        yield client, url, adapters, roles, home_dir
    assert default_home() != home_dir


def test_every_role_and_auto_are_model_ids(served):
    client, *_ = served
    ids = [m.id for m in client.models.list().data]
    assert ids[0] == "konsilium" and ids[-1] == "auto"
    assert sorted(ids[1:-1]) == ["blend", "coach", "physicist", "tutor"]


def test_a_roles_system_prompt_goes_first(served):
    client, *_ = served
    base, tutor = ask(client, "konsilium", "Hi"), ask(client, "tutor", "Hi")
    assert tutor.usage.prompt_tokens != base.usage.prompt_tokens
    assert tutor.model_extra["role"] == {"id": "tutor", "label": "neutral"}


def test_a_role_answers_with_its_adapter_and_concurrent_roles_do_not_mix(served):
    client, *_ = served
    alone = {
        model: ask(client, model, "Tell me about energy.").choices[0].message.content
        for model in ("konsilium", "physicist", "blend")
    }
    assert alone["physicist"] != alone["konsilium"] and alone["blend"] != alone["physicist"]
    models = ["physicist", "konsilium", "blend", "physicist", "konsilium", "blend"]
    with ThreadPoolExecutor(len(models)) as pool:
        together = list(pool.map(lambda m: ask(client, m, "Tell me about energy."), models))
    for model, answer in zip(models, together, strict=True):
        assert answer.choices[0].message.content == alone[model], model
        assert answer.model == model


def test_an_alternative_view_is_labelled_and_named_in_the_response(served):
    client, *_ = served
    answer = ask(client, "coach", MARATHON)
    content = answer.choices[0].message.content
    assert content.startswith("> [!warning] Alternative view: coach\n> " + DISCLAIMER)
    assert answer.model_extra["role"] == {"id": "coach", "label": "alternative"}
    streamed = list(
        client.chat.completions.create(
            model="coach", messages=[{"role": "user", "content": MARATHON}], temperature=0, max_tokens=8, stream=True
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == content


def test_auto_routes_on_topic_and_keeps_the_alternative_view_out_of_neutral_tasks(served):
    client, *_ = served
    essay = ask(client, "auto", ESSAY)
    assert essay.model_extra["role"]["id"] is None
    assert "coach" in essay.model_extra["role"]["routing"]["reason"]  # excluded, and said so
    assert not essay.choices[0].message.content.startswith("> [!warning]")
    training = ask(client, "auto", MARATHON)
    assert training.model_extra["role"]["id"] == "coach"
    assert training.choices[0].message.content == ask(client, "coach", MARATHON).choices[0].message.content


def test_dual_gives_the_neutral_answer_and_the_roles_side_by_side(served):
    client, *_ = served
    dual = ask(client, "coach", MARATHON, extra_body={"dual": True})
    assert [c.index for c in dual.choices] == [0, 1]
    assert dual.choices[0].message.content == ask(client, "konsilium", MARATHON).choices[0].message.content
    assert dual.choices[1].message.content == ask(client, "coach", MARATHON).choices[0].message.content
    with pytest.raises(openai.BadRequestError):
        ask(client, "konsilium", MARATHON, extra_body={"dual": True})


def test_hot_load_makes_an_id_usable_unload_makes_it_404_and_broken_ones_are_refused(served, base_model, tmp_path):
    client, url, adapters, *_ = served
    loaded = httpx2.post(
        f"{url}/v1/load_lora_adapter", json={"lora_name": "extra", "lora_path": str(adapters["extra"])}, timeout=120
    )
    assert loaded.status_code == 200, loaded.text
    assert "extra" in [m.id for m in client.models.list().data]
    assert ask(client, "extra", "Hi").choices[0].message.content
    where = {a["name"]: a for a in httpx2.get(f"{url}/v1/adapters", timeout=30).json()["data"]}
    assert where["extra"]["tier"] == "gpu" and where["extra"]["bytes"] > 0 and where["extra"]["runtime"]
    assert httpx2.post(f"{url}/v1/unload_lora_adapter", json={"lora_name": "extra"}, timeout=120).status_code == 200
    with pytest.raises(openai.NotFoundError) as caught:
        ask(client, "extra", "Hi")
    assert caught.value.code == "model_not_found"
    again = httpx2.post(f"{url}/v1/unload_lora_adapter", json={"lora_name": "extra"}, timeout=30)
    assert again.status_code == 404 and again.json()["error"]["message"]
    too_big = make_adapter(base_model, tmp_path / "big", rank=64)
    refused = httpx2.post(
        f"{url}/v1/load_lora_adapter", json={"lora_name": "big", "lora_path": str(too_big)}, timeout=120
    )
    assert refused.status_code == 400 and "rank" in refused.json()["error"]["message"]
    missing = httpx2.post(
        f"{url}/v1/load_lora_adapter", json={"lora_name": "x", "lora_path": str(tmp_path / "no")}, timeout=30
    )
    assert missing.status_code == 400
    assert ask(client, "physicist", "Hi").choices[0].message.content  # still serving
    other = edit_config(shutil.copytree(adapters["extra"], tmp_path / "other"), base_model_name_or_path="org/other")
    body = {"lora_name": "other", "lora_path": str(other)}
    warned = httpx2.post(f"{url}/v1/load_lora_adapter", json=body, timeout=120)
    assert warned.status_code == 200 and "trained on 'org/other'" in warned.json()["warnings"][0]
    assert loaded.json()["warnings"] == []
    assert httpx2.post(f"{url}/v1/unload_lora_adapter", json={"lora_name": "other"}, timeout=120).status_code == 200


def test_unload_waits_for_the_answer_in_flight(served):
    client, url, adapters, *_ = served
    body = {"lora_name": "late", "lora_path": str(adapters["extra"])}
    assert httpx2.post(f"{url}/v1/load_lora_adapter", json=body, timeout=120).status_code == 200
    stream = client.chat.completions.create(
        model="late",
        messages=[{"role": "user", "content": "Count to ten."}],
        max_tokens=24,
        temperature=0,
        stream=True,
    )
    first = next(iter(stream))
    unloaded = threading.Event()
    threading.Thread(
        target=lambda: (
            httpx2.post(f"{url}/v1/unload_lora_adapter", json={"lora_name": "late"}, timeout=300),
            unloaded.set(),
        ),
        daemon=True,
    ).start()
    time.sleep(0.5)
    rest = list(stream)
    assert first.choices and rest[-1].choices[0].finish_reason in {"stop", "length"}  # finished on its adapter
    assert unloaded.wait(120)


def test_ask_answers_as_a_role_from_the_command_line(base_model, tmp_path):
    import json
    import subprocess
    import sys

    sport = make_adapter(base_model, tmp_path / "sport", rank=8, seed=1, scale=0.3)
    home = tmp_path / "home"
    home.mkdir()
    config = {
        "adapters": {"sport": str(sport)},
        "roles": {"coach": {"adapters": {"sport": 1.0}, "label": "alternative", "disclaimer": DISCLAIMER}},
    }
    (home / "konsilium.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    command = [sys.executable, "-m", "konsilium.cli.main", "--home", str(home), "ask", MARATHON, "--no-retrieval"]
    done = subprocess.run(
        [*command, "--role", "coach", "--json", "--max-tokens", "4"], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["role"] == "coach" and answer["answer"].startswith("> [!warning] Alternative view: coach")
    unknown = subprocess.run([*command, "--role", "nobody"], capture_output=True, text=True, timeout=600)
    assert unknown.returncode == 1 and "unknown role 'nobody'" in unknown.stderr and "coach" in unknown.stderr


def test_adapters_list_live_shows_where_each_adapter_is_on_the_running_server(served, tmp_path):
    import json

    from typer.testing import CliRunner

    from konsilium.cli.main import app

    client, url, _, _, home_dir = served
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
