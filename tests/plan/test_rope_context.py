"""Trained vs RoPE-extended context, per rope_type, on the configs models really ship (fields as published on
the Hugging Face Hub; Phi-3's 48 long/short factors are shortened to ones, which the context does not read)."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from konsilium.cli.plan_cmd import explain, plan_app
from konsilium.plan import analyze, apply_overrides, load_config, plan
from konsilium.plan.context import context_window
from konsilium.plan.explain import explain_file

LLAMA_3_1_8B = {
    "architectures": ["LlamaForCausalLM"],
    "attention_bias": False,
    "hidden_act": "silu",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "max_position_embeddings": 131072,
    "mlp_bias": False,
    "model_type": "llama",
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "rms_norm_eps": 1e-05,
    "rope_scaling": {
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
        "rope_type": "llama3",
    },
    "rope_theta": 500000.0,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "vocab_size": 128256,
}
QWEN3_8B = {
    "architectures": ["Qwen3ForCausalLM"],
    "head_dim": 128,
    "hidden_size": 4096,
    "intermediate_size": 12288,
    "max_position_embeddings": 40960,
    "model_type": "qwen3",
    "num_attention_heads": 32,
    "num_hidden_layers": 36,
    "num_key_value_heads": 8,
    "rms_norm_eps": 1e-06,
    "rope_scaling": None,
    "rope_theta": 1000000,
    "sliding_window": None,
    "tie_word_embeddings": False,
    "use_sliding_window": False,
    "vocab_size": 151936,
}
# What Qwen's model card says to add for 131,072 tokens.
QWEN3_YARN = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}
QWEN2_5_7B = {
    "architectures": ["Qwen2ForCausalLM"],
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "max_position_embeddings": 32768,
    "max_window_layers": 28,
    "model_type": "qwen2",
    "num_attention_heads": 28,
    "num_hidden_layers": 28,
    "num_key_value_heads": 4,
    "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0,
    "sliding_window": 131072,
    "tie_word_embeddings": False,
    "use_sliding_window": False,
    "vocab_size": 152064,
}
PHI_3_MINI_128K = {
    "architectures": ["Phi3ForCausalLM"],
    "hidden_size": 3072,
    "intermediate_size": 8192,
    "max_position_embeddings": 131072,
    "model_type": "phi3",
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 32,
    "original_max_position_embeddings": 4096,
    "rope_scaling": {"long_factor": [1.0] * 48, "short_factor": [1.0] * 48, "type": "longrope"},
    "rope_theta": 10000.0,
    "sliding_window": 262144,
    "vocab_size": 32064,
}
DEEPSEEK_V3_ROPE = {
    "max_position_embeddings": 163840,
    "rope_scaling": {
        "beta_fast": 32,
        "beta_slow": 1,
        "factor": 40,
        "mscale": 1.0,
        "mscale_all_dim": 1.0,
        "original_max_position_embeddings": 4096,
        "type": "yarn",
    },
}


def window(cfg: dict) -> tuple[int | None, int | None]:
    w = context_window(cfg)
    return w.trained, w.extended


def test_llama3_max_position_embeddings_already_is_the_extended_length():
    assert window(LLAMA_3_1_8B) == (8192, 131072)  # not 131072 x 8 = 1,048,576
    assert "already is the extended length" in context_window(LLAMA_3_1_8B).how


def test_yarn_multiplies_the_original_length_not_max_position_embeddings():
    assert window({**QWEN3_8B, "rope_scaling": QWEN3_YARN}) == (32768, 131072)  # not 4 x 40960
    assert window(DEEPSEEK_V3_ROPE) == (4096, 163840)
    no_original = {**QWEN3_8B, "rope_scaling": {"rope_type": "yarn", "factor": 4.0}}
    assert window(no_original) == (40960, 163840)
    assert "max_position_embeddings 40,960 x factor 4" in context_window(no_original).how


def test_no_scaling_and_longrope():
    assert window(QWEN2_5_7B) == (32768, 32768)
    assert window(QWEN3_8B) == (40960, 40960)
    assert window(PHI_3_MINI_128K) == (4096, 131072)  # original outside rope_scaling, "type" not "rope_type"
    assert context_window(PHI_3_MINI_128K).rope_type == "longrope"


def test_linear_dynamic_and_the_transformers_5_form():
    assert window({"max_position_embeddings": 4096, "rope_scaling": {"type": "linear", "factor": 2.0}}) == (
        4096,
        8192,
    )
    dynamic = {"max_position_embeddings": 32768, "rope_scaling": {"rope_type": "dynamic", "factor": 2.0}}
    assert window(dynamic) == (32768, 65536)
    v5 = {"max_position_embeddings": 131072, "rope_parameters": {**LLAMA_3_1_8B["rope_scaling"], "rope_theta": 5e5}}
    assert window(v5) == (8192, 131072)
    default = {"max_position_embeddings": 8192, "rope_parameters": {"rope_type": "default", "rope_theta": 1e4}}
    assert window(default) == (8192, 8192)
    nested = {  # Gemma 3: one RoPE per layer type; full attention bounds the context
        "max_position_embeddings": 32768,
        "rope_parameters": {
            "full_attention": {"rope_type": "linear", "factor": 4.0},
            "sliding_attention": {"rope_type": "default"},
        },
    }
    assert window(nested) == (32768, 131072)


def test_broken_rope_fields_do_not_crash():
    assert window({"rope_scaling": {"factor": "x"}}) == (None, None)
    assert window({"max_position_embeddings": 2048, "rope_scaling": {"type": "yarn", "factor": "x"}}) == (2048, 2048)
    assert window({"max_position_embeddings": 2048, "rope_scaling": "yarn"}) == (2048, 2048)


def test_plan_reports_both_and_warns_by_the_right_one():
    result = plan(analyze(LLAMA_3_1_8B), context=65536)
    assert result["trained_context"] == 8192 and result["extended_context"] == 131072
    assert result["model_max_context"] == 131072
    assert result["context_scaling"]["rope_type"] == "llama3" and result["context_scaling"]["factor"] == 8.0
    assert any("beyond the trained 8,192" in note for note in result["notes"])
    over = plan(analyze(LLAMA_3_1_8B), context=200_000)
    assert any("exceeds the model's window 131,072" in note for note in over["notes"])
    plain = plan(analyze(QWEN2_5_7B), context=32768)
    assert plain["trained_context"] == plain["extended_context"] == 32768
    assert not any("context" in note for note in plain["notes"])


def test_set_yarn_over_the_qwen3_fixture(qwen3_config):
    sets = [
        "rope_scaling.rope_type=yarn",
        "rope_scaling.factor=4",
        "rope_scaling.original_max_position_embeddings=32768",
    ]
    cfg, _ = apply_overrides(load_config(qwen3_config), sets)
    result = plan(analyze(cfg))
    assert (result["trained_context"], result["extended_context"]) == (32768, 131072)


app = typer.Typer()
app.add_typer(plan_app, name="plan")
app.command()(explain)


def test_plan_cli_text_and_json_show_trained_and_extended(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(LLAMA_3_1_8B))
    res = CliRunner().invoke(app, ["plan", str(path), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert (data["trained_context"], data["extended_context"]) == (8192, 131072)
    res = CliRunner().invoke(app, ["plan", str(path)])
    assert res.exit_code == 0, res.output
    text = " ".join(res.stdout.split())  # the console wraps long lines
    assert "8,192" in text and "131,072" in text and "1,048,576" not in text
    assert "llama3: trained on original_max_position_embeddings 8,192" in text


def test_explain_shows_the_context_the_fields_add_up_to(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**QWEN3_8B, "rope_scaling": QWEN3_YARN}))
    result = explain_file(path)
    assert (result["context"]["trained"], result["context"]["extended"]) == (32768, 131072)
    res = CliRunner().invoke(app, ["explain", str(path)])
    assert res.exit_code == 0, res.output
    text = " ".join(res.stdout.split())  # the console wraps long lines
    assert (
        "context: trained 32,768, extended 131,072 (yarn: original_max_position_embeddings 32,768 x factor 4)" in text
    )
    phi = tmp_path / "phi" / "config.json"
    phi.parent.mkdir()
    phi.write_text(json.dumps(PHI_3_MINI_128K))
    fields = {f["field"]: f for f in explain_file(phi)["fields"]}
    assert fields["original_max_position_embeddings"]["known"]


@pytest.mark.parametrize("cfg", [LLAMA_3_1_8B, {**QWEN3_8B, "rope_scaling": QWEN3_YARN}, PHI_3_MINI_128K])
def test_the_trained_length_is_the_one_transformers_scales_from(cfg):
    """transformers' own config classes settle which field is the pretraining length for llama3/yarn/longrope."""
    transformers = pytest.importorskip("transformers")
    config_cls = {"llama": transformers.LlamaConfig, "qwen3": transformers.Qwen3Config, "phi3": transformers.Phi3Config}
    fields = {k: v for k, v in cfg.items() if k not in ("architectures", "model_type")}
    config = config_cls[cfg["model_type"]](**fields)
    rope = config.rope_parameters
    assert rope["original_max_position_embeddings"] == context_window(cfg).trained
    if rope["rope_type"] == "yarn":  # YaRN's scale is its factor over the original length
        assert context_window(cfg).extended == rope["original_max_position_embeddings"] * rope["factor"]
