"""What a role and an adapter are, as written in `konsilium.yaml` / `roles.yaml`, checked strictly.

Every check lives in `__post_init__`, so a spec built in code (the CLI, tests) is held to the same rules as
one read from YAML; messages name the key path (`roles.lawyer.adapters.core: ...`) like `config.py` does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import date
from pathlib import Path
from typing import Any, Literal

from ..errors import ConfigError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
NAME_RULE = "1-64 characters: letters, digits, '.', '_', '-', starting with a letter or digit"
# A collection is a LanceDB table name: the index's own rule (index.lance_store), no dots, so never a path.
COLLECTION_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
COLLECTION_RULE = "1-64 characters: letters, digits, '_' or '-'"
TIERS = ("gpu", "cpu", "disk")
LABELS = ("neutral", "alternative")
ROUTING_ID = "auto"  # the model id that asks the router to pick a role
VERSION_SEP = "@"  # `sport@2`: version 2 of role `sport`; never in a name, so never a role id
_VERSIONED_ID = re.compile(rf"^(?P<role>.+){VERSION_SEP}(?P<version>[0-9]+)$")
MAX_WEIGHT = 2.0

Tier = Literal["gpu", "cpu", "disk"]
Label = Literal["neutral", "alternative"]


class RoleSpecError(ConfigError):
    """A bad role or adapter definition; the message names the key path."""


def check_name(where: str, value: Any) -> str:
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise RoleSpecError(f"{where}: {value!r} is not a valid name ({NAME_RULE})")
    return value


def _expect(where: str, value: Any, kind: type | tuple[type, ...]) -> Any:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    # bool is an int in Python; `pinned: 1` or `weight: true` are mistakes worth naming.
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise RoleSpecError(f"{where}: expected {names}, got {type(value).__name__} {value!r}")
    return value


def _strings(where: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)):
        raise RoleSpecError(f"{where}: expected a list of strings, got {type(value).__name__} {value!r}")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise RoleSpecError(f"{where}[{i}]: expected a non-empty string, got {item!r}")
    return tuple(item.strip() for item in value)


def _body(cls, where: str, data: Any, skip: tuple[str, ...]) -> dict:
    """The YAML mapping as constructor keywords: unknown keys rejected, `null` meaning "not given"."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise RoleSpecError(f"{where}: expected a mapping, got {type(data).__name__} {data!r}")
    allowed = [f.name for f in fields(cls) if f.name not in skip]
    for key in data:
        if key not in allowed:
            raise RoleSpecError(f"{where}.{key}: unknown key; allowed keys: {', '.join(allowed)}")
    # Lists become tuples only when they are lists: a bare string stays one so the check can name it.
    return {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if v is not None}


@dataclass(frozen=True)
class AdapterSpec:
    """A PEFT LoRA folder and where it should rest in the tiered cache (`pinned`: always on the device)."""

    name: str
    path: Path
    tier: Tier = "cpu"
    pinned: bool = False

    def __post_init__(self):
        where = f"adapters.{check_name('adapters', self.name)}"
        _expect(f"{where}.path", self.path, (str, Path))
        if not str(self.path).strip():
            raise RoleSpecError(f"{where}.path: must not be empty")
        object.__setattr__(self, "path", Path(self.path).expanduser())
        _expect(f"{where}.tier", self.tier, str)
        if self.tier not in TIERS:
            raise RoleSpecError(f"{where}.tier: {self.tier!r} is not allowed; allowed values: {', '.join(TIERS)}")
        _expect(f"{where}.pinned", self.pinned, bool)

    @classmethod
    def from_dict(cls, name: str, data: Any) -> AdapterSpec:
        where = f"adapters.{check_name('adapters', name)}"
        if isinstance(data, str):  # `core: adapters/core` is short for `core: {path: adapters/core}`
            data = {"path": data}
        body = _body(cls, where, data, skip=("name",))
        if "path" not in body:
            raise RoleSpecError(f"{where}.path: required (the adapter's PEFT folder)")
        return cls(name=name, **body)

    def to_dict(self) -> dict:
        """The YAML body (the name is its key)."""
        return {"path": str(self.path), "tier": self.tier, "pinned": self.pinned}


@dataclass(frozen=True)
class RetrievalScope:
    """Which notes a role answers from. `collections=None`: the default collection. `memory`: whether the
    user's memories (from conversations) go into the role's prompts and its exchanges teach new ones."""

    collections: tuple[str, ...] | None = None
    folders: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    enabled: bool = True
    memory: bool = True

    def __post_init__(self):
        for key, value in _scope_fields("retrieval", vars(self)).items():
            object.__setattr__(self, key, value)

    @classmethod
    def from_dict(cls, data: Any, where: str = "retrieval") -> RetrievalScope:
        # Checked here with the full key path; __post_init__ then finds nothing left to complain about.
        return cls(**_scope_fields(where, _body(cls, where, data, skip=())))

    def to_dict(self) -> dict:
        return {
            "collections": list(self.collections) if self.collections is not None else None,
            "folders": list(self.folders),
            "tags": list(self.tags),
            "enabled": self.enabled,
            "memory": self.memory,
        }


@dataclass(frozen=True)
class VersionSpec:
    """One version of a role: the weights it answers with, the adapter that version brought (`<role>-v<N>`; None
    for the version that recorded the role as it was before it was first trained), when it was recorded (ISO
    time) and the training run's card (a path), if any."""

    adapters: dict[str, float]
    adapter: str | None = None
    created: str = ""
    card: str | None = None

    def __post_init__(self):
        for key, value in _version_fields("version", vars(self)).items():
            object.__setattr__(self, key, value)

    @classmethod
    def from_dict(cls, data: Any, where: str = "version") -> VersionSpec:
        # Checked here with the full key path; __post_init__ then finds nothing left to complain about.
        body = _body(cls, where, data, skip=())
        if "adapters" not in body:
            raise RoleSpecError(f"{where}.adapters: required (the version's adapter weights)")
        return cls(**_version_fields(where, body))

    def to_dict(self) -> dict:
        return {"adapter": self.adapter, "adapters": dict(self.adapters), "created": self.created, "card": self.card}


@dataclass(frozen=True)
class RoleSpec:
    """A role: the model id clients ask for, answering with a weighted stack of adapters over the base model."""

    id: str
    description: str = ""
    adapters: dict[str, float] = field(default_factory=dict)  # adapter name -> weight; empty: the base model
    system_prompt: str = ""
    retrieval: RetrievalScope | None = None  # None: the server's default retrieval
    label: Label = "neutral"
    disclaimer: str = ""
    topics: tuple[str, ...] = ()  # allowed topics; empty: any
    blocked_topics: tuple[str, ...] = ()
    thinking: bool | None = None  # thinking mode for this role's answers (None: the request's or the template's)
    # Trained versions (roles/versions.py): `adapters` is then always the current version's weights. A role without
    # versions has neither key in its YAML, exactly as before versions existed.
    version: int | None = None
    versions: dict[int, VersionSpec] = field(default_factory=dict)

    def __post_init__(self):
        check_name("roles", self.id)
        where = f"roles.{self.id}"
        if self.id == ROUTING_ID:
            raise RoleSpecError(f"{where}: the id {ROUTING_ID!r} is reserved (clients send it to let the router pick)")
        for key in ("description", "system_prompt", "disclaimer"):
            _expect(f"{where}.{key}", getattr(self, key), str)
        object.__setattr__(self, "adapters", _weights(f"{where}.adapters", self.adapters))
        if isinstance(self.retrieval, Mapping):
            object.__setattr__(self, "retrieval", RetrievalScope.from_dict(self.retrieval, f"{where}.retrieval"))
        elif self.retrieval is not None:
            _expect(f"{where}.retrieval", self.retrieval, RetrievalScope)
        _expect(f"{where}.label", self.label, str)
        if self.label not in LABELS:
            raise RoleSpecError(f"{where}.label: {self.label!r} is not allowed; allowed values: {', '.join(LABELS)}")
        if self.label == "alternative" and not self.disclaimer.strip():
            raise RoleSpecError(
                f"{where}.disclaimer: required for an 'alternative' role: its answers are shown with this "
                "disclaimer so readers know they are not the neutral view"
            )
        object.__setattr__(self, "topics", _strings(f"{where}.topics", self.topics))
        object.__setattr__(self, "blocked_topics", _strings(f"{where}.blocked_topics", self.blocked_topics))
        if self.thinking is not None:
            _expect(f"{where}.thinking", self.thinking, bool)
        overlap = sorted(set(self.topics) & set(self.blocked_topics))
        if overlap:
            raise RoleSpecError(f"{where}.blocked_topics: {', '.join(overlap)} also listed in topics")
        self._check_versions(where)

    def _check_versions(self, where: str) -> None:
        versions = _expect(f"{where}.versions", self.versions, Mapping)
        for number in versions:
            if isinstance(number, bool) or not isinstance(number, int) or number < 1:
                raise RoleSpecError(f"{where}.versions.{number}: a version is a whole number from 1 on")
        checked = {
            n: versions[n]
            if isinstance(versions[n], VersionSpec)
            else VersionSpec.from_dict(versions[n], f"{where}.versions.{n}")
            for n in sorted(versions)
        }
        object.__setattr__(self, "versions", checked)
        if not checked:
            if self.version is not None:
                raise RoleSpecError(f"{where}.version: given, but the role has no versions")
            return
        _expect(f"{where}.version", self.version, int)
        if self.version not in checked:
            known = ", ".join(map(str, checked))
            raise RoleSpecError(f"{where}.version: {self.version} is not one of the role's versions ({known})")
        if self.adapters != checked[self.version].adapters:  # one truth: what `sport` answers with is `sport@N`'s
            raise RoleSpecError(
                f"{where}.adapters: {self.adapters} differs from versions.{self.version}.adapters "
                f"{checked[self.version].adapters} (the current version's weights); make them the same"
            )

    @property
    def model_id(self) -> str:
        """The id that names exactly what answers: `sport@2` for a versioned role, else the role id."""
        return self.id if self.version is None else versioned_id(self.id, self.version)

    def used_adapters(self) -> list[str]:
        """Every adapter the role answers with in any of its versions (the current ones first)."""
        names = dict.fromkeys(self.adapters)
        for version in self.versions.values():
            names.update(dict.fromkeys(version.adapters))
        return list(names)

    def at_version(self, version: int) -> RoleSpec:
        """The role answering with version `version`'s weights (a KeyError for a version it does not have)."""
        return replace(self, version=version, adapters=dict(self.versions[version].adapters))

    @classmethod
    def from_dict(cls, role_id: str, data: Any) -> RoleSpec:
        body = _body(cls, f"roles.{check_name('roles', role_id)}", data, skip=("id",))
        return cls(id=role_id, **body)

    def to_dict(self) -> dict:
        """The YAML body (the id is its key). `retrieval: None`: the server's default retrieval."""
        return {
            "description": self.description,
            "adapters": dict(self.adapters),
            "system_prompt": self.system_prompt,
            "label": self.label,
            "disclaimer": self.disclaimer,
            "topics": list(self.topics),
            "blocked_topics": list(self.blocked_topics),
            "retrieval": self.retrieval.to_dict() if self.retrieval is not None else None,
            **({"thinking": self.thinking} if self.thinking is not None else {}),
            **(
                {"version": self.version, "versions": {n: v.to_dict() for n, v in self.versions.items()}}
                if self.versions
                else {}
            ),
        }


def _scope_fields(where: str, values: Mapping) -> dict:
    checked = dict(values)
    if checked.get("collections") is not None:
        checked["collections"] = _strings(f"{where}.collections", checked["collections"])
        for i, name in enumerate(checked["collections"]):
            if not COLLECTION_RE.match(name):
                raise RoleSpecError(f"{where}.collections[{i}]: {name!r} is not a collection name ({COLLECTION_RULE})")
    for key in ("folders", "tags"):
        if key in checked:
            checked[key] = _strings(f"{where}.{key}", checked[key])
    if "tags" in checked:  # Obsidian writes tags as `#sport`; the index keeps them without the hash
        checked["tags"] = _strings(f"{where}.tags", [tag.lstrip("#") for tag in checked["tags"]])
    for key in ("enabled", "memory"):
        if key in checked:
            _expect(f"{where}.{key}", checked[key], bool)
    return checked


def _version_fields(where: str, values: Mapping) -> dict:
    checked = dict(values)
    checked["adapters"] = _weights(f"{where}.adapters", checked.get("adapters"))
    adapter = checked.get("adapter")
    if adapter is not None:
        check_name(f"{where}.adapter", adapter)
        if adapter not in checked["adapters"]:
            raise RoleSpecError(f"{where}.adapter: {adapter!r} is not among the version's adapters")
    if isinstance(checked.get("created"), date):  # YAML reads an unquoted `2025-06-29T10:00:00Z` as a datetime
        checked["created"] = checked["created"].isoformat()
    if "created" in checked:
        _expect(f"{where}.created", checked["created"], str)
    if checked.get("card") is not None:
        _expect(f"{where}.card", checked["card"], str)
    return checked


def _weights(where: str, value: Any) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise RoleSpecError(
            f"{where}: expected a mapping of adapter name to weight (e.g. {{core: 1.0, sport: 0.8}}), "
            f"got {type(value).__name__} {value!r}"
        )
    weights = {}
    for name, weight in value.items():
        check_name(where, name)
        _expect(f"{where}.{name}", weight, (int, float))
        if not 0 < weight <= MAX_WEIGHT:
            raise RoleSpecError(f"{where}.{name}: weight {weight!r} is outside (0, {MAX_WEIGHT:g}]")
        weights[name] = float(weight)
    return weights


def versioned_id(role_id: str, version: int) -> str:
    return f"{role_id}{VERSION_SEP}{version}"


def split_model_id(model: str) -> tuple[str, int | None]:
    """`sport@2` -> ("sport", 2); any other id -> (id, None)."""
    match = _VERSIONED_ID.match(model)
    return (match["role"], int(match["version"])) if match else (model, None)


def check_role_id_free(role: RoleSpec, base_model_id: str) -> None:
    """A role id equal to the base model's id would make that id ambiguous in `/v1/models`."""
    if role.id == base_model_id:
        raise RoleSpecError(
            f"roles.{role.id}: the id is the base model's id (server.model_id); pick another id for the role"
        )


def parse_adapters(raw: Any, where: str = "adapters") -> dict[str, AdapterSpec]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise RoleSpecError(f"{where}: expected a mapping of adapter name to {{path, tier, pinned}}")
    return {name: AdapterSpec.from_dict(name, body) for name, body in raw.items()}


def parse_roles(raw: Any, base_model_id: str | None = None, where: str = "roles") -> dict[str, RoleSpec]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise RoleSpecError(f"{where}: expected a mapping of role id to its definition")
    roles = {role_id: RoleSpec.from_dict(role_id, body) for role_id, body in raw.items()}
    if base_model_id is not None:
        for role in roles.values():
            check_role_id_free(role, base_model_id)
    return roles
