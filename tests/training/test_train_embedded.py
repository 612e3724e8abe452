"""A role trained on the embedded model is served by the engine at once: the adapter `konsilium train` publishes
passes the engine's checks against the real model and changes its answers."""

from __future__ import annotations

import pytest

from konsilium.config import open_home
from konsilium.engines import AdapterRequest, SamplingParams, load_embedded_default
from konsilium.roles.validation import load_adapter_weights
from konsilium.training.samples import Sample, write_samples
from konsilium.training.service import start_run, train
from konsilium.training.trainer import TrainOptions

pytestmark = pytest.mark.real_model


def test_a_role_trained_on_the_embedded_model_answers_through_the_engine(tmp_path):
    home = open_home(tmp_path / "home")
    text = "Zorblax the cat sleeps on the red sofa every afternoon. " * 6
    dataset = tmp_path / "cat.jsonl"
    write_samples(
        [Sample(text=text, source=f"n{i}.md", split="eval" if i == 0 else "train") for i in range(4)], dataset
    )
    options = TrainOptions.from_settings(
        home.config.training, max_steps=3, max_tokens=64, batch_tokens=128, learning_rate=3e-2
    )
    result = train(home, start_run(home, "cat", dataset, options))
    assert result["model_id"] == "cat@1" and result["steps"] == 3
    held = result["held_out_perplexity"]
    assert held["after"] < held["before"]

    engine = load_embedded_default()
    config, weights = load_adapter_weights(result["adapter_path"], model=engine.model)
    engine.load_adapter("cat-test", config, weights)
    try:
        prompt = "Zorblax the cat sleeps on the"
        greedy = SamplingParams(max_tokens=8, temperature=0)
        plain = engine.generate(prompt, greedy).text
        tuned = engine.generate(prompt, greedy, AdapterRequest("cat-test")).text
        assert tuned != plain
    finally:
        engine.unload_adapter("cat-test")
