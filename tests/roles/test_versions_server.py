"""Role versions over the real server: `sport@1` answers with version 1's adapter and `sport` with the current
one, `/v1/models` lists the versions, an unknown version is a 404 naming the known ones, `dual: "sport@1"` puts
two versions side by side, and a rollback reaches a running server without a restart.

The engine is the fake slots engine (tests/fake_engine.py): its answer names the adapter handle it ran on with a
fingerprint of the weights; the adapters are real PEFT folders, the registry, cache and server are the real ones."""

from __future__ import annotations

import httpx2
import openai
import pytest
import yaml
from adapters import make_adapter
from fake_engine import FakeSlotsEngine
from live_server import running_server
from typer.testing import CliRunner

from konsilium.config import open_home
from konsilium.roles.registry import RoleRegistry
from konsilium.roles.runtime import RoleService
from konsilium.roles.spec import AdapterSpec, RoleSpec
from konsilium.roles.versions import add_version, rollback
from konsilium.server import create_app

QUESTION = "How should I train for a marathon?"


def ask(client, model, **extra):
    return client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": QUESTION}], temperature=0, max_tokens=40, **extra
    )


def text(answer) -> str:
    return answer.choices[0].message.content


@pytest.fixture(scope="module")
def served(tiny_llama, tmp_path_factory):
    root = tmp_path_factory.mktemp("versions")
    folders = [make_adapter(tiny_llama, root / f"run{i}", rank=4, seed=i, scale=0.3) for i in range(3)]
    home = open_home(root / "home")
    registry = RoleRegistry.open(home)
    add_version(registry, "sport", folders[0])
    add_version(registry, "sport", folders[1])
    registry.add_adapter(AdapterSpec("core", folders[2]))
    registry.add_role(RoleSpec(id="coach", adapters={"core": 0.5}))
    add_version(registry, "coach", folders[0])  # coach@1: core alone; coach@2: core + coach-v2 (a stack)
    engine = FakeSlotsEngine()
    roles = RoleService(engine, RoleRegistry.open(home), cache_settings=home.config.adapter_cache)
    with running_server(create_app(engine, roles=roles)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=60)
        yield client, url, engine, home


def test_models_lists_each_version_after_the_ids_there_were(served):
    client, *_ = served
    ids = [m.id for m in client.models.list().data]
    assert ids == ["konsilium", "coach", "sport", "auto", "coach@1", "coach@2", "sport@1", "sport@2"]


def test_a_version_answers_with_its_own_adapter_and_the_role_id_with_the_current_one(served):
    client, _, engine, _ = served
    old = ask(client, "sport@1")
    assert engine.last.adapter == "sport-v1" and text(old).startswith("[sport-v1#")
    current = ask(client, "sport")
    assert engine.last.adapter == "sport-v2" and text(current).startswith("[sport-v2#")
    assert text(ask(client, "sport@2")) == text(current)
    assert old.model == "sport@1" and current.model == "sport"
    assert old.model_extra["role"] == {"id": "sport@1", "label": "neutral"}
    assert current.model_extra["role"] == {"id": "sport@2", "label": "neutral"}  # names what answered
    raw = client.completions.create(model="sport@1", prompt="Tell me", max_tokens=10)
    assert engine.last.adapter == "sport-v1" and raw.choices[0].text.startswith("[sport-v1#")


def test_each_version_of_a_stacked_role_gets_a_stack_of_its_own(served):
    client, _, engine, _ = served
    first = text(ask(client, "coach@1"))
    assert engine.last.adapter == "role:coach@1"  # version 1: the untrained role, core alone at 0.5 (scaled)
    second = text(ask(client, "coach"))
    assert engine.last.adapter == "role:coach@2"  # core 0.5 + coach-v2 1.0, stacked
    assert first != second and text(ask(client, "coach@2")) == second


def test_an_unknown_version_is_a_404_naming_the_known_ones(served):
    client, url, *_ = served
    with pytest.raises(openai.NotFoundError) as info:
        ask(client, "sport@7")
    error = info.value.body
    assert error["code"] == "model_not_found" and error["param"] == "model"
    assert error["message"] == "role 'sport' has no version 7; its versions: sport@1, sport@2 (current: sport@2)"
    with pytest.raises(openai.NotFoundError, match="The model 'nobody@1' does not exist"):
        ask(client, "nobody@1")
    body = {"model": "sport@0", "prompt": "hi"}
    assert httpx2.post(f"{url}/v1/completions", json=body, timeout=30).status_code == 404


def test_dual_with_a_model_id_puts_two_versions_side_by_side(served):
    client, *_ = served
    dual = ask(client, "sport@2", extra_body={"dual": "sport@1"})
    assert [c.index for c in dual.choices] == [0, 1]
    assert [c.model_extra["role"] for c in dual.choices] == [
        {"id": "sport@1", "label": "neutral"},
        {"id": "sport@2", "label": "neutral"},
    ]
    assert dual.choices[0].message.content == text(ask(client, "sport@1"))
    assert dual.choices[1].message.content == text(ask(client, "sport@2"))
    assert dual.model == "sport@2"
    classic = ask(client, "sport", extra_body={"konsilium": {"dual": True}})  # unchanged: the base model first
    assert classic.choices[0].model_extra["role"] == {"id": None, "label": "neutral"}
    assert classic.choices[0].message.content.startswith("[base]")
    with pytest.raises(openai.NotFoundError) as info:
        ask(client, "sport", extra_body={"dual": "sport@9"})
    assert info.value.body["param"] == "dual" and "its versions: sport@1, sport@2" in info.value.body["message"]
    assert len(ask(client, "sport", extra_body={"dual": None}).choices) == 1  # null: no dual, as before
    for bad in (5, "", ["sport@1"]):
        with pytest.raises(openai.BadRequestError, match="dual must be true, false or a model id"):
            ask(client, "sport", extra_body={"dual": bad})


def test_a_rollback_reaches_the_running_server(served):
    client, _, engine, home = served
    rollback(RoleRegistry.open(home), "sport")
    try:
        assert text(ask(client, "sport")).startswith("[sport-v1#")
        assert ask(client, "sport").model_extra["role"]["id"] == "sport@1"
        assert text(ask(client, "sport@2")).startswith("[sport-v2#")  # the newer one stays addressable
    finally:
        rollback(RoleRegistry.open(home), "sport", to=2)
    assert text(ask(client, "sport")).startswith("[sport-v2#")


def test_ask_names_the_versions_there_are_when_given_an_unknown_one(tiny_llama, tmp_path):
    """`konsilium ask -r sport@9` in this process, over an upstream on the fake engine: the error comes before any
    answer is made."""
    from konsilium.cli.main import app

    home = open_home(tmp_path / "home")
    add_version(RoleRegistry.open(home), "sport", make_adapter(tiny_llama, tmp_path / "run", rank=4))
    with running_server(create_app(FakeSlotsEngine(), model_id="upstream-model")) as url:
        engine = {"kind": "openai-upstream", "upstream_url": f"{url}/v1", "model": "upstream-model"}
        (home.root / "konsilium.yaml").write_text(yaml.safe_dump({"engine": engine}), encoding="utf-8")
        command = ["--home", str(home.root), "ask", QUESTION, "--local", "--no-retrieval", "-r", "sport@9"]
        done = CliRunner().invoke(app, command)
    assert done.exit_code == 1
    assert "role 'sport' has no version 9; its versions: sport@1 (current: sport@1)" in done.stderr
