"""All roles and adapters of a home: those in `konsilium.yaml` (edited by hand) and those in `roles.yaml`
(written by `konsilium roles|adapters add|remove`). The two files never define the same id, so there is no
precedence to remember, and the CLI never rewrites the hand-edited file (its comments stay).

A role may have trained versions (roles/versions.py): `sport@1`, `sport@2`, ... are then model ids as well, each
answering with that version's adapters; `sport` answers with the current one.

A running server calls `refresh()` on every request: one stat of each file (at most every half second) tells
whether either changed, and only then are they read again, so roles added with the CLI appear without a restart.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..config import Home, open_home
from ..errors import ConfigError, ModelNotFoundError
from .spec import (
    AdapterSpec,
    RoleSpec,
    check_role_id_free,
    parse_adapters,
    parse_roles,
    split_model_id,
    versioned_id,
)

ROLES_FILE = "roles.yaml"
_HEADER = (
    "# Roles and adapters added with `konsilium roles add` / `konsilium adapters add`.\n"
    "# Same shape as the `roles:` and `adapters:` sections of konsilium.yaml; an id may be in only one of them.\n"
)


log = logging.getLogger("konsilium.roles")


class RegistryError(ConfigError):
    """Roles or adapters that do not fit together (duplicates, dangling references, read-only definitions)."""


class UnknownRoleError(RegistryError):
    def __init__(self, role_id: str, known: list[str]):
        super().__init__(f"unknown role {role_id!r}; known roles: {', '.join(known) or 'none'}")
        self.role_id, self.known = role_id, known


class UnknownVersionError(ModelNotFoundError, RegistryError):
    """`sport@7` for a role without a version 7: a model id that does not exist (HTTP 404 model_not_found) and, for
    the CLI, bad input (a ValueError) like any other registry error."""

    def __init__(self, role: RoleSpec, version: int):
        known = ", ".join(versioned_id(role.id, n) for n in role.versions)
        if known:
            message = f"role {role.id!r} has no version {version}; its versions: {known} (current: {role.model_id})"
        else:
            message = f"role {role.id!r} has no versions; ask for {role.id!r} itself"
        super().__init__(message)
        self.role_id, self.version, self.known = role.id, version, list(role.versions)


class UnknownAdapterNameError(RegistryError):
    def __init__(self, name: str, known: list[str]):
        super().__init__(f"unknown adapter {name!r}; known adapters: {', '.join(known) or 'none'}")
        self.name, self.known = name, known


@dataclass
class RegistryChanges:
    """What a `refresh` found changed (names, sorted); false when nothing did."""

    adapters_added: list[str] = field(default_factory=list)
    adapters_removed: list[str] = field(default_factory=list)
    adapters_changed: list[str] = field(default_factory=list)  # another path, tier or pin
    roles_added: list[str] = field(default_factory=list)
    roles_removed: list[str] = field(default_factory=list)
    roles_changed: list[str] = field(default_factory=list)  # a new definition, or an adapter of theirs changed

    def __bool__(self) -> bool:
        return any(getattr(self, name) for name in self.__dataclass_fields__)

    def __str__(self) -> str:
        parts = [f"{name.replace('_', ' ')}: {', '.join(v)}" for name, v in vars(self).items() if v]
        return "; ".join(parts) or "nothing changed"


@dataclass
class _Definitions:
    """Both files' contents, swapped in one assignment so a reader never sees half of a reload."""

    config_adapters: dict[str, AdapterSpec]
    config_roles: dict[str, RoleSpec]
    file_adapters: dict[str, AdapterSpec]
    file_roles: dict[str, RoleSpec]


_Stamp = tuple[int, int, int] | None  # (mtime_ns, size, inode), None: no file


def _stamp(path: Path) -> _Stamp:
    """What tells a changed file: the inode changes at every atomic replace (the CLI's writes), even within one
    tick of the file system's clock."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


def roles_file(home: Home) -> Path:
    return home.root / ROLES_FILE


def _read_file(path: Path, base_model_id: str) -> tuple[dict[str, AdapterSpec], dict[str, RoleSpec]]:
    if not path.exists():
        return {}, {}
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise RegistryError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise RegistryError(f"{path}: expected a mapping with `adapters:` and `roles:`")
    unknown = sorted(set(raw) - {"adapters", "roles"})
    if unknown:
        raise RegistryError(f"{path}: {unknown[0]}: unknown section; allowed sections: adapters, roles")
    try:
        return parse_adapters(raw.get("adapters")), parse_roles(raw.get("roles"), base_model_id)
    except ConfigError as exc:  # name the file: the same key path could be in konsilium.yaml
        raise RegistryError(f"{path}: {exc}") from exc


class RoleRegistry:
    """Look-ups for the server and engine; add/remove (roles.yaml only) for the CLI."""

    def __init__(
        self,
        home_root: Path,
        base_model_id: str,
        config_path: Path,
        config_adapters: dict[str, AdapterSpec],
        config_roles: dict[str, RoleSpec],
        file_path: Path,
        file_adapters: dict[str, AdapterSpec],
        file_roles: dict[str, RoleSpec],
        strict: bool = True,
    ):
        self.home_root, self.base_model_id = home_root, base_model_id
        self.config_path, self.file_path = config_path, file_path
        self._defs = _Definitions(config_adapters, config_roles, file_adapters, file_roles)
        self.strict = strict
        self.problems: list[str] = []  # with strict=False: what strict mode would have raised
        self.reload_error: str | None = None  # why the files as they are now could not be used (refresh)
        self._stamps = self._stat()  # `open` sets the stamps taken before it read the files
        self._checked_at = time.monotonic()
        self._refresh_lock = threading.Lock()
        for kind, ours, theirs in (
            ("role", config_roles, file_roles),
            ("adapter", config_adapters, file_adapters),
        ):
            for key in sorted(set(ours) & set(theirs)):
                self._report(f"{kind} {key!r} is defined in both {config_path} and {file_path}; keep only one", strict)
        for role in self.roles():
            for name in role.used_adapters():
                if name not in self._all_adapters():
                    self._report(
                        f"role {role.id!r} ({self.role_source(role.id)}) uses adapter {name!r}, which is not "
                        "defined (add it under `adapters:` or with `konsilium adapters add`)",
                        strict,
                    )

    def _report(self, message: str, strict: bool) -> None:
        if strict:
            raise RegistryError(message)
        self.problems.append(message)

    @classmethod
    def open(cls, home: Home | Path | str | None = None, strict: bool = True) -> RoleRegistry:
        """Both files of `home` merged. strict=False collects conflicts in `.problems` instead of raising, so
        the CLI can still list and remove what is there (a bad file is always an error)."""
        if not isinstance(home, Home):
            home = open_home(home)
        return cls._load(home, home.config.server.model_id, strict, stamps=(_stamp(home.config_path), None))

    @classmethod
    def _load(cls, home: Home, base_model_id: str, strict: bool, stamps: tuple[_Stamp, _Stamp]) -> RoleRegistry:
        file_path = roles_file(home)
        stamps = (stamps[0], _stamp(file_path))  # taken before reading: a write after it is seen next time
        file_adapters, file_roles = _read_file(file_path, base_model_id)
        registry = cls(
            home_root=home.root,
            base_model_id=base_model_id,
            config_path=home.config_path,
            # konsilium.yaml's sections were checked by config.parse_settings(); parsing again gives the dataclasses.
            config_adapters=parse_adapters(home.config.adapters),
            config_roles=parse_roles(home.config.roles, base_model_id),
            file_path=file_path,
            file_adapters=file_adapters,
            file_roles=file_roles,
            strict=strict,
        )
        registry._stamps = stamps
        return registry

    # --- live reload -----------------------------------------------------------------------------------------

    @property
    def _config_adapters(self) -> dict[str, AdapterSpec]:
        return self._defs.config_adapters

    @property
    def _config_roles(self) -> dict[str, RoleSpec]:
        return self._defs.config_roles

    @property
    def _file_adapters(self) -> dict[str, AdapterSpec]:
        return self._defs.file_adapters

    @property
    def _file_roles(self) -> dict[str, RoleSpec]:
        return self._defs.file_roles

    def _paths(self) -> tuple[Path, Path]:
        return self.config_path, self.file_path

    def _stat(self) -> tuple[_Stamp, _Stamp]:
        return _stamp(self.config_path), _stamp(self.file_path)

    def refresh(self, min_interval_s: float = 0.5) -> RegistryChanges:
        """Reload both files if either changed since the last look (checked at most every `min_interval_s`) and
        say what changed. Files that are now invalid (half written, a typo, a dangling reference) keep the
        definitions in force and log one error; the next valid version is picked up."""
        now = time.monotonic()
        if now - self._checked_at < min_interval_s:
            return RegistryChanges()
        with self._refresh_lock:
            self._checked_at = now
            stamps = self._stat()
            if stamps == self._stamps:
                return RegistryChanges()
            edited = [str(p) for p, old, new in zip(self._paths(), self._stamps, stamps, strict=True) if old != new]
            self._stamps = stamps  # an invalid version is reported once, not on every request
            try:
                home = open_home(self.home_root, create=False)
                fresh = self._load(home, self.base_model_id, self.strict, stamps)
            except (ConfigError, OSError) as exc:  # RegistryError too
                self.reload_error = (
                    f"{' and '.join(edited)} changed but cannot be used ({exc}); the roles and "
                    "adapters in force stay until a valid version is saved"
                )
                log.error("%s", self.reload_error)
                return RegistryChanges()
            changes = self._changes_to(fresh)
            self._defs, self.problems, self.reload_error = fresh._defs, fresh.problems, None
            if changes:
                log.info("roles reloaded: %s", changes)
            return changes

    def _changes_to(self, fresh: RoleRegistry) -> RegistryChanges:
        old_adapters = {a.name: a for a in self.adapters()}
        new_adapters = {a.name: a for a in fresh.adapters()}
        old_roles, new_roles = self._all_roles(), fresh._all_roles()
        changed_adapters = sorted(
            n for n in old_adapters.keys() & new_adapters.keys() if old_adapters[n] != new_adapters[n]
        )
        return RegistryChanges(
            adapters_added=sorted(new_adapters.keys() - old_adapters.keys()),
            adapters_removed=sorted(old_adapters.keys() - new_adapters.keys()),
            adapters_changed=changed_adapters,
            roles_added=sorted(new_roles.keys() - old_roles.keys()),
            roles_removed=sorted(old_roles.keys() - new_roles.keys()),
            roles_changed=sorted(
                r
                for r in old_roles.keys() & new_roles.keys()
                if old_roles[r] != new_roles[r] or any(a in changed_adapters for a in new_roles[r].used_adapters())
            ),
        )

    # --- look-ups ------------------------------------------------------------------------------------------

    def _all_roles(self) -> dict[str, RoleSpec]:
        return {**self._file_roles, **self._config_roles}  # non-strict: the hand-edited file wins a conflict

    def _all_adapters(self) -> dict[str, AdapterSpec]:
        return {**self._file_adapters, **self._config_adapters}

    def roles(self) -> list[RoleSpec]:
        return sorted(self._all_roles().values(), key=lambda r: r.id)

    def role_ids(self) -> list[str]:
        return [role.id for role in self.roles()]

    def role(self, role_id: str) -> RoleSpec:
        role = self._all_roles().get(role_id)
        if role is None:
            raise UnknownRoleError(role_id, self.role_ids())
        return role

    def __contains__(self, role_id: object) -> bool:
        return role_id in self._all_roles()

    def role_at(self, model_id: str) -> RoleSpec:
        """The role a model id names: `sport` as it is now, `sport@1` with version 1's adapters (UnknownRoleError,
        UnknownVersionError)."""
        role_id, version = split_model_id(model_id)
        role = self.role(role_id)
        if version is None:
            return role
        if version not in role.versions:
            raise UnknownVersionError(role, version)
        return role.at_version(version)

    def model_ids(self) -> list[str]:
        """The base model, then every role."""
        return [self.base_model_id, *self.role_ids()]

    def version_ids(self) -> list[str]:
        """Every version of every role as a model id (`sport@1`, `sport@2`, ...)."""
        return [versioned_id(role.id, n) for role in self.roles() for n in role.versions]

    def adapters(self) -> list[AdapterSpec]:
        return [self.adapter(name) for name in sorted(self._all_adapters())]

    def adapter(self, name: str) -> AdapterSpec:
        """The adapter with its path resolved (a relative path is relative to the home folder)."""
        spec = self._all_adapters().get(name)
        if spec is None:
            raise UnknownAdapterNameError(name, sorted(self._all_adapters()))
        path = spec.path if spec.path.is_absolute() else self.home_root / spec.path
        return AdapterSpec(name=spec.name, path=path, tier=spec.tier, pinned=spec.pinned)

    def adapters_of(self, role_id: str) -> list[tuple[AdapterSpec, float]]:
        """(adapter, weight) for each adapter the role stacks, in the role's order."""
        return [(self.adapter(name), weight) for name, weight in self.role(role_id).adapters.items()]

    def role_source(self, role_id: str) -> Path:
        self.role(role_id)
        return self.config_path if role_id in self._config_roles else self.file_path

    def adapter_source(self, name: str) -> Path:
        self.adapter(name)
        return self.config_path if name in self._config_adapters else self.file_path

    def users_of(self, adapter_name: str) -> list[str]:
        """The roles answering with this adapter now or in one of their versions."""
        return [role.id for role in self.roles() if adapter_name in role.used_adapters()]

    # --- changes (roles.yaml only) -------------------------------------------------------------------------

    def add_role(self, spec: RoleSpec, replace: bool = False, new_adapters: Sequence[AdapterSpec] = ()) -> None:
        """`new_adapters` are added in the same write, all checked first (a trained version's adapter comes with
        the role version that uses it: never one without the other)."""
        check_role_id_free(spec, self.base_model_id)
        if spec.id in self._config_roles:
            raise RegistryError(f"role {spec.id!r} is defined in {self.config_path}; edit that file to change it")
        if spec.id in self._file_roles and not replace:
            raise RegistryError(f"role {spec.id!r} already exists in {self.file_path}; remove it first")
        for adapter in new_adapters:
            self._check_new_adapter(adapter, replace=False)
        defined = {*self._all_adapters(), *(a.name for a in new_adapters)}
        for name in spec.used_adapters():
            if name not in defined:
                known = ", ".join(sorted(self._all_adapters())) or "none"
                raise RegistryError(
                    f"role {spec.id!r} uses adapter {name!r}, which is not defined; add it first with "
                    f"`konsilium adapters add {name} PATH` (known adapters: {known})"
                )
        self._file_adapters.update({adapter.name: adapter for adapter in new_adapters})
        self._file_roles[spec.id] = spec
        self._write()

    def remove_role(self, role_id: str) -> RoleSpec:
        """The adapters the role's trained versions brought (`sport-v1`, ...) go with it unless another role uses
        them (their folders stay), so the id can be trained again from version 1; other adapters stay."""
        # roles.yaml first: that also clears a copy that conflicts with konsilium.yaml.
        spec = self._file_roles.pop(role_id, None)
        if spec is None:
            if role_id in self._config_roles:
                raise RegistryError(f"role {role_id!r} is defined in {self.config_path}; edit that file to remove it")
            raise UnknownRoleError(role_id, self.role_ids())
        for name in self.trained_adapters(spec):
            if name in self._file_adapters and not self.users_of(name):
                del self._file_adapters[name]
        self._write()
        return spec

    @staticmethod
    def trained_adapters(role: RoleSpec) -> list[str]:
        """The adapters the role's versions brought, oldest first."""
        return [v.adapter for v in role.versions.values() if v.adapter is not None]

    def add_adapter(self, spec: AdapterSpec, replace: bool = False) -> None:
        self._check_new_adapter(spec, replace)
        self._file_adapters[spec.name] = spec
        self._write()

    def _check_new_adapter(self, spec: AdapterSpec, replace: bool) -> None:
        if spec.name in self._config_adapters:
            raise RegistryError(f"adapter {spec.name!r} is defined in {self.config_path}; edit that file to change it")
        if spec.name in self._file_adapters and not replace:
            raise RegistryError(f"adapter {spec.name!r} already exists in {self.file_path}; remove it first")

    def remove_adapter(self, name: str) -> AdapterSpec:
        if name in self._config_adapters and name not in self._file_adapters:
            raise RegistryError(f"adapter {name!r} is defined in {self.config_path}; edit that file to remove it")
        if name not in self._file_adapters:
            raise UnknownAdapterNameError(name, sorted(self._all_adapters()))
        users = self.users_of(name)
        if users and name not in self._config_adapters:  # a conflicting copy in konsilium.yaml still serves them
            raise RegistryError(
                f"adapter {name!r} is used by role{'s' if len(users) > 1 else ''} {', '.join(users)}; "
                "remove or change those roles first"
            )
        spec = self._file_adapters.pop(name)
        self._write()
        return spec

    def stored_path(self, path: Path) -> Path:
        """How an adapter folder is written down: relative to the home when inside it (the home can then move with
        its adapters), else absolute."""
        resolved = path.expanduser().resolve()
        try:
            return resolved.relative_to(self.home_root.resolve())
        except ValueError:
            return resolved

    def _write(self) -> None:
        """Atomically: a crash leaves the old file or the new one, never half of one."""
        data: dict[str, Any] = {
            "adapters": {name: spec.to_dict() for name, spec in sorted(self._file_adapters.items())},
            "roles": {role_id: spec.to_dict() for role_id, spec in sorted(self._file_roles.items())},
        }
        text = _HEADER + yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
        self.file_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.file_path.with_name(self.file_path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), 0o600)  # roles and adapter paths are the owner's business only
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.file_path)
        self._stamps = (self._stamps[0], _stamp(self.file_path))  # our own write is no news to us
