"""`training_plan` and `konsilium plan train`: the numbers checked against arithmetic done here by hand."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from konsilium.cli.plan_cmd import plan_app
from konsilium.plan import PlanError, analyze, load_config
from konsilium.plan.memory import RUNTIME_OVERHEAD
from konsilium.plan.training import NF4_BITS, TRAIN_MODES, TRAIN_PRECISIONS, training_plan

# Qwen3-8B's config.json (the fields the planner reads)
QWEN3_8B = {
    "architectures": ["Qwen3ForCausalLM"],
    "model_type": "qwen3",
    "hidden_size": 4096,
    "intermediate_size": 12288,
    "num_hidden_layers": 36,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 151936,
    "tie_word_embeddings": False,
    "max_position_embeddings": 40960,
}
# a small llama: head_dim 64 / 4 = 16, so q/o are 64 wide and k/v 2 x 16 = 32
SMALL_LLAMA = {
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 1000,
    "tie_word_embeddings": False,
    "max_position_embeddings": 2048,
}
GB24 = 24e9


def test_lora_param_count_and_optimizer_bytes_by_hand():
    r = training_plan(analyze(SMALL_LLAMA), rank=8)
    h, i, kv, rank, layers = 64, 128, 32, 8, 2
    per_layer = rank * ((h + h) + 2 * (h + kv) + (h + h) + 2 * (h + i) + (i + h))  # q, k+v, o, gate+up, down
    assert r["trainable_params"] == layers * per_layer == 16_384
    assert r["targets"] == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    assert r["trainable_bytes"] == r["gradients_bytes"] == 4 * 16_384
    assert r["optimizer_bytes"] == 8 * 16_384  # AdamW: two fp32 moments
    parts = ["weights", "trainable", "gradients", "optimizer", "activations", "logits", "overhead"]
    # checkpointing (the default): the recomputed layer and the logits are never alive together
    overlap = min(r["recomputed_layer_bytes"], r["logits_bytes"])
    assert 0 < overlap and r["total_bytes"] == sum(r[f"{p}_bytes"] for p in parts) - overlap
    kept_all = training_plan(analyze(SMALL_LLAMA), rank=8, gradient_checkpointing=False)
    assert kept_all["recomputed_layer_bytes"] == 0
    assert kept_all["total_bytes"] == sum(kept_all[f"{p}_bytes"] for p in parts)
    assert r["overhead_bytes"] == RUNTIME_OVERHEAD
    assert r["logits_bytes"] == 1 * 1024 * 1000 * 11  # batch x seq x vocab, bf16 logits + fp32 loss buffers
    only_q = training_plan(analyze(SMALL_LLAMA), rank=4, targets=["q_proj"])
    assert only_q["trainable_params"] == layers * 4 * (h + h)
    assert only_q["trained_modules"] == ["model.layers.*.self_attn.q_proj"]


def test_precisions_weights_by_hand():
    shape = analyze(QWEN3_8B)
    params = shape.total_params
    assert params == 8_190_735_360  # Qwen3-8B as published
    assert training_plan(shape, precision="fp32")["weights_bytes"] == 4 * params
    assert training_plan(shape, precision="bf16")["weights_bytes"] == 2 * params
    # 4bit: NF4 + double quant on the 7 linears of every layer; embeddings, lm_head and norms stay bf16
    h, i, q, kv = 4096, 12288, 32 * 128, 8 * 128
    linears = 36 * (h * q + 2 * h * kv + q * h + 3 * h * i)
    bits = 4 + 8 / 64 + 32 / (64 * 256)  # NF4 codes, an 8-bit absmax per 64 weights, an fp32 scale per 256 absmax
    assert round(bits, 3) == 4.127 and NF4_BITS == bits
    r = training_plan(shape, precision="4bit")
    assert r["weights_bytes"] == round(linears * bits / 8) + (params - linears) * 2
    assert params * 4.127 / 8 < r["weights_bytes"] < params * 0.8  # ~params x 4.127 / 8 plus the bf16 embeddings
    assert r["needs"] == ["cuda", "bitsandbytes"]
    assert training_plan(shape, precision="bf16")["needs"] == []


def test_gradient_checkpointing_and_batch():
    shape = analyze(QWEN3_8B)
    on = training_plan(shape, gradient_checkpointing=True)
    off = training_plan(shape, gradient_checkpointing=False)
    assert off["activations_bytes"] > 10 * on["activations_bytes"]
    assert on["activations_bytes_without_checkpointing"] == off["activations_bytes"]
    overlap = min(on["recomputed_layer_bytes"], on["logits_bytes"])
    assert off["total_bytes"] - on["total_bytes"] == off["activations_bytes"] - on["activations_bytes"] + overlap
    # with checkpointing at least every layer's input (bf16, hidden wide) is kept
    assert on["activations_bytes"] > 36 * 1024 * 4096 * 2
    double = training_plan(shape, batch=2)
    assert double["activations_bytes"] == 2 * on["activations_bytes"]
    assert double["logits_bytes"] == 2 * 1024 * 151936 * 11


def test_moe_bf16_does_not_fit_24gb_but_qlora_of_8b_does(qwen3_config):
    moe = training_plan(analyze(load_config(qwen3_config)), precision="bf16", capacity_bytes=GB24)
    assert moe["fits"] is False and moe["headroom_bytes"] < 0 and moe["max_seq_len_fits"] == 0
    assert moe["weights_bytes"] == 2 * 30_532_122_624 > GB24
    qlora = training_plan(analyze(QWEN3_8B), precision="4bit", seq_len=1024, capacity_bytes=GB24)
    assert qlora["fits"] is True
    assert qlora["headroom_bytes"] == GB24 - qlora["total_bytes"] > 0
    assert qlora["max_seq_len_fits"] > 1024
    longest = training_plan(analyze(QWEN3_8B), precision="4bit", seq_len=qlora["max_seq_len_fits"], capacity_bytes=GB24)
    beyond = training_plan(analyze(QWEN3_8B), precision="4bit", seq_len=longest["seq_len"] + 1, capacity_bytes=GB24)
    assert longest["fits"] is True and beyond["fits"] is False
    assert training_plan(analyze(QWEN3_8B))["fits"] is None


def test_router_mode_trains_layers_x_experts_x_hidden(qwen3_config):
    cfg = load_config(qwen3_config)
    r = training_plan(analyze(cfg), mode="router")
    # Qwen3MoeSparseMoeBlock.gate: a hidden -> num_experts projection without bias, in every (sparse) layer
    assert r["trainable_params"] == cfg["num_hidden_layers"] * cfg["num_experts"] * cfg["hidden_size"] == 12_582_912
    assert r["optimizer_bytes"] == 8 * 12_582_912
    assert r["trained_modules"] == ["model.layers.*.mlp.gate"]
    assert r["targets"] == [] and r["rank"] is None
    assert "modules_to_save" in r["serving_warnings"][0] and "vLLM" in r["serving_warnings"][0]


def test_router_mode_count_matches_transformers():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    cfg = transformers.Qwen3MoeConfig(
        vocab_size=100,
        hidden_size=32,
        intermediate_size=64,
        moe_intermediate_size=16,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        num_experts=6,
        num_experts_per_tok=2,
        mlp_only_layers=[1],
    )
    torch.manual_seed(0)
    model = transformers.Qwen3MoeForCausalLM(cfg)
    gates = {n: p.numel() for n, p in model.named_parameters() if n.endswith("mlp.gate.weight")}
    assert len(gates) == 2  # layer 1 is a dense MLP
    assert training_plan(analyze(cfg.to_dict()), mode="router")["trainable_params"] == sum(gates.values()) == 2 * 6 * 32


def test_engine_targets_match_the_transformers_engine():
    pytest.importorskip("torch")
    from konsilium.engines.lora_slots import DEFAULT_TARGETS
    from konsilium.plan.training import ENGINE_TARGETS

    assert ENGINE_TARGETS == DEFAULT_TARGETS


def test_activation_formula_against_saved_tensors():
    """What autograd keeps for backward in a real tiny Llama + PEFT LoRA, against the per-layer formula."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    peft = pytest.importorskip("peft")
    batch, seq, vocab = 2, 64, 512
    cfg = transformers.LlamaConfig(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=160,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(cfg).to(torch.bfloat16)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    model = peft.get_peft_model(model, peft.LoraConfig(r=8, target_modules=targets, lora_dropout=0.0))
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def keep(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:  # weights are counted as weights
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    ids = torch.randint(0, vocab, (batch, seq))
    with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        model(input_ids=ids, labels=ids)
    measured = sum(saved.values()) - batch * seq * vocab * 4  # the fp32 log-softmax belongs to the logits term
    r = training_plan(
        analyze(cfg.to_dict()), rank=8, batch=batch, seq_len=seq, gradient_checkpointing=False, device="cpu"
    )
    assert abs(measured - r["activations_bytes"]) <= 0.1 * r["activations_bytes"]


def test_refusals_name_the_allowed_values(qwen3_config):
    dense = analyze(SMALL_LLAMA)
    with pytest.raises(PlanError, match="has no router"):
        training_plan(dense, mode="router")
    with pytest.raises(PlanError, match=", ".join(TRAIN_MODES)):
        training_plan(dense, mode="full")
    with pytest.raises(PlanError, match=", ".join(TRAIN_PRECISIONS)):
        training_plan(dense, precision="int8")
    with pytest.raises(PlanError, match="not a linear of this model.*q_proj"):
        training_plan(dense, targets=["q_proj", "qkv_proj"])
    with pytest.raises(PlanError, match="--targets applies to --mode lora"):
        training_plan(dense, mode="attention", targets=["q_proj"])
    for bad in ({"rank": 0}, {"batch": 0}, {"seq_len": 0}, {"capacity_bytes": 0}):
        with pytest.raises(PlanError):
            training_plan(dense, **bad)


def test_serving_warnings_for_moe_targets(qwen3_config):
    shape = analyze(load_config(qwen3_config))
    lora = training_plan(shape)  # the default targets include the MLP linears, here the experts'
    assert any("expert" in w and "vLLM" in w for w in lora["serving_warnings"])
    assert "model.layers.*.mlp.experts.down_proj (x128)" in lora["trained_modules"]
    attention = training_plan(shape, mode="attention")
    assert attention["targets"] == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert attention["serving_warnings"] == []
    assert attention["trainable_params"] == 48 * 16 * ((2048 + 4096) + 2 * (2048 + 512) + (4096 + 2048))
    assert any("not quantize" in n for n in training_plan(shape, precision="4bit", mode="attention")["notes"])


# ---------------------------------------------------------------- CLI

app = typer.Typer()
app.add_typer(plan_app, name="plan")
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_cli_json_fits(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps(QWEN3_8B))
    res = run("plan", "train", config, "--precision", "4bit", "--gpu-mem", "24GB", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["fits"] is True and data["capacity_bytes"] == 24e9 and data["capacity_source"] == "--gpu-mem 24GB"
    assert data == {**training_plan(analyze(QWEN3_8B), precision="4bit", capacity_bytes=24e9), **data}
    res = run("plan", "train", config, "--card", "rtx-pro-6000", "--mode", "attention", "--set", "num_hidden_layers=2")
    assert res.exit_code == 0, res.output
    assert "total" in res.stdout and "fits:" in res.stdout and "self_attn.q_proj" in res.stdout


def test_cli_does_not_fit_exits_1_with_numbers(qwen3_config):
    res = run("plan", "train", qwen3_config, "--gpu-mem", "24GB", "--json")
    assert res.exit_code == 1
    data = json.loads(res.stdout)  # the plan is still printed
    assert data["fits"] is False and data["total_bytes"] > 24e9
    assert "does not fit" in data["error"]["message"]
    assert "does not fit" in res.stderr and "GiB" in res.stderr
    res = run("plan", "train", qwen3_config, "--mode", "router", "--card", "rtx4090")
    assert res.exit_code == 1
    assert "frozen weights" in res.stdout and "modules_to_save" in res.stdout
    assert "short" in res.stderr


def test_cli_refusals_are_one_line(tmp_path):
    dense = tmp_path / "config.json"
    dense.write_text(json.dumps(SMALL_LLAMA))
    for args, text in (
        (["--mode", "router"], "has no router"),
        (["--gpu-mem", "24GB", "--card", "h100"], "give one of"),
        (["--precision", "4bit", "--ram", "64GB"], "needs a CUDA GPU"),
        (["--card", "abacus"], "known cards"),
        (["--targets", "wq"], "not a linear"),
    ):
        res = run("plan", "train", dense, *args, "--json")
        assert res.exit_code == 1, args
        assert text in json.loads(res.stdout)["error"]["message"]
        assert res.stderr.strip().count("\n") == 0 and "error:" in res.stderr


def test_the_plan_matches_the_peaks_measured_on_an_h200():
    """benchmarks/gpu_training.py --grid on an H200 (results JSON in the repository): Qwen3-0.6B's shape, bf16 and
    QLoRA, with and without checkpointing, 4k and 8k tokens per step. The plan must stay within 7 % of each peak (torch
    counts no CUDA context: the plan's overhead is left out on both sides)."""
    from pathlib import Path

    from benchmarks.gpu_training import QWEN3_0_6B

    facts = json.loads((Path(__file__).parents[2] / "benchmarks/results/gpu_training.json").read_text())
    assert facts["versions"]["gpu"] == "NVIDIA H200" and len(facts["runs"]) >= 8
    for run in facts["runs"]:
        config = {"model_type": "qwen3", "vocab_size": run["vocab_size"], "tie_word_embeddings": True, **QWEN3_0_6B}
        plan = training_plan(
            analyze(config),
            precision=run["precision"],
            batch=run["batch_tokens"] // run["max_tokens"],
            seq_len=run["max_tokens"],
            gradient_checkpointing=run["gradient_checkpointing"],
        )
        planned = plan["total_bytes"] - plan["overhead_bytes"]
        assert abs(planned - run["peak_gpu_bytes"]) <= 0.07 * run["peak_gpu_bytes"], run
