"""Generators behind one protocol. Importing this package stays light: engines load their frameworks lazily."""

from functools import lru_cache

from .model_files import ModelFilesError, embedded_default
from .protocol import ChatViaTemplate, Engine, GenerationChunk, GenerationResult, SamplingParams

__all__ = [
    "ChatViaTemplate",
    "Engine",
    "GenerationChunk",
    "GenerationResult",
    "ModelFilesError",
    "SamplingParams",
    "embedded_default",
    "load_embedded_default",
]


@lru_cache(maxsize=4)
def load_embedded_default(device: str = "cpu", dtype: str | None = None):
    """The TransformersEngine on the embedded SmolLM2-135M-Instruct GGUF, loaded once per process."""
    from .transformers_engine import TransformersEngine

    folder, gguf_file = embedded_default()
    return TransformersEngine(folder, gguf_file=gguf_file, device=device, dtype=dtype)
