"""The role registry over a real home: konsilium.yaml merged with the CLI's roles.yaml, changes persisted."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from konsilium.config import open_home
from konsilium.roles.registry import (
    ROLES_FILE,
    RegistryChanges,
    RegistryError,
    RoleRegistry,
    UnknownAdapterNameError,
    UnknownRoleError,
)
from konsilium.roles.spec import AdapterSpec, RoleSpec, RoleSpecError


def write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")


@pytest.fixture
def home(tmp_path):
    """konsilium.yaml with one adapter and one role; roles.yaml with another of each."""
    root = tmp_path / "home"
    write(
        root / "konsilium.yaml",
        {
            "adapters": {"core": {"path": "adapters/core"}},
            "roles": {"coach": {"adapters": {"core": 1.0, "sport": 0.8}, "description": "sport"}},
        },
    )
    write(
        root / ROLES_FILE,
        {
            "adapters": {"sport": {"path": "/abs/sport", "tier": "gpu", "pinned": True}},
            "roles": {"runner": {"adapters": {"sport": 1.5}}},
        },
    )
    return open_home(root)


def test_roles_and_adapters_from_both_files_are_merged(home):
    registry = RoleRegistry.open(home)
    assert [r.id for r in registry.roles()] == ["coach", "runner"]
    assert registry.role("coach").adapters == {"core": 1.0, "sport": 0.8}
    assert registry.model_ids() == ["konsilium", "coach", "runner"]
    assert "runner" in registry and "nobody" not in registry
    assert registry.role_source("coach") == home.config_path
    assert registry.role_source("runner") == home.root / ROLES_FILE
    assert [a.name for a in registry.adapters()] == ["core", "sport"]
    assert registry.adapter("sport") == AdapterSpec("sport", Path("/abs/sport"), "gpu", True)
    assert [(a.name, w) for a, w in registry.adapters_of("coach")] == [("core", 1.0), ("sport", 0.8)]
    assert registry.users_of("sport") == ["coach", "runner"]
    assert RoleRegistry.open(home.root).role_ids() == ["coach", "runner"]  # a path works as well as a Home


def test_relative_adapter_paths_resolve_against_the_home(home):
    assert RoleRegistry.open(home).adapter("core").path == home.root / "adapters" / "core"


def test_unknown_ids_list_the_known_ones(home):
    registry = RoleRegistry.open(home)
    with pytest.raises(UnknownRoleError) as info:
        registry.role("lawyer")
    assert str(info.value) == "unknown role 'lawyer'; known roles: coach, runner"
    assert info.value.known == ["coach", "runner"] and isinstance(info.value, ValueError)
    with pytest.raises(UnknownAdapterNameError, match="unknown adapter 'x'; known adapters: core, sport"):
        registry.adapter("x")


def test_added_roles_and_adapters_persist_in_roles_yaml_only(home):
    before = home.config_path.read_text()
    registry = RoleRegistry.open(home)
    registry.add_adapter(AdapterSpec("law", Path("adapters/law"), tier="disk"))
    registry.add_role(RoleSpec(id="lawyer", adapters={"law": 1.0, "core": 0.5}, label="alternative", disclaimer="D"))
    assert registry.role("lawyer").disclaimer == "D"
    again = RoleRegistry.open(open_home(home.root))
    assert again.role("lawyer") == registry.role("lawyer")
    assert again.adapter("law").tier == "disk" and again.adapter("law").path == home.root / "adapters/law"
    assert home.config_path.read_text() == before  # the hand-edited file is never rewritten
    on_disk = yaml.safe_load((home.root / ROLES_FILE).read_text())
    assert set(on_disk["roles"]) == {"lawyer", "runner"} and on_disk["adapters"]["law"]["path"] == "adapters/law"
    assert not list(home.root.glob("*.tmp"))  # written through a temporary file, then renamed

    assert again.remove_role("lawyer").id == "lawyer"
    assert again.remove_adapter("law").name == "law"
    final = RoleRegistry.open(open_home(home.root))
    assert final.role_ids() == ["coach", "runner"] and "law" not in [a.name for a in final.adapters()]


def test_roles_yaml_is_created_on_first_add(tmp_path):
    registry = RoleRegistry.open(open_home(tmp_path / "fresh"))
    assert registry.roles() == [] and registry.adapters() == []
    assert not (tmp_path / "fresh" / ROLES_FILE).exists()  # reading never creates it
    registry.add_role(RoleSpec(id="plain", description="the base model with a prompt", system_prompt="Be brief."))
    assert RoleRegistry.open(tmp_path / "fresh").role("plain").system_prompt == "Be brief."


def test_adding_twice_needs_replace(home):
    registry = RoleRegistry.open(home)
    with pytest.raises(RegistryError, match=f"role 'runner' already exists in {home.root / ROLES_FILE}"):
        registry.add_role(RoleSpec(id="runner"))
    registry.add_role(RoleSpec(id="runner", description="new"), replace=True)
    assert RoleRegistry.open(home).role("runner").description == "new"
    with pytest.raises(RegistryError, match="adapter 'sport' already exists"):
        registry.add_adapter(AdapterSpec("sport", Path("x")))


def test_konsilium_yaml_definitions_are_changed_by_editing_it(home):
    registry = RoleRegistry.open(home)
    edit = f"is defined in {home.config_path}; edit that file"
    for action in (
        lambda: registry.add_role(RoleSpec(id="coach"), replace=True),
        lambda: registry.remove_role("coach"),
        lambda: registry.add_adapter(AdapterSpec("core", Path("x")), replace=True),
    ):
        with pytest.raises(RegistryError, match=edit):
            action()
    with pytest.raises(RegistryError, match="edit that file to remove it"):
        registry.remove_adapter("core")


def test_an_adapter_in_use_is_not_removed_and_the_roles_are_named(home):
    registry = RoleRegistry.open(home)
    with pytest.raises(RegistryError, match="adapter 'sport' is used by roles coach, runner; remove or change"):
        registry.remove_adapter("sport")
    with pytest.raises(UnknownAdapterNameError):
        registry.remove_adapter("ghost")
    with pytest.raises(UnknownRoleError):
        registry.remove_role("ghost")


def test_a_role_needs_its_adapters_defined(home):
    registry = RoleRegistry.open(home)
    with pytest.raises(RegistryError, match="role 'x' uses adapter 'nope', which is not defined; add it first"):
        registry.add_role(RoleSpec(id="x", adapters={"nope": 1.0}))
    with pytest.raises(RoleSpecError, match="roles.konsilium: the id is the base model's id"):
        registry.add_role(RoleSpec(id="konsilium"))
    write(
        home.root / ROLES_FILE,
        {"adapters": {"sport": "/abs/sport"}, "roles": {"runner": {"adapters": {"missing": 1.0}}}},
    )
    with pytest.raises(RegistryError) as info:
        RoleRegistry.open(home)
    assert "role 'runner'" in str(info.value) and "adapter 'missing', which is not defined" in str(info.value)
    assert str(home.root / ROLES_FILE) in str(info.value)


def test_the_same_id_in_both_files_is_an_error_naming_both(home):
    write(home.root / ROLES_FILE, {"roles": {"coach": {}}, "adapters": {"sport": "s"}})
    with pytest.raises(RegistryError) as info:
        RoleRegistry.open(home)
    assert str(info.value) == (
        f"role 'coach' is defined in both {home.config_path} and {home.root / ROLES_FILE}; keep only one"
    )
    # Lenient opening (what the CLI does): konsilium.yaml wins, the conflict is reported, and it can be repaired.
    registry = RoleRegistry.open(home, strict=False)
    assert registry.problems and registry.role("coach").description == "sport"
    registry.remove_role("coach")  # removes the roles.yaml copy
    assert RoleRegistry.open(home).role("coach").description == "sport"


@pytest.mark.parametrize(
    "text, message",
    [
        ("roles: [unclosed\n", "invalid YAML"),
        ("- a\n", "expected a mapping with `adapters:` and `roles:`"),
        ("rolez: {}\n", "rolez: unknown section; allowed sections: adapters, roles"),
        ("roles:\n  r:\n    label: odd\n", "roles.r.label: 'odd' is not allowed"),
        ("roles:\n  konsilium: {}\n", "roles.konsilium: the id is the base model's id"),
        ("adapters:\n  a: {tier: gpu}\n", "adapters.a.path: required"),
    ],
)
def test_a_bad_roles_yaml_is_reported_with_its_path(home, text, message):
    (home.root / ROLES_FILE).write_text(text)
    with pytest.raises(RegistryError) as info:
        RoleRegistry.open(home)
    assert str(info.value).startswith(str(home.root / ROLES_FILE)) and message in str(info.value)


# --- live reload: a running server sees what the CLI (another process) wrote --------------------------------------


def test_roles_and_adapters_added_with_the_cli_appear_in_a_running_registry(home):
    server = RoleRegistry.open(home)
    cli = RoleRegistry.open(home.root)  # the CLI's own instance, as in another process
    cli.add_adapter(AdapterSpec("law", Path("adapters/law"), tier="disk"))
    cli.add_role(RoleSpec(id="lawyer", adapters={"law": 1.0}))
    changes = server.refresh(min_interval_s=0)
    assert changes == RegistryChanges(adapters_added=["law"], roles_added=["lawyer"])
    assert "lawyer" in server and server.adapter("law").path == home.root / "adapters" / "law"
    assert server.model_ids() == ["konsilium", "coach", "lawyer", "runner"]
    assert not server.refresh(min_interval_s=0)  # nothing new: nothing to do
    cli.remove_role("lawyer")
    cli.remove_adapter("law")
    assert server.refresh(min_interval_s=0) == RegistryChanges(adapters_removed=["law"], roles_removed=["lawyer"])
    assert "lawyer" not in server


def test_a_changed_adapter_names_the_roles_that_use_it_and_hand_edits_count_too(home):
    server = RoleRegistry.open(home)
    write(
        home.root / ROLES_FILE,
        {
            "adapters": {"sport": {"path": "/abs/sport-v2", "tier": "gpu"}},
            "roles": {"runner": {"adapters": {"sport": 1.5}}},
        },
    )
    changes = server.refresh(min_interval_s=0)
    assert changes == RegistryChanges(adapters_changed=["sport"], roles_changed=["coach", "runner"])
    assert server.adapter("sport").path == Path("/abs/sport-v2") and not server.adapter("sport").pinned
    config = yaml.safe_load(home.config_path.read_text())
    config["roles"]["coach"]["description"] = "marathons"
    write(home.config_path, config)
    assert server.refresh(min_interval_s=0) == RegistryChanges(roles_changed=["coach"])
    assert server.role("coach").description == "marathons"
    assert "changed: coach" in str(RegistryChanges(roles_changed=["coach"]))


@pytest.mark.parametrize(
    "file, text, message",
    [
        (ROLES_FILE, "roles:\n  runner: {adapters: {sport: 1.5\n", "invalid YAML"),  # half written
        (
            ROLES_FILE,
            "adapters: {sport: /abs/sport}\nroles: {runner: {adapters: {ghost: 1.0}}}\n",
            "adapter 'ghost', which is not defined",
        ),
        ("konsilium.yaml", "server: {port: many}\n", "server.port"),
    ],
)
def test_an_invalid_file_keeps_the_roles_in_force_and_logs_one_error(home, caplog, file, text, message):
    server = RoleRegistry.open(home)
    before = (server.roles(), server.adapters())
    (home.root / file).write_text(text)
    with caplog.at_level("ERROR", logger="konsilium.roles"):
        assert not server.refresh(min_interval_s=0)
        assert not server.refresh(min_interval_s=0)  # the same broken file is reported once
    assert (server.roles(), server.adapters()) == before
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and str(home.root / file) in errors[0] and message in errors[0]
    assert errors[0].endswith("the roles and adapters in force stay until a valid version is saved")
    assert server.reload_error == errors[0]
    # The next valid version is picked up.
    write(home.root / ROLES_FILE, {"adapters": {"sport": "/abs/sport"}, "roles": {}})
    if file != ROLES_FILE:
        write(
            home.config_path, yaml.safe_load(home.config_path.read_text().replace("server: {port: many}\n", "")) or {}
        )
    changes = server.refresh(min_interval_s=0)
    assert "runner" in changes.roles_removed and server.reload_error is None and "runner" not in server


def test_refresh_looks_at_the_files_at_most_once_per_interval(home):
    server = RoleRegistry.open(home)
    RoleRegistry.open(home).add_role(RoleSpec(id="lawyer"))
    assert not server.refresh(min_interval_s=3600)  # just opened: not looked at again yet
    assert "lawyer" not in server
    assert server.refresh(min_interval_s=0).roles_added == ["lawyer"]


def test_a_registry_writing_the_file_itself_has_nothing_to_reload(home):
    registry = RoleRegistry.open(home)
    registry.add_role(RoleSpec(id="lawyer"))
    assert not registry.refresh(min_interval_s=0) and "lawyer" in registry
