"""Trained versions of a role: a trained adapter becomes `sport@2`, `sport` answers as its current version, the
older ones stay addressable (`model: "sport@1"`), and a rollback makes an older one current again.

Versions live in roles.yaml, inside the role (`version:` the current number, `versions:` each number's weights,
the adapter it brought, when, and the training run's card); see `spec.VersionSpec`. Every change is one write of
that file through the registry, so a running server picks it up like any `konsilium roles add`.

Roles defined by hand in konsilium.yaml are not versioned here: the CLI never rewrites that file (its comments
would be lost), and a copy in roles.yaml would define the id twice. Versioning one fails and says to move its
entry to roles.yaml. Versions written by hand in konsilium.yaml are read (and addressable) all the same.

A role that existed before its first trained version keeps what it was as version 1 (bringing no adapter), so a
rollback can always return to the untrained role; its first trained adapter is then `<role>-v2`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from ..config import open_home
from .registry import RegistryError, RoleRegistry, UnknownVersionError
from .spec import AdapterSpec, RoleSpec, VersionSpec, check_name, versioned_id

DEFAULT_DESCRIPTION = "trained with konsilium train"


@dataclass(frozen=True)
class RoleVersion:
    role: str  # "sport"
    version: int  # 2
    model_id: str  # "sport@2"
    adapter: str | None  # the adapter this version brought, e.g. "sport-v2"; None: the role as it was untrained
    adapters: dict[str, float]  # the weights of this version
    created: str  # ISO time
    card: str | None  # path of the run card, if any
    current: bool = False  # the version the role id answers with now

    def to_json(self) -> dict:
        return {
            "role": self.role,
            "version": self.version,
            "model_id": self.model_id,
            "adapter": self.adapter,
            "adapters": dict(self.adapters),
            "created": self.created,
            "card": self.card,
            "current": self.current,
        }


def add_version(
    registry: RoleRegistry, role_id: str, adapter_path: Path, *, card: str | None = None, description: str = ""
) -> RoleVersion:
    """Register the PEFT folder `adapter_path` as adapter `<role>-v<N>` (tier cpu) and make it the role's new
    current version N. A new role is created with it alone (weight 1.0, `description` or a default); an existing
    role keeps its stack with the adapter its earlier versions brought swapped for the new one at the same weight
    (a stacked `core` stays), or gets the new one added at 1.0 when none did. The folder is checked first (a
    broken one is refused with the reason); nothing is written unless everything fits."""
    from .validation import AdapterError, check_info, inspect_adapter

    _refresh(registry)
    check_name("roles", role_id)
    role = _writable(registry, role_id, "add a version to") if role_id in registry else None
    versions = dict(role.versions) if role is not None else {}
    now = _now()
    if role is not None and not versions:  # what the role was before training stays reachable as version 1
        versions[1] = VersionSpec(adapters=dict(role.adapters), created=now)
    number = max(versions, default=0) + 1
    name = check_name("adapters", f"{role_id}-v{number}")
    if name in {spec.name for spec in registry.adapters()}:
        raise RegistryError(
            f"adapter {name!r} (version {number} of role {role_id!r}) already exists in "
            f"{registry.adapter_source(name)}; remove it first with `konsilium adapters remove {name}`"
        )
    max_rank = open_home(registry.home_root, create=False).config.adapter_cache.max_rank
    problems = check_info(inspect_adapter(adapter_path), max_rank)
    if problems:
        raise AdapterError(f"adapter {name!r} refused: {adapter_path}: " + "; ".join(problems))
    weights = _weights_with(role, versions, name)
    card = str(card) if card is not None else None  # a Path is welcome too
    versions[number] = VersionSpec(adapters=weights, adapter=name, created=now, card=card)
    if role is None:
        role = RoleSpec(id=role_id, description=description or DEFAULT_DESCRIPTION)
    updated = replace(role, adapters=weights, version=number, versions=versions)
    adapter = AdapterSpec(name=name, path=registry.stored_path(Path(adapter_path)), tier="cpu")
    registry.add_role(updated, replace=True, new_adapters=[adapter])
    return _role_version(updated, number)


def list_versions(registry: RoleRegistry, role_id: str) -> list[RoleVersion]:
    """The role's versions, oldest first (empty for a role never trained)."""
    role = registry.role(role_id)
    return [_role_version(role, number) for number in role.versions]


def rollback(registry: RoleRegistry, role_id: str, to: int | None = None) -> RoleVersion:
    """Make version `to` (None: the one before the current) the role's current version; the others stay. Rolling
    to the current version changes nothing."""
    _refresh(registry)
    role = _writable(registry, role_id, "roll back")
    if not role.versions:
        raise RegistryError(f"role {role_id!r} has no versions to roll back to (`konsilium train` adds them)")
    if to is None:
        older = [n for n in role.versions if n < role.version]
        if not older:
            raise RegistryError(
                f"role {role_id!r} is at its first version {role.model_id}; there is no older one to roll back to"
            )
        to = older[-1]
    if to not in role.versions:
        raise UnknownVersionError(role, to)
    if to != role.version:
        registry.add_role(role.at_version(to), replace=True)
    return _role_version(registry.role(role_id), to)


def _refresh(registry: RoleRegistry) -> None:
    """The files as they are now (the CLI or a hand edit may have changed them since the registry was opened); one
    that cannot be read now is an error rather than overwritten with what the registry had before."""
    registry.refresh(min_interval_s=0)
    if registry.reload_error is not None:
        raise RegistryError(registry.reload_error)


def _writable(registry: RoleRegistry, role_id: str, action: str) -> RoleSpec:
    role = registry.role(role_id)
    if registry.role_source(role_id) == registry.config_path:
        raise RegistryError(
            f"role {role_id!r} is defined in {registry.config_path}, which konsilium never rewrites; to {action} "
            f"it, move its entry from that file's `roles:` to {registry.file_path} (or edit its versions by hand)"
        )
    return role


def _weights_with(role: RoleSpec | None, versions: dict[int, VersionSpec], name: str) -> dict[str, float]:
    """The current stack with the adapters earlier versions brought replaced by `name` at the first one's weight
    and place, or `name` at 1.0 added when the stack holds none of them."""
    if role is None:
        return {name: 1.0}
    brought = {v.adapter for v in versions.values() if v.adapter is not None}
    weights: dict[str, float] = {}
    for adapter, weight in role.adapters.items():
        if adapter not in brought:
            weights[adapter] = weight
        elif name not in weights:
            weights[name] = weight
    if name not in weights:
        weights[name] = 1.0
    return weights


def _role_version(role: RoleSpec, number: int) -> RoleVersion:
    version = role.versions[number]
    return RoleVersion(
        role=role.id,
        version=number,
        model_id=versioned_id(role.id, number),
        adapter=version.adapter,
        adapters=dict(version.adapters),
        created=version.created,
        card=version.card,
        current=number == role.version,
    )


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")
