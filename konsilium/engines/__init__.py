"""Generators behind one protocol. Importing this package stays light: engines load their frameworks lazily."""

from functools import lru_cache
from typing import TYPE_CHECKING

from ..errors import EngineUnavailableError, UpstreamError
from .model_files import ModelFilesError, embedded_default
from .protocol import (
    AdapterRequest,
    AdapterSupport,
    ChatViaTemplate,
    Constraint,
    ConstraintSupport,
    Engine,
    GenerationChunk,
    GenerationResult,
    SamplingParams,
)

if TYPE_CHECKING:
    from ..config import EngineSettings

__all__ = [
    "AdapterRequest",
    "AdapterSupport",
    "ChatViaTemplate",
    "Constraint",
    "ConstraintSupport",
    "Engine",
    "EngineUnavailableError",
    "GenerationChunk",
    "GenerationResult",
    "ModelFilesError",
    "SamplingParams",
    "UpstreamError",
    "embedded_default",
    "load_embedded_default",
    "load_engine",
]


def load_embedded_default(device: str = "cpu", dtype: str | None = None, gguf_cache: bool = True):
    """The TransformersEngine on the embedded SmolLM2-135M-Instruct GGUF, loaded once per process."""
    return _load_embedded(device, dtype, gguf_cache)  # positional: `f()` and `f("cpu")` share one cache entry


@lru_cache(maxsize=4)
def _load_embedded(device: str, dtype: str | None, gguf_cache: bool):
    from .transformers_engine import TransformersEngine

    folder, gguf_file = embedded_default()
    return TransformersEngine(folder, gguf_file=gguf_file, device=device, dtype=dtype, gguf_cache=gguf_cache)


def load_engine(engine_settings: "EngineSettings | dict", lora_args: dict | None = None) -> Engine:
    """The engine `konsilium.yaml`'s `engine` section describes (`home.config.engine`; see `factory`)."""
    from .factory import load_engine as load

    return load(engine_settings, lora_args)
