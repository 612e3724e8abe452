"""Training runs on a tiny real model: the loss and held-out perplexity fall, a stopped run resumes where it
stopped and ends exactly where an uninterrupted one ends, and the result is a PEFT folder with its run card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from konsilium.training.base_model import BaseModel
from konsilium.training.runs import CARD_FILE, RunDir
from konsilium.training.samples import Sample
from konsilium.training.trainer import TrainingStopped, TrainOptions, prepare, run_training

PHRASES = [
    "the red fox jumps over the lazy dog",
    "a blue bird sings in the green tree",
    "my bike has eleven gears and a steel frame",
    "tea with lemon helps after a long ride",
]


def samples() -> list[Sample]:
    out = []
    for n in range(24):
        text = ". ".join(PHRASES[(n + k) % len(PHRASES)] for k in range(6))
        out.append(Sample(text=text, source=f"note{n}.md", split="eval" if n % 6 == 0 else "train"))
    return out


def options(**changes) -> TrainOptions:
    base = dict(
        device="cpu",
        precision="fp32",
        rank=8,
        alpha=16,
        learning_rate=1e-2,
        epochs=50,
        warmup_steps=2,
        max_tokens=64,
        batch_tokens=256,
        checkpoint_every_s=3600,
        max_steps=12,
    )
    return TrainOptions(**{**base, **changes})


def test_training_lowers_the_loss_and_the_held_out_perplexity(tiny_base, tmp_path):
    opts = options(max_steps=24, learning_rate=2e-2)
    run = RunDir.create(tmp_path, "pattern")
    state = run_training(run, opts, prepare(opts, BaseModel(tiny_base, None), samples()))
    assert state.step == 24
    assert sum(state.losses[-5:]) / 5 < sum(state.losses[:5]) / 5 - 0.5  # perplexity down by 40 % and more
    before, after = state.evals[0]["perplexity"], state.best_perplexity
    assert after < 0.7 * before
    assert (run.folder / "best" / "adapter_model.safetensors").is_file()


def test_a_stopped_run_resumes_and_ends_exactly_where_an_uninterrupted_run_ends(tiny_base, tmp_path):
    opts = options(max_steps=6)
    base = BaseModel(tiny_base, None)
    whole = RunDir.create(tmp_path / "a", "r")
    run_training(whole, opts, prepare(opts, base, samples()))

    def stop_at_three(step, planned, text):
        if step == 3:
            raise KeyboardInterrupt

    stopped = RunDir.create(tmp_path / "b", "r")
    with pytest.raises(TrainingStopped, match="stopped at step 3"):
        run_training(stopped, opts, prepare(opts, base, samples()), progress=stop_at_three)
    assert json.loads((stopped.checkpoint / "progress.json").read_text())["step"] == 3
    resumed = run_training(stopped, opts, prepare(opts, base, samples()), resume=True)
    assert resumed.step == 6
    a = load_file(str(whole.checkpoint / "adapter_model.safetensors"))
    b = load_file(str(stopped.checkpoint / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_the_published_adapter_is_a_peft_folder_with_its_run_card(tiny_base, tmp_path):
    from peft import PeftConfig

    opts = options(max_steps=3)
    run = RunDir.create(tmp_path, "card")
    prepared = prepare(opts, BaseModel(tiny_base, None), samples())
    run_training(run, opts, prepared)
    folder = run.publish(prepared.model, {"role": "card", "metrics": {"steps": 3}})
    config = PeftConfig.from_pretrained(str(folder))
    assert config.r == 8 and set(config.target_modules) == {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    }
    assert json.loads((folder / CARD_FILE).read_text())["metrics"]["steps"] == 3


def test_a_crash_mid_checkpoint_leaves_the_previous_checkpoint_whole(tiny_base, tmp_path, monkeypatch):
    opts = options(max_steps=2)
    run = RunDir.create(tmp_path, "crash")
    prepared = prepare(opts, BaseModel(tiny_base, None), samples())
    run_training(run, opts, prepared)
    before = (run.checkpoint / "progress.json").read_text()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError):
        run.save_checkpoint(prepared.model, torch.optim.AdamW(prepared.model.parameters()), state_of(run))
    assert (run.checkpoint / "progress.json").read_text() == before
    assert Path(run.checkpoint / "adapter_model.safetensors").is_file()


def state_of(run: RunDir):
    from konsilium.training.runs import Progress

    return Progress(**json.loads((run.checkpoint / "progress.json").read_text()))


def test_the_learning_rate_follows_the_model_size_unless_given(tiny_base, tmp_path):
    from konsilium.config import open_home
    from konsilium.training.samples import write_samples
    from konsilium.training.service import start_run
    from konsilium.training.trainer import default_learning_rate

    assert default_learning_rate(135_000_000) == 2e-3 and default_learning_rate(30_500_000_000) == 2e-4
    assert default_learning_rate(8_000_000_000) == 5e-4 and default_learning_rate(None) == 1e-3
    home = open_home(tmp_path / "home")
    dataset = tmp_path / "d.jsonl"
    write_samples(samples(), dataset)
    chosen = start_run(home, "auto", dataset, TrainOptions.from_settings(home.config.training), str(tiny_base))
    assert chosen.info()["options"]["learning_rate"] == 2e-3  # a tiny model: the small-model rate, recorded
    given = start_run(
        home, "given", dataset, TrainOptions.from_settings(home.config.training, learning_rate=1e-4), str(tiny_base)
    )
    assert given.info()["options"]["learning_rate"] == 1e-4
