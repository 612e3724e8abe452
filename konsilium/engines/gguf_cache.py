"""A converted copy of a GGUF model, so that only the first start pays for transformers' GGUF conversion.

transformers reads a GGUF file's metadata three times (config, tokenizer, weights) through gguf-py's per-item numpy
reader and dequantizes every tensor: 35–45 s for the embedded 135M model on 2 cores, at every start of `serve`,
`ask` or a test. The same weights saved as safetensors with the tokenizer files load in about a second.

A copy is keyed by the GGUF file (resolved path, size, mtime), the dtype asked for and the transformers version,
so an edited file, another dtype or an upgrade converts again. It is written to a temporary folder and renamed into
place: concurrent starts and a crash never leave a half copy that a later start would trust. A copy that cannot be
written (read-only or full disk) costs a warning, never the start.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

log = logging.getLogger("konsilium.engine")
CACHE_ENV = "KONSILIUM_CACHE"
SOURCE_FILE = "konsilium-source.json"  # written last: a folder without it is not a copy
ABANDONED_AFTER_S = 3600  # a staging folder this old belongs to no living conversion


def cache_root() -> Path:
    """$KONSILIUM_CACHE, else $XDG_CACHE_HOME/konsilium, else ~/.cache/konsilium (machine-wide, like HF's cache:
    every konsilium home on this machine shares one converted copy)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "konsilium"


def _source(gguf: Path, dtype: str | None) -> dict:
    import transformers

    stat = gguf.stat()
    return {
        "gguf": str(gguf.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "dtype": dtype or "auto",
        "transformers": transformers.__version__,
    }


def _folder_for(source: dict, root: Path) -> Path:
    digest = hashlib.sha256(json.dumps(source, sort_keys=True).encode()).hexdigest()[:16]
    return root / "gguf" / f"{Path(source['gguf']).stem}-{digest}"


def find_converted(gguf: Path, dtype: str | None) -> Path | None:
    """The folder of a complete converted copy of `gguf` for `dtype`, or None."""
    source = _source(gguf, dtype)
    folder = _folder_for(source, cache_root())
    try:
        if json.loads((folder / SOURCE_FILE).read_text(encoding="utf-8")) == source:
            return folder
    except (OSError, ValueError):
        pass
    return None


@contextlib.contextmanager
def one_conversion_at_a_time(gguf: Path, dtype: str | None):
    """Held while a process converts `gguf`: a second start of the same model waits and then reads the copy
    instead of converting it too (two conversions at once take twice the CPU, and each minutes on a laptop).
    Without a writable cache nothing is held."""
    source = _source(gguf, dtype)
    lock_path = _folder_for(source, cache_root()).with_suffix(".lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock_path, "a")  # noqa: SIM115 - held for the whole block
    except OSError:
        yield
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        handle.close()  # releases the lock


def store_converted(gguf: Path, dtype: str | None, model, tokenizer) -> Path | None:
    """Save the model transformers loaded from `gguf` (still on the CPU) with its tokenizer; older copies of the
    same file and dtype are removed. Returns the folder, or None when it could not be written."""
    from safetensors.torch import save_model

    source = _source(gguf, dtype)
    folder = _folder_for(source, cache_root())
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".converting-", dir=folder.parent))
        try:
            save_model(model, str(staging / "model.safetensors"), metadata={"format": "pt"})  # tied weights once
            config = copy.deepcopy(model.config)
            if hasattr(config, "quantization_config"):  # the weights are plain tensors now, not GGUF blocks
                del config.quantization_config
            config.save_pretrained(staging)
            model.generation_config.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
            (staging / SOURCE_FILE).write_text(json.dumps(source, indent=1), encoding="utf-8")
            try:
                staging.rename(folder)
            except OSError:  # another process finished first: its copy is as good as ours
                shutil.rmtree(staging, ignore_errors=True)
                return folder if find_converted(gguf, dtype) else None
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    except OSError as exc:
        log.warning(
            "could not keep a converted copy of %s in %s (%s): the next start converts it again",
            gguf.name,
            folder.parent,
            exc,
        )
        return None
    _remove_stale_copies(folder, source)
    return folder


def _remove_stale_copies(keep: Path, source: dict) -> None:
    """Copies of an older state of the same file and dtype (edited, or another transformers) are never read again."""
    for other in keep.parent.iterdir():
        if other.name.startswith(".converting-"):  # left by a process killed while writing
            if _age_s(other) > ABANDONED_AFTER_S:
                shutil.rmtree(other, ignore_errors=True)
            continue
        if other == keep:
            continue
        try:
            theirs = json.loads((other / SOURCE_FILE).read_text(encoding="utf-8"))
            if (theirs.get("gguf"), theirs.get("dtype")) != (source["gguf"], source["dtype"]):
                continue
        except (OSError, ValueError):
            continue
        shutil.rmtree(other, ignore_errors=True)


def _age_s(path: Path) -> float:
    import time

    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0
