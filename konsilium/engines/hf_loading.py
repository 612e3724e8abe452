"""Loading a causal LM and its tokenizer from a HF folder or a GGUF file, through the converted copy of a GGUF
(`gguf_cache`) when there is one. Shared by the transformers engine (serving) and training, so both read the same
weights the same way.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

# No downloads at run time, ever: a missing file must fail, not fetch.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from .gguf_cache import find_converted, one_conversion_at_a_time, store_converted  # noqa: E402

log = logging.getLogger("konsilium.engine")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass
class LoadedModel:
    tokenizer: object
    model: object  # on the CPU, as loaded
    path: Path  # the folder given (resolved)
    gguf_file: str | None
    converted_copy: Path | None  # the safetensors copy the weights came from, for a GGUF file


def model_location(path_or_dir: str | Path, gguf_file: str | None = None) -> tuple[Path, str | None]:
    """(folder, GGUF file name or None), checked: a `.gguf` path is split into its folder and file name."""
    path = Path(path_or_dir).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        path, gguf_file = path.parent, path.name
    if not path.exists():
        raise FileNotFoundError(f"model path does not exist: {path}")
    if gguf_file and not (path / gguf_file).is_file():
        raise FileNotFoundError(f"GGUF file not found: {path / gguf_file}")
    return path.resolve(), gguf_file


def load_causal_lm(
    path_or_dir: str | Path, gguf_file: str | None = None, dtype: str | None = None, gguf_cache: bool = True, **kwargs
) -> LoadedModel:
    """Tokenizer and model (CPU). `kwargs` go to `from_pretrained` (e.g. a quantization config), except
    `config_overrides`: {field: value} set on the model's config before the model is built."""
    if dtype not in (None, *DTYPES):
        raise ValueError(f"unknown dtype {dtype!r} (choose from {', '.join(DTYPES)})")
    path, gguf_file = model_location(path_or_dir, gguf_file)
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    caching = bool(gguf_file and gguf_cache)
    held = one_conversion_at_a_time(path / gguf_file, dtype) if caching else contextlib.nullcontext()
    with held:  # another start converting the same file finishes first; this one then reads its copy
        copy = find_converted(path / gguf_file, dtype) if caching else None
        try:
            tokenizer, model = _load(copy or path, None if copy else gguf_file, dtype, kwargs)
        except Exception:
            if copy is None:
                raise
            log.warning("the converted copy %s does not load: converting the GGUF again", copy)
            shutil.rmtree(copy, ignore_errors=True)
            copy = None
            tokenizer, model = _load(path, gguf_file, dtype, kwargs)
        if caching and copy is None:
            copy = store_converted(path / gguf_file, dtype, model, tokenizer)
    return LoadedModel(tokenizer, model, path, gguf_file, copy)


def _load(source: Path, gguf_file: str | None, dtype: str | None, extra: dict):
    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
    overrides = extra.pop("config_overrides", None)
    if overrides:  # fields read when the modules are built (experts per token): set before, not after
        config = AutoConfig.from_pretrained(source, **kwargs)
        for key, value in overrides.items():
            setattr(config, key, value)
        extra = {**extra, "config": config}
    if dtype:
        kwargs["dtype"] = DTYPES[dtype]
    # transformers' GGUF converter draws a tqdm bar that ignores its progress-bar switch: keep stderr clean.
    with contextlib.redirect_stderr(io.StringIO()):
        return tokenizer, AutoModelForCausalLM.from_pretrained(source, **kwargs, **extra)
