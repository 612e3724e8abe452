"""`load_engine(home.config.engine)`: the configured generator. Each kind imports its framework only when chosen."""

from __future__ import annotations

import os
from pathlib import Path

from ..config import EngineSettings, parse_section
from .protocol import Engine


def engine_settings_of(settings: EngineSettings | dict) -> EngineSettings:
    """Typed engine settings; a (partial) dict, as scripts and benchmarks write it, is checked like the `engine`
    section of konsilium.yaml, its missing keys taking their defaults."""
    return settings if isinstance(settings, EngineSettings) else parse_section("engine", settings)


def load_engine(settings: EngineSettings | dict, lora_args: dict | None = None) -> Engine:
    """Build the engine the `engine` section of konsilium.yaml describes.
    `lora_args`: vLLM's max_loras / max_lora_rank / max_cpu_loras (`roles.path_adapters.vllm_lora_args`)."""
    settings = engine_settings_of(settings)
    if settings.kind == "openai-upstream":
        return _openai_upstream(settings)
    if settings.kind == "vllm":
        return _vllm(settings, lora_args or {})
    return _transformers(settings)  # the only kind left: EngineSettings allows no other


def _transformers(settings: EngineSettings) -> Engine:
    from . import load_embedded_default

    dtype = None if settings.dtype == "auto" else settings.dtype
    batching = settings.model_dump(include={"max_batch_size", "max_batch_tokens", "batch_invariant"})
    if settings.model == "embedded":
        engine = load_embedded_default(
            settings.device, dtype, settings.gguf_cache
        )  # shared in a process (tests): set, not rebuilt
        if engine.batching != batching:
            engine.configure_batching(**batching)
        return engine
    path, gguf_file = local_model(settings)
    from .transformers_engine import TransformersEngine

    return TransformersEngine(
        path, gguf_file=gguf_file, device=settings.device, dtype=dtype, gguf_cache=settings.gguf_cache, **batching
    )


def local_model(settings: EngineSettings) -> tuple[Path, str | None]:
    """(folder, GGUF file name or None) of the configured model's weights on this machine: what the transformers
    engine serves and what training and perplexity load."""
    if settings.model == "embedded":
        from .model_files import embedded_default

        return embedded_default()
    path = Path(settings.model).expanduser()
    gguf_file = None
    if not path.exists():
        raise FileNotFoundError(
            f"engine.model: {path} does not exist (give a HF model folder, a .gguf file, or 'embedded')"
        )
    if path.is_dir() and not (path / "config.json").is_file():
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) != 1:
            found = f"{len(ggufs)} .gguf files" if ggufs else "no .gguf file"
            raise FileNotFoundError(f"engine.model: {path} has no config.json and {found}: name the model file")
        gguf_file = ggufs[0].name
    return path, gguf_file


def _openai_upstream(settings: EngineSettings) -> Engine:
    from .openai_upstream import OpenAIUpstreamEngine

    key_env = settings.upstream_api_key_env
    return OpenAIUpstreamEngine(
        settings.upstream_url,
        # "embedded" names no upstream model: take the first one the upstream lists.
        None if settings.model == "embedded" else settings.model,
        api_key=os.environ.get(key_env) if key_env else None,
        context_length=settings.context_length,
        timeout_s=settings.upstream_timeout_s,
        lora_loading=settings.upstream_lora_loading,
        max_loras=settings.upstream_max_loras,
        dead_s=settings.upstream_dead_s,
    )


def _vllm(settings: EngineSettings, lora_args: dict) -> Engine:
    from .vllm_engine import VLLMEngine

    return VLLMEngine(
        settings.model,
        tensor_parallel_size=settings.tensor_parallel_size,
        gpu_memory_utilization=settings.gpu_memory_utilization,
        dtype=settings.dtype,
        context_length=settings.context_length,
        **settings.model_dump(
            include={"pipeline_parallel_size", "distributed_executor_backend", "enable_expert_parallel", "quantization"}
        ),
        **lora_args,
    )
