"""`load_engine(settings["engine"])`: the configured generator. Each kind imports its framework only when chosen."""

from __future__ import annotations

import os
from pathlib import Path

from ..config import ENGINE_KINDS, defaults
from .protocol import Engine


def load_engine(engine_settings: dict, lora_args: dict | None = None) -> Engine:
    """Build the engine the `engine` section of konsilium.yaml describes (missing keys take their defaults).
    `lora_args`: vLLM's max_loras / max_lora_rank / max_cpu_loras (`roles.path_adapters.vllm_lora_args`)."""
    settings = {**defaults()["engine"], **engine_settings}
    kind = settings["kind"]
    if kind == "transformers":
        return _transformers(settings)
    if kind == "openai-upstream":
        return _openai_upstream(settings)
    if kind == "vllm":
        return _vllm(settings, lora_args or {})
    raise ValueError(f"engine.kind: {kind!r} is not allowed; allowed values: {', '.join(ENGINE_KINDS)}")


def _transformers(settings: dict) -> Engine:
    from . import load_embedded_default

    dtype = None if settings["dtype"] == "auto" else settings["dtype"]
    batching = {key: settings[key] for key in ("max_batch_size", "max_batch_tokens", "batch_invariant")}
    if settings["model"] == "embedded":
        engine = load_embedded_default(settings["device"], dtype)  # shared in a process (tests): set, not rebuilt
        if engine.batching != batching:
            engine.configure_batching(**batching)
        return engine
    path = Path(settings["model"]).expanduser()
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
    from .transformers_engine import TransformersEngine

    return TransformersEngine(path, gguf_file=gguf_file, device=settings["device"], dtype=dtype, **batching)


def _openai_upstream(settings: dict) -> Engine:
    from .openai_upstream import OpenAIUpstreamEngine

    key_env = settings["upstream_api_key_env"]
    return OpenAIUpstreamEngine(
        settings["upstream_url"],
        # "embedded" names no upstream model: take the first one the upstream lists.
        None if settings["model"] == "embedded" else settings["model"],
        api_key=os.environ.get(key_env) if key_env else None,
        context_length=settings["context_length"],
        timeout_s=settings["upstream_timeout_s"],
    )


def _vllm(settings: dict, lora_args: dict) -> Engine:
    from .vllm_engine import VLLMEngine

    return VLLMEngine(
        settings["model"],
        tensor_parallel_size=settings["tensor_parallel_size"],
        gpu_memory_utilization=settings["gpu_memory_utilization"],
        dtype=settings["dtype"],
        context_length=settings["context_length"],
        **lora_args,
    )
