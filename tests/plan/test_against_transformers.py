"""Validate the planner against real transformers models built tiny and random on CPU."""

from __future__ import annotations

import pytest

from konsilium.plan import analyze, plan

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

CONTEXT, BATCH = 7, 2


def _measure(model, vocab: int):
    model = model.to(torch.bfloat16).eval()
    params = sum(p.numel() for p in model.parameters())
    tensor_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    ids = torch.randint(0, vocab, (BATCH, CONTEXT))
    with torch.no_grad():
        cache = model(input_ids=ids, use_cache=True).past_key_values
    kv = 0
    for layer in cache.layers:
        kv += layer.keys.numel() * layer.keys.element_size() + layer.values.numel() * layer.values.element_size()
    return params, tensor_bytes, kv


def _check(config_obj, model_cls, extra: dict | None = None):
    torch.manual_seed(0)
    model = model_cls(config_obj)
    params, tensor_bytes, kv = _measure(model, config_obj.vocab_size)
    cfg = {**config_obj.to_dict(), **(extra or {})}
    r = plan(analyze(cfg), dtype="bf16", kv_dtype="bf16", context=CONTEXT, batch=BATCH)
    assert r["total_params"] == params
    assert abs(r["weights_bytes"] - tensor_bytes) <= 0.01 * tensor_bytes
    assert r["kv_cache_bytes"] == kv
    return r, params


def test_tiny_qwen3_moe():
    from transformers import Qwen3MoeConfig, Qwen3MoeForCausalLM

    cfg = Qwen3MoeConfig(
        vocab_size=257,
        hidden_size=64,
        intermediate_size=96,
        moe_intermediate_size=32,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=24,
        num_experts=6,
        num_experts_per_tok=2,
        decoder_sparse_step=1,
        mlp_only_layers=[1],
        tie_word_embeddings=False,
        max_position_embeddings=128,
    )
    r, params = _check(cfg, Qwen3MoeForCausalLM)
    assert r["active_params"] < params
    assert r["moe"] is True


def test_tiny_qwen3_moe_sparse_step():
    from transformers import Qwen3MoeConfig, Qwen3MoeForCausalLM

    cfg = Qwen3MoeConfig(
        vocab_size=100,
        hidden_size=32,
        intermediate_size=48,
        moe_intermediate_size=16,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=8,
        num_experts=4,
        num_experts_per_tok=1,
        decoder_sparse_step=2,
        mlp_only_layers=[],
        max_position_embeddings=64,
    )
    _check(cfg, Qwen3MoeForCausalLM)


@pytest.mark.parametrize("tied", [False, True])
def test_tiny_llama(tied):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=300,
        hidden_size=64,
        intermediate_size=160,
        num_hidden_layers=3,
        num_attention_heads=8,
        num_key_value_heads=2,
        tie_word_embeddings=tied,
        max_position_embeddings=128,
    )
    r, _ = _check(cfg, LlamaForCausalLM)
    assert r["active_params"] == r["total_params"]


def test_tiny_mixtral():
    from transformers import MixtralConfig, MixtralForCausalLM

    cfg = MixtralConfig(
        vocab_size=200,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_local_experts=4,
        num_experts_per_tok=2,
        max_position_embeddings=64,
        sliding_window=None,
    )
    _check(cfg, MixtralForCausalLM)


def test_tiny_qwen2():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cfg = Qwen2Config(
        vocab_size=200,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=True,
    )
    _check(cfg, Qwen2ForCausalLM)


def test_tiny_deepseek_v3_mla():
    from transformers import DeepseekV3Config, DeepseekV3ForCausalLM

    cfg = DeepseekV3Config(
        vocab_size=200,
        hidden_size=64,
        intermediate_size=96,
        moe_intermediate_size=16,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=4,
        n_routed_experts=8,
        n_shared_experts=1,
        num_experts_per_tok=2,
        first_k_dense_replace=1,
        kv_lora_rank=32,
        q_lora_rank=24,
        qk_rope_head_dim=8,
        qk_nope_head_dim=16,
        v_head_dim=16,
        n_group=1,
        topk_group=1,
        max_position_embeddings=64,
    )
    r, _ = _check(cfg, DeepseekV3ForCausalLM)
    assert r["kv_kind"] == "mla-compressed"
