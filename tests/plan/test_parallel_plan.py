"""`konsilium plan CONFIG --gpu-mem … --gpus N [--nodes M]`: the TP/PP split vLLM should run, its `vllm serve` line
(parsed back with shlex) and the konsilium.yaml engine section (valid EngineSettings)."""

from __future__ import annotations

import json
import shlex

import typer
from typer.testing import CliRunner

from konsilium.cli.plan_cmd import plan_app
from konsilium.config import EngineSettings

app = typer.Typer()
app.add_typer(plan_app, name="plan")


def split_for(config, *args) -> dict:
    res = CliRunner().invoke(app, ["plan", str(config), "--gpu-mem", "96GB", *map(str, args), "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)["parallel"]


def flags(line: str) -> dict:
    """`--name value` pairs and bare `--switch`es of a command line."""
    words, out = shlex.split(line), {}
    for i, word in enumerate(words):
        if word.startswith("--"):
            value = words[i + 1] if i + 1 < len(words) and not words[i + 1].startswith("--") else True
            out[word] = value
    return out


def test_the_235b_moe_takes_a_whole_node_of_96gb_cards_with_expert_parallel(qwen3_235b_config):
    split = split_for(qwen3_235b_config, "--gpus", 8)
    assert (split["tensor_parallel_size"], split["pipeline_parallel_size"], split["fits"]) == (8, 1, True)
    assert split["enable_expert_parallel"] and split["distributed_executor_backend"] is None
    line = flags(split["vllm_serve"])
    assert shlex.split(split["vllm_serve"])[:3] == ["vllm", "serve", str(qwen3_235b_config.parent)]
    assert line["--tensor-parallel-size"] == "8" and "--pipeline-parallel-size" not in line
    assert line["--enable-expert-parallel"] is True and line["--reasoning-parser"] == "qwen3"
    assert line["--max-model-len"] == "32768" and line["--gpu-memory-utilization"] == "0.9"


def test_two_nodes_of_four_cards_split_tp_within_and_pp_across_over_ray(qwen3_235b_config):
    split = split_for(qwen3_235b_config, "--gpus", 4, "--nodes", 2, "--lora-rank", 16, "--adapters", 4)
    assert (split["tensor_parallel_size"], split["pipeline_parallel_size"], split["fits"]) == (4, 2, True)
    line = flags(split["vllm_serve"])
    assert line["--tensor-parallel-size"] == "4" and line["--pipeline-parallel-size"] == "2"
    assert line["--distributed-executor-backend"] == "ray"
    assert line["--enable-lora"] is True and line["--max-loras"] == "4" and line["--max-lora-rank"] == "16"
    engine = EngineSettings(**split["engine"])  # the printed section is a valid konsilium.yaml engine
    assert (engine.kind, engine.tensor_parallel_size, engine.pipeline_parallel_size) == ("vllm", 4, 2)
    assert engine.distributed_executor_backend == "ray" and engine.enable_expert_parallel


def test_too_few_cards_say_it_does_not_fit(qwen3_235b_config):
    split = split_for(qwen3_235b_config, "--gpus", 4)
    assert split["fits"] is False and split["tensor_parallel_size"] == 4
    assert "does not fit" in split["notes"][0]


def test_a_model_that_fits_one_card_gets_tp_1(qwen3_config):
    split = split_for(qwen3_config, "--gpus", 8)
    assert (split["tensor_parallel_size"], split["pipeline_parallel_size"], split["gpus_used"]) == (1, 1, 1)
    assert not split["enable_expert_parallel"] and "--pipeline-parallel-size" not in split["vllm_serve"]
    assert flags(split["vllm_serve"])["--tensor-parallel-size"] == "1"


def test_the_table_prints_the_command_and_the_engine_section(qwen3_235b_config):
    args = ["plan", str(qwen3_235b_config), "--gpu-mem", "96GB", "--gpus", "4", "--nodes", "2"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "TP 4 x PP 2" in res.stdout and "vllm serve" in res.stdout
    assert "engine:\n  kind: vllm" in res.stdout and "distributed_executor_backend: ray" in res.stdout
