"""A sentence-transformers folder of the common shape Transformer → mean pooling → normalize, run with
transformers alone.

The vectors are sentence-transformers' own (same tokenizer call, same truncation, same pooling), but importing
sentence-transformers costs ~7 s on 2 cores before any work (its trainers, samplers, scipy, accelerate…): the whole
start-up of a `konsilium search`. Folders of another shape (CLS or max pooling, extra dense layers, prompts) still go
to sentence-transformers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

TRANSFORMER = "sentence_transformers.models.Transformer"
POOLING = "sentence_transformers.models.Pooling"
NORMALIZE = "sentence_transformers.models.Normalize"


def mean_pooled_shape(path: Path) -> int | None:
    """The max sequence length when `path` is exactly Transformer (at the root) → mean pooling → normalize,
    with no prompts and no lower-casing; else None."""
    try:
        modules = json.loads((path / "modules.json").read_text(encoding="utf-8"))
        types = [m["type"] for m in modules]
        if types != [TRANSFORMER, POOLING, NORMALIZE] or modules[0].get("path", "") != "":
            return None
        pooling = json.loads((path / modules[1]["path"] / "config.json").read_text(encoding="utf-8"))
        modes = {k: bool(v) for k, v in pooling.items() if k.startswith("pooling_mode_")}
        if {mode for mode, on in modes.items() if on} != {"pooling_mode_mean_tokens"}:
            return None
        settings = json.loads((path / "sentence_bert_config.json").read_text(encoding="utf-8"))
        if settings.get("do_lower_case"):
            return None
        extra = path / "config_sentence_transformers.json"
        if extra.exists() and json.loads(extra.read_text(encoding="utf-8")).get("prompts"):
            return None
        return int(settings["max_seq_length"])
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


class MeanPoolingEmbedder:
    """The model loads on first use; `dim` is read from its config without loading it."""

    multilingual = False

    def __init__(self, path: Path, name: str, max_seq_length: int, device: str = "cpu", batch_size: int = 32):
        self.path, self.name, self.max_seq_length = path, name, max_seq_length
        self.device, self.batch_size = device, batch_size
        self._model = self._tokenizer = None
        self.dim = int(json.loads((path / "config.json").read_text(encoding="utf-8"))["hidden_size"])

    def _load(self):
        if self._model is None:
            # Nothing may leave the machine: forbid hub lookups before transformers is imported.
            os.environ["HF_HUB_OFFLINE"] = "1"
            os.environ["TRANSFORMERS_OFFLINE"] = "1"
            from transformers import AutoModel, AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
            self._model = AutoModel.from_pretrained(self.path, local_files_only=True).to(self.device).eval()
        return self._tokenizer, self._model

    def embed(self, texts: list[str]) -> np.ndarray:
        import torch

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        tokenizer, model = self._load()
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # as sentence-transformers: less padding
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                batch = tokenizer(
                    [texts[i] for i in rows],
                    padding=True,
                    truncation="longest_first",
                    max_length=self.max_seq_length,
                    return_tensors="pt",
                ).to(self.device)
                hidden = model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                out[rows] = pooled.float().cpu().numpy()
        return out
