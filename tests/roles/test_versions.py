"""Role versions over a real home: a trained adapter becomes `sport@N`, versions persist in roles.yaml, rollback,
stacked roles keep their core adapter, konsilium.yaml roles stay read-only; and `konsilium roles versions|rollback`
in this process through the real typer app. Adapters are real PEFT folders made on a meta-device Llama."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from adapters import edit_config, make_adapter
from typer.testing import CliRunner

from konsilium.cli.main import app
from konsilium.config import open_home
from konsilium.roles.registry import ROLES_FILE, RegistryError, RoleRegistry, UnknownRoleError, UnknownVersionError
from konsilium.roles.spec import AdapterSpec, RoleSpec, RoleSpecError
from konsilium.roles.validation import AdapterError
from konsilium.roles.versions import DEFAULT_DESCRIPTION, RoleVersion, add_version, list_versions, rollback


@pytest.fixture(scope="module")
def folders(tiny_llama, tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("trained")
    return [make_adapter(tiny_llama, root / f"run{i}", rank=4, seed=i) for i in range(3)]


@pytest.fixture
def home(tmp_path):
    return open_home(tmp_path / "home")


def roles_yaml(home) -> dict:
    return yaml.safe_load((home.root / ROLES_FILE).read_text())


def test_a_trained_adapter_creates_the_role_then_becomes_its_next_version(home, folders):
    registry = RoleRegistry.open(home)
    first = add_version(registry, "sport", folders[0], card="runs/1/card.json")
    assert first == RoleVersion(
        "sport", 1, "sport@1", "sport-v1", {"sport-v1": 1.0}, first.created, "runs/1/card.json", current=True
    )
    assert first.created[:2] == "20" and "T" in first.created
    role = registry.role("sport")
    assert (role.description, role.adapters, role.version, role.model_id) == (
        DEFAULT_DESCRIPTION,
        {"sport-v1": 1.0},
        1,
        "sport@1",
    )
    assert registry.adapter("sport-v1") == AdapterSpec("sport-v1", folders[0], "cpu", False)

    second = add_version(registry, "sport", folders[1], description="ignored: the role exists")
    assert (second.model_id, second.adapter, second.adapters, second.card) == (
        "sport@2",
        "sport-v2",
        {"sport-v2": 1.0},
        None,
    )
    assert (
        registry.role("sport").adapters == {"sport-v2": 1.0}
        and registry.role("sport").description == DEFAULT_DESCRIPTION
    )
    assert registry.role_at("sport@1").adapters == {"sport-v1": 1.0}  # older versions stay addressable
    assert registry.role_at("sport").adapters == {"sport-v2": 1.0}
    assert registry.users_of("sport-v1") == ["sport"]  # an older version's adapter is in use: not removable
    with pytest.raises(RegistryError, match="adapter 'sport-v1' is used by role sport"):
        registry.remove_adapter("sport-v1")

    on_disk = roles_yaml(home)["roles"]["sport"]
    assert on_disk["version"] == 2 and on_disk["adapters"] == {"sport-v2": 1.0}
    assert on_disk["versions"][1] == {
        "adapter": "sport-v1",
        "adapters": {"sport-v1": 1.0},
        "created": first.created,
        "card": "runs/1/card.json",
    }
    fresh = RoleRegistry.open(home)  # versions reload as they were written
    assert fresh.role("sport") == registry.role("sport")
    assert [v.model_id for v in list_versions(fresh, "sport")] == ["sport@1", "sport@2"]
    assert [v.current for v in list_versions(fresh, "sport")] == [False, True]
    assert fresh.version_ids() == ["sport@1", "sport@2"] and fresh.model_ids() == ["konsilium", "sport"]


def test_rollback_moves_the_current_version_and_keeps_the_others(home, folders):
    registry = RoleRegistry.open(home)
    for folder in folders[:2]:
        add_version(registry, "sport", folder)
    back = rollback(registry, "sport")
    assert (back.model_id, back.adapters, back.current) == ("sport@1", {"sport-v1": 1.0}, True)
    fresh = RoleRegistry.open(home)
    assert fresh.role("sport").adapters == {"sport-v1": 1.0} and fresh.role("sport").version == 1
    assert fresh.role_at("sport@2").adapters == {"sport-v2": 1.0}
    with pytest.raises(RegistryError, match="'sport' is at its first version sport@1; there is no older one"):
        rollback(fresh, "sport")
    before = (home.root / ROLES_FILE).read_text()
    with pytest.raises(UnknownVersionError) as info:
        rollback(fresh, "sport", to=7)
    assert str(info.value) == "role 'sport' has no version 7; its versions: sport@1, sport@2 (current: sport@1)"
    assert rollback(fresh, "sport", to=1).version == 1  # already current: nothing to do
    assert (home.root / ROLES_FILE).read_text() == before  # errors and no-ops write nothing
    assert rollback(fresh, "sport", to=2).current and RoleRegistry.open(home).role("sport").version == 2
    # A new version after a rollback continues the numbering and starts from the current (rolled back) weights.
    rollback(fresh, "sport", to=1)
    third = add_version(fresh, "sport", folders[2])
    assert (third.model_id, third.adapters) == ("sport@3", {"sport-v3": 1.0})


def test_a_stacked_role_keeps_its_core_adapter_across_versions(home, folders):
    registry = RoleRegistry.open(home)
    registry.add_adapter(AdapterSpec("core", folders[0]))
    registry.add_role(RoleSpec(id="coach", description="Training plans", adapters={"core": 0.5}, topics=("sport",)))
    # The role as it was untrained stays reachable as version 1; the first trained adapter is stacked on top.
    trained = add_version(registry, "coach", folders[1], card="card.json")
    assert (trained.model_id, trained.adapter, trained.adapters) == (
        "coach@2",
        "coach-v2",
        {"core": 0.5, "coach-v2": 1.0},
    )
    untrained = list_versions(registry, "coach")[0]
    assert (untrained.model_id, untrained.adapter, untrained.adapters) == ("coach@1", None, {"core": 0.5})
    # The trained adapter's weight, tuned by hand in roles.yaml, is kept by the next version.
    data = roles_yaml(home)
    for body in (data["roles"]["coach"], data["roles"]["coach"]["versions"][2]):
        body["adapters"]["coach-v2"] = 0.8
    (home.root / ROLES_FILE).write_text(yaml.safe_dump(data, sort_keys=False))
    registry = RoleRegistry.open(home)
    third = add_version(registry, "coach", folders[2])
    assert third.adapters == {"core": 0.5, "coach-v3": 0.8}
    role = registry.role("coach")
    assert (role.description, role.topics) == ("Training plans", ("sport",))  # the role itself is untouched
    assert registry.role_at("coach@1").adapters == {"core": 0.5}
    rollback(registry, "coach", to=1)  # from a version that brought no adapter, the next one is added at 1.0
    assert add_version(registry, "coach", folders[2]).adapters == {"core": 0.5, "coach-v4": 1.0}


def test_a_role_without_versions_saves_byte_for_byte_as_before(home, folders):
    registry = RoleRegistry.open(home)
    registry.add_adapter(AdapterSpec("core", Path("adapters/core")))
    registry.add_role(RoleSpec(id="runner", description="plain", adapters={"core": 1.0}))
    before = (home.root / ROLES_FILE).read_text()
    assert "version" not in before
    add_version(registry, "sport", folders[0])
    add_version(registry, "sport", folders[1])
    assert (
        yaml.safe_load((home.root / ROLES_FILE).read_text())["roles"]["runner"]
        == yaml.safe_load(before)["roles"]["runner"]
    )
    # Removing the versioned role takes the adapters its versions brought (their folders stay): back to the byte.
    removed = RoleRegistry.open(home).remove_role("sport")
    assert RoleRegistry.trained_adapters(removed) == ["sport-v1", "sport-v2"]
    assert (home.root / ROLES_FILE).read_text() == before
    assert folders[0].exists() and folders[1].exists()
    assert add_version(RoleRegistry.open(home), "sport", folders[1]).model_id == "sport@1"  # trained anew


def test_a_version_adapter_another_role_uses_stays_when_its_role_goes(home, folders):
    registry = RoleRegistry.open(home)
    add_version(registry, "sport", folders[0])
    registry.add_role(RoleSpec(id="blend", adapters={"sport-v1": 0.5}))
    registry.remove_role("sport")
    assert [a.name for a in RoleRegistry.open(home).adapters()] == ["sport-v1"]


def test_a_konsilium_yaml_role_is_versioned_by_editing_that_file(tmp_path, folders):
    root = tmp_path / "home"
    root.mkdir()
    config = {
        "adapters": {"core": str(folders[0]), "coach-v1": str(folders[1])},
        "roles": {
            "coach": {"adapters": {"core": 1.0}},
            "scout": {  # versions written by hand are read and addressable all the same
                "adapters": {"coach-v1": 1.0},
                "version": 1,
                "versions": {1: {"adapter": "coach-v1", "adapters": {"coach-v1": 1.0}}},
            },
        },
    }
    (root / "konsilium.yaml").write_text(yaml.safe_dump(config))
    registry = RoleRegistry.open(root)
    for action, words in (
        (lambda: add_version(registry, "coach", folders[2]), "to add a version to it, move its entry"),
        (lambda: rollback(registry, "scout", to=1), "to roll back it, move its entry"),
    ):
        with pytest.raises(RegistryError) as info:
            action()
        assert f"is defined in {root / 'konsilium.yaml'}, which konsilium never rewrites" in str(info.value)
        assert words in str(info.value) and str(root / ROLES_FILE) in str(info.value)
    assert not (root / ROLES_FILE).exists()
    assert registry.role_at("scout@1").adapters == {"coach-v1": 1.0}


def test_bad_input_changes_nothing(home, folders, tiny_llama, tmp_path):
    registry = RoleRegistry.open(home)
    ia3 = edit_config(make_adapter(tiny_llama, tmp_path / "ia3", rank=4), peft_type="IA3")
    with pytest.raises(AdapterError, match="adapter 'sport-v1' refused: .*only LoRA adapters are supported"):
        add_version(registry, "sport", ia3)
    with pytest.raises(AdapterError, match="does not exist"):
        add_version(registry, "sport", tmp_path / "nothing")
    with pytest.raises(RoleSpecError, match="not a valid name"):
        add_version(registry, "bad id", folders[0])
    with pytest.raises(RoleSpecError, match="the id is the base model's id"):
        add_version(registry, "konsilium", folders[0])
    assert not (home.root / ROLES_FILE).exists()
    registry.add_adapter(AdapterSpec("sport-v1", folders[0]))  # a name the first version would take
    before = (home.root / ROLES_FILE).read_text()
    with pytest.raises(RegistryError, match="adapter 'sport-v1' .* already exists .* `konsilium adapters remove"):
        add_version(registry, "sport", folders[1])
    with pytest.raises(UnknownRoleError):
        rollback(registry, "nobody")
    registry.add_role(RoleSpec(id="plain"))
    before = (home.root / ROLES_FILE).read_text()
    with pytest.raises(RegistryError, match="role 'plain' has no versions to roll back to"):
        rollback(registry, "plain")
    with pytest.raises(UnknownVersionError, match="role 'plain' has no versions; ask for 'plain' itself"):
        registry.role_at("plain@1")
    assert (home.root / ROLES_FILE).read_text() == before


def test_a_roles_yaml_broken_since_opening_is_not_overwritten(home, folders):
    registry = RoleRegistry.open(home)
    add_version(registry, "sport", folders[0])
    (home.root / ROLES_FILE).write_text("roles: [half written\n")
    for action in (lambda: add_version(registry, "sport", folders[1]), lambda: rollback(registry, "sport")):
        with pytest.raises(RegistryError, match="invalid YAML"):
            action()
    assert (home.root / ROLES_FILE).read_text() == "roles: [half written\n"


@pytest.mark.parametrize(
    "body, message",
    [
        ({"adapters": {"a": 1.0}, "version": 1}, "roles.r.version: given, but the role has no versions"),
        (
            {"adapters": {"a": 1.0}, "version": 2, "versions": {1: {"adapters": {"a": 1.0}}}},
            "roles.r.version: 2 is not one of the role's versions (1)",
        ),
        (
            {"adapters": {"a": 1.0}, "version": 1, "versions": {1: {"adapters": {"a": 0.5}}}},
            "roles.r.adapters: {'a': 1.0} differs from versions.1.adapters {'a': 0.5}",
        ),
        ({"version": 1, "versions": {"one": {"adapters": {}}}}, "roles.r.versions.one: a version is a whole number"),
        ({"version": 1, "versions": {1: {"adapters": {}, "adapter": "a"}}}, "versions.1.adapter: 'a' is not among"),
        ({"version": 1, "versions": {1: {"weights": {}}}}, "roles.r.versions.1.weights: unknown key"),
        ({"versions": {1: {"adapters": {}}}}, "roles.r.version: expected int, got NoneType"),
    ],
)
def test_bad_versions_are_named_by_their_key_path(body, message):
    with pytest.raises(RoleSpecError) as info:
        RoleSpec.from_dict("r", body)
    assert message in str(info.value)


def test_a_hand_written_version_may_give_its_time_unquoted():
    text = "adapters: {a: 1.0}\nversion: 1\nversions:\n  1: {adapters: {a: 1.0}, created: 2025-06-29T10:00:00Z}\n"
    role = RoleSpec.from_dict("r", yaml.safe_load(text))
    assert role.versions[1].created == "2025-06-29T10:00:00+00:00" and role.model_id == "r@1"


# --- the CLI ------------------------------------------------------------------------------------------------------


def run(home, *args: str, code: int = 0):
    result = CliRunner().invoke(app, ["--home", str(home.root), *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == code, f"konsilium {' '.join(args)} exited {result.exit_code}: {result.stderr}"
    return result


def test_roles_versions_and_rollback_on_the_command_line(home, folders):
    registry = RoleRegistry.open(home)
    add_version(registry, "sport", folders[0], card="run1.json")
    add_version(registry, "sport", folders[1])
    versions = json.loads(run(home, "roles", "versions", "sport", "--json").stdout)
    assert [(v["model_id"], v["adapter"], v["adapters"], v["card"], v["current"]) for v in versions] == [
        ("sport@1", "sport-v1", {"sport-v1": 1.0}, "run1.json", False),
        ("sport@2", "sport-v2", {"sport-v2": 1.0}, None, True),
    ]
    table = run(home, "roles", "versions", "sport").stdout
    assert "sport@1" in table and "sport-v2:1" in table and "run1.json" in table
    assert [line.split()[:2] for line in table.splitlines() if "sport@2" in line] == [["*", "2"]]
    assert "sport@2, 2 in all" in run(home, "roles", "show", "sport").stdout
    shown = json.loads(run(home, "roles", "show", "sport", "--json").stdout)
    assert shown["version"] == 2 and sorted(shown["versions"]) == ["1", "2"]

    back = json.loads(run(home, "roles", "rollback", "sport", "--json").stdout)
    assert (back["model_id"], back["previous"], back["current"]) == ("sport@1", "sport@2", True)
    assert RoleRegistry.open(home).role("sport").adapters == {"sport-v1": 1.0}
    before = (home.root / ROLES_FILE).read_text()
    failed = run(home, "roles", "rollback", "sport", "--json", code=1)
    assert "there is no older one" in json.loads(failed.stdout)["error"]["message"]
    failed = run(home, "roles", "rollback", "sport", "--to", "9", code=1)
    assert "has no version 9; its versions: sport@1, sport@2" in failed.stderr
    assert "unknown role 'nobody'" in run(home, "roles", "versions", "nobody", code=1).stderr
    assert (home.root / ROLES_FILE).read_text() == before
    again = run(home, "roles", "rollback", "sport", "--to", "2").stdout
    assert "role sport now answers as sport@2 (was sport@1)" in again

    removed = json.loads(run(home, "roles", "remove", "sport", "--json").stdout)
    assert removed["adapters_removed"] == ["sport-v1", "sport-v2"]
    assert json.loads(run(home, "adapters", "list", "--json").stdout) == []


def test_a_role_never_trained_has_no_versions_to_list(home):
    RoleRegistry.open(home).add_role(RoleSpec(id="plain"))
    assert json.loads(run(home, "roles", "versions", "plain", "--json").stdout) == []
    assert "has no versions yet" in run(home, "roles", "versions", "plain").stdout
    assert "has no versions to roll back to" in run(home, "roles", "rollback", "plain", code=1).stderr
