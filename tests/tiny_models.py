"""Small models with real (seeded random) weights, built in milliseconds, for tests that need a model's shape and
behaviour but not its knowledge."""

from __future__ import annotations


def tiny_llama(tie_word_embeddings: bool = False, **config_fields):
    """A 2-layer Llama (vocab 256, hidden 64): adapters, LoRA slots, the batch scheduler and saving run on it.
    `config_fields` change the config (a real tokenizer's vocab size and special tokens)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=tie_word_embeddings,
        **{"vocab_size": 256, **config_fields},
    )
    return LlamaForCausalLM(config).eval()
