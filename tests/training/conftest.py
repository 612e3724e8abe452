from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory):
    """A HF model folder: a 2-layer Llama (hidden 64, seeded random weights) with the embedded model's real
    tokenizer and chat template, so training, resuming and perplexity run in seconds on real PEFT and
    transformers code."""
    from tiny_models import tiny_llama

    from konsilium.engines.model_files import embedded_default
    from konsilium.training.base_model import BaseModel, load_tokenizer

    tokenizer = load_tokenizer(BaseModel(*embedded_default()))
    model = tiny_llama(
        vocab_size=len(tokenizer), eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )
    folder = tmp_path_factory.mktemp("tiny-base")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tokenizer(tiny_base):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_base)
