"""Roles: model ids that answer with a weighted stack of LoRA adapters over the one base model.

Only the light modules are re-exported here (no torch): the CLI lists and checks roles without loading a model.
"""

from .registry import (
    ROLES_FILE,
    RegistryError,
    RoleRegistry,
    UnknownAdapterNameError,
    UnknownRoleError,
    UnknownVersionError,
    roles_file,
)
from .spec import AdapterSpec, RetrievalScope, RoleSpec, RoleSpecError, VersionSpec
from .validation import AdapterError, AdapterInfo, check_against, check_info, inspect_adapter, load_adapter_weights

__all__ = [
    "ROLES_FILE",
    "AdapterError",
    "AdapterInfo",
    "AdapterSpec",
    "RegistryError",
    "RetrievalScope",
    "RoleRegistry",
    "RoleSpec",
    "RoleSpecError",
    "UnknownAdapterNameError",
    "UnknownRoleError",
    "UnknownVersionError",
    "VersionSpec",
    "check_against",
    "check_info",
    "inspect_adapter",
    "load_adapter_weights",
    "roles_file",
]
