"""Resource planner and model-file explainer: exact arithmetic from config fields, no torch import."""

from __future__ import annotations

from .architectures import ModelShape, PlanError, analyze
from .config_source import apply_overrides, load_config
from .explain import explain_file
from .memory import Hardware, parse_bytes, plan
from .storage import storage_plan
from .training import training_plan

__all__ = [
    "Hardware",
    "ModelShape",
    "PlanError",
    "analyze",
    "apply_overrides",
    "explain_file",
    "load_config",
    "parse_bytes",
    "plan",
    "storage_plan",
    "training_plan",
]
