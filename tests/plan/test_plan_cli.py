"""CLI: `plan`, `plan storage`, `explain` — JSON, tables, one-line errors, no heavy imports."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import typer
from typer.testing import CliRunner

from konsilium.cli.plan_cmd import explain, plan_app

app = typer.Typer()
app.add_typer(plan_app, name="plan")
app.command()(explain)
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_plan_json_qwen3(qwen3_config):
    res = run("plan", qwen3_config, "--gpu-mem", "96GB", "--context", "32768", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["total_params"] == 30_532_122_624
    assert data["kv_bytes_per_token"] == 98_304
    assert data["fits"] is True
    res = run("plan", qwen3_config, "--gpu-mem", "24GB", "--cpu-mem", "128GB", "--json")
    data = json.loads(res.stdout)
    assert data["fits"] is False and data["offload"]["fits_with_offload"] is True


def test_plan_table(qwen3_config):
    res = run("plan", qwen3_config, "--gpu-mem", "96GB", "--gpus", "2", "--dtype", "fp8")
    assert res.exit_code == 0, res.output
    assert "30.532 B" in res.stdout and "estimate" in res.stdout and "upper bound" in res.stdout


def test_compare_labels_retraining(qwen3_config):
    res = run(
        "plan",
        qwen3_config,
        "--set",
        "num_experts_per_tok=10",
        "--set",
        "num_attention_heads=64",
        "--compare",
        "--json",
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    kinds = {c["field"]: c["change"] for c in data["changes"]}
    assert kinds == {"num_experts_per_tok": "inference", "num_attention_heads": "retrain"}
    assert data["changed"]["active_params"] > data["base"]["active_params"]
    res = run("plan", qwen3_config, "--set", "num_experts_per_tok=10", "--compare")
    assert "as given" in res.stdout and "inference-time knob" in res.stdout


def test_errors_are_one_line(tmp_path, qwen3_config):
    for args in (
        ["plan", tmp_path / "missing.json"],
        ["plan", qwen3_config, "--dtype", "int3"],
        ["plan", qwen3_config, "--compare"],
        ["plan", qwen3_config, "--gpu-mem", "huge"],
        ["explain", tmp_path / "missing.json"],
    ):
        res = run(*args)
        assert res.exit_code == 1, args
        assert res.stderr.strip().count("\n") == 0 and "error:" in res.stderr
    bad = tmp_path / "bert.json"
    bad.write_text(json.dumps({"model_type": "bert", "hidden_size": 768}))
    res = run("plan", bad, "--json")
    assert res.exit_code == 1
    assert "unknown architecture" in json.loads(res.stdout)["error"]["message"]


def test_storage_defaults_and_missing_index(tmp_path):
    res = run("plan", "storage", "--pages", "1000000", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["source"] == "defaults" and data["bytes"]["vectors"] == 2_000_000 * 384 * 4
    res = run("plan", "storage", "--pages", "10", "--from-index", "--home", tmp_path / "nohome", "--json")
    assert res.exit_code in (0, 1)
    res = run("plan", "storage", "--pages", "0")
    assert res.exit_code == 1


def test_explain_config_en_ru(qwen3_config, tmp_path):
    res = run("explain", qwen3_config, "--json")
    data = json.loads(res.stdout)
    assert data["kind"] == "config" and data["unknown"] == []
    fields = {f["field"]: f for f in data["fields"]}
    assert fields["num_experts_per_tok"]["change"] == "inference"
    assert fields["hidden_size"]["change"] == "retrain"
    res = run("explain", qwen3_config, "--lang", "ru", "--json")
    ru = {f["field"]: f for f in json.loads(res.stdout)["fields"]}
    assert "переобучения" in ru["hidden_size"]["change_text"]
    odd = tmp_path / "config.json"
    odd.write_text(json.dumps({"model_type": "llama", "frobnication_level": 3}))
    data = json.loads(run("explain", odd, "--json").stdout)
    assert data["unknown"] == ["frobnication_level"]
    res = run("explain", qwen3_config, "--lang", "ru")
    assert res.exit_code == 0 and "смысл" in res.stdout


def test_explain_other_files(tmp_path):
    files = {
        "tokenizer_config.json": {"chat_template": "{{ x }}", "eos_token": "<|im_end|>", "model_max_length": 131072},
        "generation_config.json": {"do_sample": True, "temperature": 0.6, "top_k": 20, "top_p": 0.95},
        "adapter_config.json": {"peft_type": "LORA", "r": 16, "lora_alpha": 32, "target_modules": ["q_proj"]},
    }
    for name, body in files.items():
        path = tmp_path / name
        path.write_text(json.dumps(body))
        data = json.loads(run("explain", path, "--json").stdout)
        assert data["kind"] == name.removesuffix(".json")
        assert data["unknown"] == [] and len(data["fields"]) == len(body)


def test_plan_imports_no_torch(qwen3_config):
    code = (
        "import sys, time; t = time.perf_counter()\n"
        "from konsilium.cli.plan_cmd import plan_model\n"
        "plan_model(sys.argv[1], sets=['num_experts_per_tok=10'], gpu_mem='96GB', compare=True, as_json=True)\n"
        "heavy = [m for m in ('torch', 'transformers', 'lancedb', 'numpy', 'pyarrow') if m in sys.modules]\n"
        "sys.stderr.write(f'HEAVY={heavy} SECONDS={time.perf_counter() - t:.3f}')\n"
    )
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, str(qwen3_config)], capture_output=True, text=True, timeout=60)
    wall = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY=[]" in proc.stderr
    seconds = float(proc.stderr.rsplit("SECONDS=", 1)[1])
    assert seconds < 1.0, proc.stderr
    assert wall < 5.0


def test_error_with_brackets_is_printed(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text(json.dumps({"architectures": ["BertModel"], "hidden_size": 768}))
    res = run("plan", bad)
    assert res.exit_code == 1
    assert "['BertModel']" in res.stderr and "intermediate_size" in res.stderr


def test_qwen3_tokenizer_and_generation_files_fully_known(tmp_path):
    tok = {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": {"151643": {"content": "<|endoftext|>", "special": True}},
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "bos_token": None,
        "chat_template": "{%- for message in messages %}{{ message.content }}{%- endfor %}",
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 131072,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }
    gen = {
        "bos_token_id": 151643,
        "do_sample": True,
        "eos_token_id": [151645, 151643],
        "pad_token_id": 151643,
        "temperature": 0.6,
        "top_k": 20,
        "top_p": 0.95,
        "transformers_version": "4.51.0",
    }
    for name, body in (("tokenizer_config.json", tok), ("generation_config.json", gen)):
        path = tmp_path / name
        path.write_text(json.dumps(body))
        for lang in ("en", "ru"):
            data = json.loads(run("explain", path, "--lang", lang, "--json").stdout)
            assert data["unknown"] == []
            assert all(f["meaning"] and f["typical"] and f["effect"] for f in data["fields"])
