"""`konsilium lab PROFILES.yaml`: the file's format and checks (no model), then one real run on the tiny base with
a role trained here, through the CLI as a script uses it (--json)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from cli_runner import run

from konsilium.training.lab import parse_lab

NOTES = {
    "Sport/Intervals.md": "# Intervals\n\nFour times four minutes hard, three minutes easy between. " * 4,
    "Sport/Recovery.md": "# Recovery\n\nSleep eight hours and ride easy the day after intervals. " * 4,
    "Sport/Cadence.md": "# Cadence\n\nKeep ninety revolutions a minute on the flat, seventy on climbs. " * 4,
}
PROMPTS = ["How should I train for a marathon?", "Что мне есть перед длинной тренировкой?"]


def write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_a_grid_expands_to_named_profiles_after_the_listed_ones():
    lab = parse_lab(
        {
            "text": {"dataset": "sport.jsonl"},
            "profiles": [{"name": "plain", "model": "base"}, {"model": "sport", "context": 1024}],
            "grid": {
                "model": ["base", "sport@1"],
                "set.num_experts_per_tok": [8, 16],
                "thinking": [False, True],
                "context": [512],
            },
        },
        Path("/lab"),
    )
    assert [p.name for p in lab.profiles] == [
        "plain",
        "sport context=1024",
        "base num_experts_per_tok=8 thinking=off",
        "base num_experts_per_tok=8 thinking=on",
        "base num_experts_per_tok=16 thinking=off",
        "base num_experts_per_tok=16 thinking=on",
        "sport@1 num_experts_per_tok=8 thinking=off",
        "sport@1 num_experts_per_tok=8 thinking=on",
        "sport@1 num_experts_per_tok=16 thinking=off",
        "sport@1 num_experts_per_tok=16 thinking=on",
    ]
    last = lab.profiles[-1]
    assert (last.model, last.context, last.thinking) == ("sport@1", 512, True)
    assert last.overrides == {"num_experts_per_tok": 16}
    assert lab.text.dataset == Path("/lab/sport.jsonl") and lab.text.split == "eval"
    assert lab.profiles[0].context is None and lab.max_new_tokens == 64 and lab.prompts == ()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"text": {"notes": "n"}}, "no profiles"),
        ({"text": {"notes": "n"}, "profiles": [{"model": "base", "colour": 1}]}, "profiles[0].colour: unknown key"),
        ({"text": {"notes": "n"}, "grid": {"model": "base", "set.hidden_size": [32]}}, "grid.set.hidden_size: needs"),
        ({"text": {"notes": "n"}, "grid": {"model": ["base", "base"]}}, "grid.model[1]: base is listed twice"),
        ({"text": {"notes": "n"}, "profiles": [{"model": "base"}, {"model": "base"}]}, "'base' is already used"),
        ({"text": {"notes": "n"}, "profiles": [{"model": "base", "thinking": "yes"}]}, "thinking: expected true"),
        ({"text": {"dataset": "d", "split": "dev"}, "profiles": [{"model": "base"}]}, "text.split: 'dev'"),
    ],
)
def test_mistakes_are_named_by_their_key_path(data, message):
    with pytest.raises(ValueError) as caught:
        parse_lab(data, Path("/lab"))
    assert message in str(caught.value)


def test_the_readme_example_is_a_valid_profiles_file():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    [block] = [b for b in re.findall(r"^ *```yaml\n(.*?)^ *```", readme, flags=re.S | re.M) if "grid:" in b]
    lab = parse_lab(yaml.safe_load(textwrap.dedent(block)), Path("/lab"))
    assert len(lab.profiles) == 2 + 3 * 2 * 2 and lab.text.notes == Path("~/Vault/Sport/held-out").expanduser()


def test_reading_a_profiles_file_imports_no_torch(tmp_path):
    code = "import sys, konsilium.training.lab as lab; lab.read_lab(sys.argv[1]); print('torch' in sys.modules)"
    file = write(tmp_path / "lab.yaml", {"text": {"notes": "n"}, "profiles": [{"model": "base"}]})
    done = subprocess.run([sys.executable, "-c", code, str(file)], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


@pytest.fixture(scope="module")
def trained(tiny_base, tmp_path_factory) -> tuple[Path, Path]:
    """(home with role `sport` at version 1, its notes)."""
    folder = tmp_path_factory.mktemp("lab")
    for rel, text in NOTES.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text, encoding="utf-8")
    home, dataset = folder / "home", folder / "sport.jsonl"
    run(home, "dataset", "build", "--notes", str(folder / "Sport"), "--out", str(dataset), "--eval-fraction", "0")
    args = ["--max-steps", "2", "--max-tokens", "64", "--batch-tokens", "64", "--lr", "0.01"]  # any step moves it
    run(home, "train", "sport", "--dataset", str(dataset), "--base", str(tiny_base), *args)
    return home, folder / "Sport"


def test_the_lab_measures_every_profile_on_the_same_text(trained, tiny_base, tmp_path, monkeypatch):
    from rich.console import Console

    from konsilium.cli import lab_cmd

    home, notes = trained
    profiles = write(
        tmp_path / "lab.yaml",
        {
            "text": {"notes": str(notes)},
            "prompts": PROMPTS,
            "max_new_tokens": 8,
            "base": str(tiny_base),
            "device": "cpu",
            "profiles": [
                {"name": "base", "model": "base", "context": 64},
                {"name": "base-knobs", "model": "base", "context": 64, "set": {"max_position_embeddings": 4096}},
                {"name": "sport-v1", "model": "sport@1", "context": 64, "thinking": True},
                {"name": "base-again", "model": "base", "context": 64},  # the role's adapters were taken off
                {"name": "base-short", "model": "base", "context": 32},
                {"name": "base-experts", "model": "base", "context": 64, "set": {"num_experts_per_tok": 4}},
            ],
        },
    )
    result = json.loads(run(home, "lab", str(profiles), "--json").stdout)
    assert set(result) == {"text", "base", "device", "max_new_tokens", "peak_memory", "profiles", "notes"}
    assert result["text"]["notes"] == str(notes) and result["text"]["samples"] == 3
    assert [c["context"] for c in result["text"]["contexts"]] == [64, 32]
    by_name = {p["name"]: p for p in result["profiles"]}
    # the file's order, though profiles sharing a build ran together
    assert list(by_name) == ["base", "base-knobs", "sport-v1", "base-again", "base-short", "base-experts"]
    base, sport = by_name["base"], by_name["sport-v1"]
    assert set(base) >= {
        "name", "model", "overrides", "context", "thinking", "perplexity", "nll", "tokens", "windows",
        "generation_tokens_per_s", "peak_memory_bytes", "answers",
    }  # fmt: skip
    assert sport["tokens"] == base["tokens"] > 0 and sport["perplexity"] != base["perplexity"]
    assert by_name["base-again"]["perplexity"] == base["perplexity"]
    assert by_name["base-short"]["windows"] > base["windows"]
    assert by_name["base-knobs"]["overrides"] == {"max_position_embeddings": 4096}
    assert by_name["base-knobs"]["perplexity"] == pytest.approx(base["perplexity"], rel=1e-4)  # same weights
    assert "set.num_experts_per_tok has no effect for this model: LlamaConfig has no such field" in result["notes"]
    for profile in result["profiles"]:
        assert [a["prompt"] for a in profile["answers"]] == PROMPTS
        assert all(0 < a["tokens"] <= 8 and isinstance(a["text"], str) for a in profile["answers"])
        assert profile["generation_tokens_per_s"] > 0 and profile["peak_memory_bytes"] > 10 * 2**20
    assert sport["thinking"] is True and any("thinking" in note for note in result["notes"])  # SmolLM2 ignores it

    console = Console(width=200, record=True)
    monkeypatch.setattr(lab_cmd, "out", console)
    lab_cmd.print_result(result)
    shown = console.export_text()
    assert "sport-v1" in shown and "max_position_embeddings=4096" in shown and "Что мне есть" in shown
    assert f"{base['perplexity']:.3f}" in shown and "note: thinking" in shown


def test_bad_profiles_exit_1_with_the_key_path_before_any_model_loads(trained, tmp_path):
    home, notes = trained
    text = {"notes": str(notes)}
    knob = write(tmp_path / "knob.yaml", {"text": text, "profiles": [{"model": "base", "set": {"hidden_size": 32}}]})
    failed = run(home, "lab", str(knob), check=False)
    assert failed.returncode == 1 and "profiles[0].set.hidden_size: needs retraining" in failed.stderr
    unknown = write(tmp_path / "who.yaml", {"text": text, "grid": {"model": ["sport@1", "nobody"]}})
    failed = run(home, "lab", str(unknown), "--json", check=False)
    assert failed.returncode == 1 and "grid.model[1]: unknown role 'nobody'" in failed.stderr
    assert "grid.model[1]" in json.loads(failed.stdout)["error"]["message"]
    version = write(tmp_path / "v9.yaml", {"text": text, "profiles": [{"model": "sport@9"}]})
    assert "has no version 9" in run(home, "lab", str(version), check=False).stderr
    missing = run(home, "lab", str(tmp_path / "none.yaml"), check=False)
    assert missing.returncode == 1 and "no such profiles file" in missing.stderr
    assert run(home, "lab", check=False).returncode == 2


def test_thinking_is_noticed_only_where_the_chat_template_reads_it(tokenizer, monkeypatch):
    from konsilium.training.lab_run import thinking_matters

    assert not thinking_matters(tokenizer)  # SmolLM2's template
    qwen3_like = "{{ messages }}{% if enable_thinking is defined and not enable_thinking %}<think></think>{% endif %}"
    monkeypatch.setattr(tokenizer, "chat_template", qwen3_like)
    assert thinking_matters(tokenizer)
