from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def base_model():
    """The embedded SmolLM2-135M as a transformers model (loaded once per process, shared with other tests)."""
    from konsilium.engines import load_embedded_default

    return load_embedded_default().model


@pytest.fixture(scope="session")
def tiny_llama():
    """A small Llama on the meta device: enough for PEFT to build real adapter files in milliseconds, for tests
    that never run a model (the CLI checks files, not shapes against the model)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2
    )
    with torch.device("meta"):
        return LlamaForCausalLM(config)
