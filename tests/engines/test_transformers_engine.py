"""The transformers engine on the real embedded SmolLM2-135M-Instruct GGUF (loaded once per session)."""

from __future__ import annotations

import json
import threading

import pytest
import typer
from typer.testing import CliRunner

from konsilium.cli.model_cmd import model_app
from konsilium.engines import Engine, SamplingParams, embedded_default, load_embedded_default

GREEDY = SamplingParams(max_tokens=20, temperature=0)


@pytest.fixture(scope="session")
def engine():
    return load_embedded_default()


@pytest.fixture(scope="session")
def colors_prompt(engine):
    return engine.apply_chat_template([{"role": "user", "content": "List three colors."}])


@pytest.fixture(scope="session")
def greedy_colors(engine, colors_prompt):
    return engine.generate(colors_prompt, GREEDY)


def test_embedded_default_is_found():
    folder, name = embedded_default()
    assert (folder / name).is_file() and name.endswith(".gguf")


def test_info_describes_the_embedded_model(engine):
    info = engine.info()
    assert isinstance(engine, Engine)
    assert set(info) == {
        "engine", "path", "gguf_file", "architecture", "dtype", "device", "parameters", "context_length", "batching"
    }  # fmt: skip
    assert info["engine"] == "transformers"
    assert info["gguf_file"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert info["architecture"] == "llama"
    assert info["dtype"] == "float32" and info["device"] == "cpu"
    assert 134_000_000 < info["parameters"] < 135_000_000  # measured: 134,515,008
    assert engine.context_length == 8192


def test_model_info_cli_prints_exactly_the_keys(engine, tmp_path):
    cli = typer.Typer()
    cli.add_typer(model_app, name="model")  # as konsilium.cli.main mounts it
    result = CliRunner().invoke(cli, ["model", "info", "--json", "--home", str(tmp_path)])  # default settings
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == engine.info()


def test_chat_template_contains_the_user_message(engine, colors_prompt):
    assert "List three colors." in colors_prompt
    assert colors_prompt.rstrip().endswith("assistant")
    assert engine.count_tokens(colors_prompt) > engine.count_tokens("List three colors.")


def test_greedy_is_deterministic(engine, colors_prompt, greedy_colors):
    again = engine.generate(colors_prompt, GREEDY)
    assert again == greedy_colors
    assert greedy_colors.text.strip()
    assert greedy_colors.prompt_tokens == engine.count_tokens(colors_prompt)


def test_max_tokens_ends_with_length(engine, colors_prompt, greedy_colors):
    result = engine.generate(colors_prompt, SamplingParams(max_tokens=5, temperature=0))
    assert result.finish_reason == "length" and result.completion_tokens == 5
    assert greedy_colors.text.startswith(result.text)


def test_eos_ends_with_stop(engine):
    prompt = engine.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}])
    result = engine.generate(prompt, SamplingParams(max_tokens=24, temperature=0))
    assert result.finish_reason == "stop" and result.completion_tokens < 24
    assert "Paris" in result.text and "<|im_end|>" not in result.text


def test_stop_sequence_cuts_the_output(engine, colors_prompt, greedy_colors):
    words = greedy_colors.text.split()
    stop = words[len(words) // 2]  # a word the greedy answer really contains, mid-way
    expected = greedy_colors.text[: greedy_colors.text.index(stop)]
    result = engine.generate(colors_prompt, SamplingParams(max_tokens=20, temperature=0, stop=["@@never@@", stop]))
    assert result.text == expected and stop not in result.text
    assert result.finish_reason == "stop"
    assert result.completion_tokens < greedy_colors.completion_tokens
    streamed = list(engine.stream(colors_prompt, SamplingParams(max_tokens=20, temperature=0, stop=[stop])))
    assert "".join(c.text for c in streamed) == expected
    assert streamed[-1].finish_reason == "stop"


def test_stream_concatenates_to_the_whole_text(engine, colors_prompt, greedy_colors):
    chunks = list(engine.stream(colors_prompt, GREEDY))
    assert len(chunks) > 3
    assert "".join(c.text for c in chunks) == greedy_colors.text
    assert [c.finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert chunks[-1].finish_reason == greedy_colors.finish_reason
    assert chunks[-1].completion_tokens == greedy_colors.completion_tokens
    assert [c.completion_tokens for c in chunks] == sorted(c.completion_tokens for c in chunks)


def test_a_closed_stream_releases_the_engine(engine, colors_prompt):
    stream = engine.stream(colors_prompt, GREEDY)
    next(stream)
    stream.close()
    assert engine.generate(colors_prompt, SamplingParams(max_tokens=2, temperature=0)).completion_tokens == 2


def test_concurrent_requests_match_sequential_ones(engine, colors_prompt, greedy_colors):
    other_prompt = engine.apply_chat_template([{"role": "user", "content": "Name a planet."}])
    other = SamplingParams(max_tokens=12, temperature=0)
    sequential_other = engine.generate(other_prompt, other)
    results: dict[str, object] = {}

    def run(key, prompt, params):
        results[key] = engine.generate(prompt, params)

    threads = [
        threading.Thread(target=run, args=("colors", colors_prompt, GREEDY)),
        threading.Thread(target=run, args=("planet", other_prompt, other)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert results == {"colors": greedy_colors, "planet": sequential_other}


def test_seeded_sampling_repeats(engine, colors_prompt):
    params = SamplingParams(max_tokens=8, temperature=0.9, top_p=0.9, seed=7)
    assert engine.generate(colors_prompt, params) == engine.generate(colors_prompt, params)


def test_bad_requests_fail_clearly(engine):
    with pytest.raises(ValueError, match="max_tokens"):
        SamplingParams(max_tokens=0)
    with pytest.raises(ValueError, match="top_p"):
        SamplingParams(top_p=0)
    with pytest.raises(ValueError, match="context"):
        engine.stream("word " * 9000, GREEDY)


def test_streamed_cyrillic_never_splits_a_character(engine):
    prompt = engine.apply_chat_template([{"role": "user", "content": "Напиши одно предложение о Москве."}])
    params = SamplingParams(max_tokens=16, temperature=0)
    chunks = list(engine.stream(prompt, params))
    assert not any("\ufffd" in c.text for c in chunks[:-1])
    assert "".join(c.text for c in chunks) == engine.generate(prompt, params).text
