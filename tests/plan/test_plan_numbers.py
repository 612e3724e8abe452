"""Exact arithmetic on real configs (no torch)."""

from __future__ import annotations

import json
import struct

import pytest

from konsilium.plan import Hardware, PlanError, analyze, apply_overrides, load_config, parse_bytes, plan


def _plan(path, **kw):
    return plan(analyze(load_config(path)), **kw)


def test_qwen3_30b_a3b_exact(qwen3_config):
    r = _plan(qwen3_config, context=32768, hw=Hardware(gpu_mem=parse_bytes("96GB")))
    assert abs(r["total_params"] - 30.53e9) <= 0.01e9
    assert r["total_params"] == 30_532_122_624
    assert abs(r["active_params"] - 3.35e9) <= 0.01e9
    assert r["kv_bytes_per_token"] == 98_304
    assert r["kv_cache_bytes"] == 98_304 * 32768
    assert r["weights_bytes"] == 2 * r["total_params"]
    assert r["fits"] is True
    assert r["max_context_fits"] > 32768
    assert r["decode_tokens_per_s_upper_bound"] > 0
    small = _plan(qwen3_config, context=32768, hw=Hardware(gpu_mem=parse_bytes("24GB")))
    assert small["fits"] is False
    assert small["max_context_fits"] == 0
    assert small["offload"]["cpu_weights_bytes"] > 0


def test_required_keys_and_dtypes(qwen3_config):
    r = _plan(
        qwen3_config,
        dtype="q4_k_m",
        kv_dtype="fp8",
        lora_rank=16,
        lora_targets=["q_proj", "v_proj"],
        adapters=3,
        hw=Hardware(gpu_mem=24e9, cpu_mem=128e9),
    )
    for key in [
        "total_params",
        "active_params",
        "weights_bytes",
        "bits_per_weight",
        "kv_bytes_per_token",
        "kv_cache_bytes",
        "adapters_bytes",
        "activation_bytes_estimate",
        "total_bytes",
        "fits",
        "max_context_fits",
        "decode_tokens_per_s_upper_bound",
    ]:
        assert key in r
    assert r["bits_per_weight"] == 4.85
    assert r["kv_bytes_per_token"] == 98_304 / 2
    # LoRA: q_proj 2048->4096, v_proj 2048->512, 48 layers, rank 16, bf16, 3 adapters
    per = 48 * 16 * ((2048 + 4096) + (2048 + 512))
    assert r["lora"]["params_per_adapter"] == per
    assert r["adapters_bytes"] == per * 2 * 3
    assert (
        r["total_bytes"]
        == r["weights_bytes"] + r["kv_cache_bytes"] + r["adapters_bytes"] + r["activation_bytes_estimate"]
    )


def test_moe_reads_only_active_experts(qwen3_config):
    cfg = load_config(qwen3_config)
    more, changes = apply_overrides(cfg, ["num_experts_per_tok=10"])
    assert changes == {"num_experts_per_tok": (8, 10)}
    a, b = plan(analyze(cfg)), plan(analyze(more))
    assert a["total_params"] == b["total_params"]
    per_expert = 3 * 2048 * 768 * 48
    assert b["active_params"] - a["active_params"] == 2 * per_expert
    assert b["bytes_read_per_token"] > a["bytes_read_per_token"]
    assert a["bytes_read_per_token"] < a["weights_bytes"] / 5


def test_overrides_nested_and_rope_context(qwen3_config):
    cfg, _ = apply_overrides(load_config(qwen3_config), ["rope_scaling.factor=4", "rope_scaling.rope_type=yarn"])
    assert cfg["rope_scaling"] == {"factor": 4, "rope_type": "yarn"}
    assert plan(analyze(cfg))["model_max_context"] == 4 * 40960
    with pytest.raises(PlanError, match="FIELD=VALUE"):
        apply_overrides(cfg, ["oops"])


def test_dense_llama_tied_gqa_and_head_dim_derived():
    cfg = {
        "model_type": "llama",
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "vocab_size": 128256,
        "tie_word_embeddings": False,
    }
    r = plan(analyze(cfg), context=8192)
    assert r["total_params"] == 8_030_261_248  # Llama-3.1-8B
    assert r["kv_bytes_per_token"] == 32 * 2 * 8 * 128 * 2
    tied = plan(analyze({**cfg, "tie_word_embeddings": True}))
    assert r["total_params"] - tied["total_params"] == 128256 * 4096
    mqa = plan(analyze({**cfg, "num_key_value_heads": 1}))
    assert mqa["kv_bytes_per_token"] == r["kv_bytes_per_token"] / 8


def test_mixtral_8x7b():
    cfg = {
        "architectures": ["MixtralForCausalLM"],
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "vocab_size": 32000,
        "num_local_experts": 8,
        "num_experts_per_tok": 2,
        "model_type": "mixtral",
    }
    r = plan(analyze(cfg))
    assert r["total_params"] == 46_702_792_704
    assert abs(r["active_params"] - 12.88e9) < 0.01e9


def test_deepseek_v3_mla_compressed_kv():
    cfg = {
        "model_type": "deepseek_v3",
        "hidden_size": 7168,
        "intermediate_size": 18432,
        "moe_intermediate_size": 2048,
        "num_hidden_layers": 61,
        "num_attention_heads": 128,
        "num_key_value_heads": 128,
        "vocab_size": 129280,
        "n_routed_experts": 256,
        "n_shared_experts": 1,
        "num_experts_per_tok": 8,
        "first_k_dense_replace": 3,
        "kv_lora_rank": 512,
        "q_lora_rank": 1536,
        "qk_rope_head_dim": 64,
        "qk_nope_head_dim": 128,
        "v_head_dim": 128,
        "tie_word_embeddings": False,
        "num_nextn_predict_layers": 1,
    }
    r = plan(analyze(cfg))
    assert abs(r["total_params"] - 671.0e9) < 0.5e9  # 671B without the MTP module
    assert abs(r["active_params"] - 37.5e9) < 0.6e9
    assert r["kv_bytes_per_token"] == 61 * (512 + 64) * 2
    assert r["kv_kind"] == "mla-compressed"


def test_unknown_architecture_names_missing_fields():
    with pytest.raises(PlanError, match="unknown architecture 'bert'.*intermediate_size"):
        analyze(
            {
                "model_type": "bert",
                "hidden_size": 768,
                "num_hidden_layers": 12,
                "num_attention_heads": 12,
                "vocab_size": 30522,
            }
        )
    with pytest.raises(PlanError, match="num_hidden_layers"):
        analyze({"model_type": "llama", "hidden_size": 64, "num_attention_heads": 4, "vocab_size": 10})


def test_bad_dtype_and_sizes(qwen3_config):
    shape = analyze(load_config(qwen3_config))
    with pytest.raises(PlanError, match="allowed values"):
        plan(shape, dtype="int3")
    with pytest.raises(PlanError, match="not a linear"):
        plan(shape, lora_rank=8, lora_targets=["c_attn"])
    assert parse_bytes("96GB") == 96e9 and parse_bytes("80GiB") == 80 * 2**30 and parse_bytes("1TB") == 1e12
    with pytest.raises(PlanError):
        parse_bytes("lots")


def test_model_directory_and_gemma2_sliding(tmp_path, qwen3_config):
    (tmp_path / "config.json").write_text(qwen3_config.read_text())
    assert load_config(tmp_path)["model_type"] == "qwen3_moe"
    gemma = {
        "model_type": "gemma2",
        "hidden_size": 2304,
        "intermediate_size": 9216,
        "num_hidden_layers": 26,
        "num_attention_heads": 8,
        "num_key_value_heads": 4,
        "head_dim": 256,
        "vocab_size": 256000,
        "sliding_window": 4096,
    }
    r = plan(analyze(gemma), context=8192)
    assert r["total_params"] == 2_614_341_888  # gemma-2-2b
    per_layer = 2 * 4 * 256 * 2
    assert r["kv_cache_bytes"] == 13 * per_layer * 8192 + 13 * per_layer * 4096


def _gguf_string(s: str) -> bytes:
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def _write_gguf(path, meta: dict, tensors: dict):
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(meta))
    for key, value in meta.items():
        out += _gguf_string(key)
        if isinstance(value, str):
            out += struct.pack("<I", 8) + _gguf_string(value)
        elif isinstance(value, list):
            out += struct.pack("<IIQ", 9, 8, len(value)) + b"".join(_gguf_string(v) for v in value)
        else:
            out += struct.pack("<II", 4, value)
    for name, dims in tensors.items():
        out += _gguf_string(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", 0, 0)
    path.write_bytes(out)


def test_gguf_metadata(tmp_path, qwen3_config):
    meta = {
        "general.architecture": "qwen3moe",
        "qwen3moe.embedding_length": 2048,
        "qwen3moe.feed_forward_length": 6144,
        "qwen3moe.block_count": 48,
        "qwen3moe.attention.head_count": 32,
        "qwen3moe.attention.head_count_kv": 4,
        "qwen3moe.attention.key_length": 128,
        "qwen3moe.context_length": 40960,
        "qwen3moe.expert_count": 128,
        "qwen3moe.expert_used_count": 8,
        "qwen3moe.expert_feed_forward_length": 768,
        "tokenizer.ggml.tokens": ["a"] * 151936,
    }
    path = tmp_path / "m.gguf"
    _write_gguf(path, meta, {"token_embd.weight": [2048, 151936], "output.weight": [2048, 151936]})
    r = plan(analyze(load_config(path)))
    assert r["total_params"] == plan(analyze(json.loads(qwen3_config.read_text())))["total_params"]
    assert r["kv_bytes_per_token"] == 98_304


def test_storage_uses_measured_bytes():
    from konsilium.plan import storage_plan

    measured = {
        "collection": "notes",
        "dim": 768,
        "chunks": 100,
        "text_chars": 100_000,  # 50 pages of 2,000 characters -> 2 chunks per page
        "bytes": {"text": 200_000, "terms": 50_000, "fulltext_index": 30_000, "vector_index": 0},
    }
    r = storage_plan(1000, measured)
    assert r["chunks"] == 2000
    assert r["bytes"]["text"] == 2000 * 2000
    assert r["bytes"]["vectors"] == 2000 * 768 * 4
    assert r["source"].startswith("measured")
