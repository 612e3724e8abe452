"""Role and adapter definitions: parsing, the round trip to YAML, and every rule with its message."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from konsilium.config import ConfigError, defaults, open_home, render_default_yaml, validate
from konsilium.roles.spec import AdapterSpec, RetrievalScope, RoleSpec, RoleSpecError, parse_adapters, parse_roles

FULL_ROLE = {
    "description": "Training plans",
    "adapters": {"core": 1, "sport": 0.8},
    "system_prompt": "You are a coach.",
    "retrieval": {"collections": ["vault"], "folders": ["Sport"], "tags": ["#training"], "enabled": True},
    "label": "alternative",
    "disclaimer": "Not medical advice.",
    "topics": ["sport", "diet"],
    "blocked_topics": ["medicine"],
}


def test_a_full_role_parses_and_round_trips():
    role = RoleSpec.from_dict("coach", FULL_ROLE)
    assert role.adapters == {"core": 1.0, "sport": 0.8} and isinstance(role.adapters["core"], float)
    assert role.retrieval == RetrievalScope(collections=("vault",), folders=("Sport",), tags=("training",))
    assert role.topics == ("sport", "diet") and role.blocked_topics == ("medicine",)
    assert RoleSpec.from_dict("coach", role.to_dict()) == role
    assert yaml.safe_load(yaml.safe_dump(role.to_dict())) == role.to_dict()


def test_defaults_mean_the_base_model_with_the_servers_retrieval():
    role = RoleSpec.from_dict("plain", {})
    assert role == RoleSpec(id="plain")
    assert role.adapters == {} and role.retrieval is None and role.label == "neutral" and role.topics == ()
    # `key:` with nothing after it in YAML is null: the default, not an error.
    assert RoleSpec.from_dict("plain", {"description": None, "retrieval": None}) == role
    assert RetrievalScope.from_dict({}) == RetrievalScope()


def test_adapter_spec_parses_paths_and_the_short_form():
    spec = AdapterSpec.from_dict("core", {"path": "adapters/core", "tier": "gpu", "pinned": True})
    assert spec == AdapterSpec("core", Path("adapters/core"), "gpu", True)
    assert AdapterSpec.from_dict("core", "adapters/core") == AdapterSpec("core", Path("adapters/core"))
    assert AdapterSpec.from_dict("core", spec.to_dict()) == spec
    assert spec.to_dict() == {"path": "adapters/core", "tier": "gpu", "pinned": True}


@pytest.mark.parametrize(
    "role_id, body, message",
    [
        ("auto", {}, "roles.auto: the id 'auto' is reserved"),
        ("-x", {}, "roles: '-x' is not a valid name (1-64 characters"),
        ("a b", {}, "roles: 'a b' is not a valid name"),
        ("x" * 65, {}, "is not a valid name"),
        ("r", {"descripton": "x"}, "roles.r.descripton: unknown key; allowed keys: description, adapters,"),
        ("r", ["x"], "roles.r: expected a mapping, got list"),
        ("r", {"adapters": ["core"]}, "roles.r.adapters: expected a mapping of adapter name to weight"),
        ("r", {"adapters": {"core": 0}}, "roles.r.adapters.core: weight 0 is outside (0, 2]"),
        ("r", {"adapters": {"core": -1}}, "roles.r.adapters.core: weight -1 is outside (0, 2]"),
        ("r", {"adapters": {"core": 2.5}}, "roles.r.adapters.core: weight 2.5 is outside (0, 2]"),
        ("r", {"adapters": {"core": "high"}}, "roles.r.adapters.core: expected int or float, got str 'high'"),
        ("r", {"adapters": {"core": True}}, "roles.r.adapters.core: expected int or float, got bool"),
        ("r", {"adapters": {"bad name": 1}}, "roles.r.adapters: 'bad name' is not a valid name"),
        ("r", {"label": "fringe"}, "roles.r.label: 'fringe' is not allowed; allowed values: neutral, alternative"),
        ("r", {"label": "alternative"}, "roles.r.disclaimer: required for an 'alternative' role: its answers are"),
        ("r", {"label": "alternative", "disclaimer": "  "}, "roles.r.disclaimer: required for an 'alternative'"),
        ("r", {"description": 5}, "roles.r.description: expected str, got int 5"),
        ("r", {"system_prompt": ["a"]}, "roles.r.system_prompt: expected str, got tuple"),
        ("r", {"topics": "sport"}, "roles.r.topics: expected a list of strings, got str 'sport'"),
        ("r", {"topics": ["sport", ""]}, "roles.r.topics[1]: expected a non-empty string, got ''"),
        ("r", {"blocked_topics": [3]}, "roles.r.blocked_topics[0]: expected a non-empty string, got 3"),
        ("r", {"topics": ["a"], "blocked_topics": ["a"]}, "roles.r.blocked_topics: a also listed in topics"),
        ("r", {"retrieval": "vault"}, "roles.r.retrieval: expected RetrievalScope, got str 'vault'"),
        ("r", {"retrieval": {"colections": []}}, "roles.r.retrieval.colections: unknown key; allowed keys:"),
        ("r", {"retrieval": {"collections": "vault"}}, "roles.r.retrieval.collections: expected a list of strings"),
        ("r", {"retrieval": {"tags": [""]}}, "roles.r.retrieval.tags[0]: expected a non-empty string"),
        ("r", {"retrieval": {"tags": ["a", "#"]}}, "roles.r.retrieval.tags[1]: expected a non-empty string, got ''"),
        ("r", {"retrieval": {"enabled": "no"}}, "roles.r.retrieval.enabled: expected bool, got str 'no'"),
    ],
)
def test_bad_roles_name_the_key_path(role_id, body, message):
    with pytest.raises(RoleSpecError) as info:
        RoleSpec.from_dict(role_id, body)
    assert message in str(info.value)


@pytest.mark.parametrize(
    "name, body, message",
    [
        ("core", {}, "adapters.core.path: required (the adapter's PEFT folder)"),
        ("core", {"path": ""}, "adapters.core.path: must not be empty"),
        ("core", {"path": 3}, "adapters.core.path: expected str or Path, got int 3"),
        ("core", {"path": "a", "tier": "ssd"}, "adapters.core.tier: 'ssd' is not allowed; allowed values: gpu, cpu"),
        ("core", {"path": "a", "pinned": "yes"}, "adapters.core.pinned: expected bool, got str 'yes'"),
        ("core", {"path": "a", "rank": 8}, "adapters.core.rank: unknown key; allowed keys: path, tier, pinned"),
        ("core", 5, "adapters.core: expected a mapping, got int 5"),
        ("c/d", {"path": "a"}, "adapters: 'c/d' is not a valid name"),
    ],
)
def test_bad_adapters_name_the_key_path(name, body, message):
    with pytest.raises(RoleSpecError) as info:
        AdapterSpec.from_dict(name, body)
    assert message in str(info.value)


def test_specs_built_in_code_obey_the_same_rules():
    with pytest.raises(RoleSpecError, match="weight 3 is outside"):
        RoleSpec(id="r", adapters={"core": 3})
    with pytest.raises(RoleSpecError, match="tier: 'ram' is not allowed"):
        AdapterSpec("core", Path("x"), tier="ram")
    with pytest.raises(RoleSpecError, match="retrieval.folders\\[0\\]"):
        RetrievalScope(folders=("",))
    with pytest.raises(AttributeError):  # frozen
        RoleSpec(id="r").label = "alternative"


def test_a_role_may_not_take_the_base_models_id():
    with pytest.raises(RoleSpecError, match="roles.konsilium: the id is the base model's id"):
        parse_roles({"konsilium": {}}, base_model_id="konsilium")
    assert set(parse_roles({"konsilium": {}}, base_model_id="other")) == {"konsilium"}
    with pytest.raises(RoleSpecError, match="roles: expected a mapping of role id"):
        parse_roles(["a"])
    with pytest.raises(RoleSpecError, match="adapters: expected a mapping of adapter name"):
        parse_adapters("core")


# --- konsilium.yaml ------------------------------------------------------------------------------------------


def test_config_validates_roles_and_adapters_and_keeps_plain_dicts():
    settings = validate({"adapters": {"core": {"path": "a/core"}}, "roles": {"coach": FULL_ROLE}})
    assert settings["adapters"] == {"core": {"path": "a/core", "tier": "cpu", "pinned": False}}
    assert settings["roles"]["coach"]["adapters"] == {"core": 1.0, "sport": 0.8}
    assert settings["roles"]["coach"]["retrieval"]["tags"] == ["training"]
    assert validate({})["roles"] == {} and validate({"roles": None})["roles"] == {}


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"roles": {"coach": {"label": "x"}}}, "roles.coach.label: 'x' is not allowed"),
        ({"roles": {"konsilium": {}}}, "roles.konsilium: the id is the base model's id"),
        ({"server": {"model_id": "base"}, "roles": {"base": {}}}, "roles.base: the id is the base model's id"),
        ({"adapters": {"core": {"tier": "gpu"}}}, "adapters.core.path: required"),
        ({"adapter_cache": {"max_rank": 0}}, "adapter_cache.max_rank: 0 is below the minimum 1"),
        ({"adapter_cache": {"gpu_bytes": "2G"}}, "adapter_cache.gpu_bytes: expected int, got str"),
        ({"adapter_cahce": {}}, "allowed sections: vault, index, embedder, retrieval, engine, server, adapter_cache"),
    ],
)
def test_config_errors_for_roles_and_the_cache(raw, message):
    with pytest.raises(ConfigError) as info:
        validate(raw)
    assert message in str(info.value)


def test_adapter_cache_defaults():
    assert defaults()["adapter_cache"] == {
        "gpu_bytes": 2_000_000_000,
        "cpu_bytes": 8_000_000_000,
        "max_rank": 64,
        "max_loaded": 8,
        "queue_timeout_s": 30.0,
        "runtime_loading": False,  # off unless the owner allows it, as in vLLM
        "runtime_folders": [],  # empty: <home>/adapters
    }


def test_default_yaml_shows_the_shape_of_roles_in_comments(tmp_path):
    text = render_default_yaml()
    assert yaml.safe_load(text) == defaults()  # as written: no roles, no adapters
    assert "adapters: {}\n# adapters:" in text and "roles: {}\n# roles:" in text
    # The commented example, uncommented (and its trailing comments cut), is a valid configuration.
    starts = ("# workers:", "# adapters:", "# roles:", "#   ")
    example = [line[2:] for line in text.splitlines() if line.startswith(starts)]
    raw = yaml.safe_load("\n".join(line.split("  #")[0].rstrip() for line in example))
    raw["adapters"]["sport"] = {"path": "adapters/sport"}
    settings = validate(raw)
    assert settings["roles"]["coach"]["adapters"] == {"core": 1.0, "sport": 0.8}
    assert settings["workers"][0]["name"] == "coder" and settings["workers"][0]["good_for"] == ["python", "sql"]
    home = open_home(tmp_path / "h")
    assert home.config.roles == {} and home.config.adapter_cache.max_loaded == 8
