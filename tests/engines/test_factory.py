"""`load_engine` from the `engine` settings, and `konsilium model info` on the configured engine."""

from __future__ import annotations

import importlib.abc
import json
import subprocess
import sys
from unittest.mock import ANY

import pytest
import typer
import yaml
from typer.testing import CliRunner

from konsilium.cli.model_cmd import model_app
from konsilium.config import EngineSettings, defaults
from konsilium.engines import EngineUnavailableError, load_embedded_default, load_engine
from konsilium.engines.openai_upstream import OpenAIUpstreamEngine


def settings(**overrides) -> EngineSettings:
    return EngineSettings(**overrides)


class VllmImportWatch(importlib.abc.MetaPathFinder):
    """Records every attempt to import vllm (and lets the import go on as usual)."""

    def __init__(self):
        self.attempts: list[str] = []

    def find_spec(self, name, path=None, target=None):
        if name == "vllm" or name.startswith("vllm."):
            self.attempts.append(name)
        return None


@pytest.fixture
def vllm_imports(monkeypatch):
    watch = VllmImportWatch()
    monkeypatch.setattr(sys, "meta_path", [watch, *sys.meta_path])
    monkeypatch.delitem(sys.modules, "vllm", raising=False)
    return watch.attempts


def test_the_default_settings_give_the_embedded_engine():
    assert load_engine(EngineSettings()) is load_embedded_default()
    # A (partial) dict, as scripts write it, is checked like the YAML section.
    assert load_engine(defaults()["engine"]) is load_embedded_default()
    assert load_engine({}) is load_embedded_default()  # missing keys take their defaults


def test_a_missing_model_path_is_a_clear_error(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(FileNotFoundError, match="engine.model: .*no-such-model does not exist"):
        load_engine(settings(model=str(missing)))
    with pytest.raises(FileNotFoundError, match="no config.json and no .gguf file"):
        load_engine(settings(model=str(tmp_path)))


def test_an_unknown_kind_is_rejected():
    with pytest.raises(ValueError, match="allowed values: transformers, openai-upstream, vllm"):
        load_engine({"kind": "llamafile"})
    with pytest.raises(ValueError, match="engine.max_batch_size: expected int, got bool True"):
        load_engine({"max_batch_size": True})


def test_openai_upstream_from_settings(embedded_upstream, monkeypatch):
    monkeypatch.setenv("KONSILIUM_TEST_UPSTREAM_KEY", "secret-key")
    engine = load_engine(
        settings(
            kind="openai-upstream",
            model=embedded_upstream.model,
            upstream_url=embedded_upstream.base_url,
            upstream_api_key_env="KONSILIUM_TEST_UPSTREAM_KEY",
            context_length=4096,
            upstream_timeout_s=45,
        )
    )
    assert isinstance(engine, OpenAIUpstreamEngine)
    assert (engine.model, engine.context_length, engine.timeout_s) == (embedded_upstream.model, 4096, 45)
    assert engine._client.api_key == "secret-key"
    monkeypatch.delenv("KONSILIUM_TEST_UPSTREAM_KEY")
    unkeyed = load_engine(settings(kind="openai-upstream", model="x", upstream_url=embedded_upstream.base_url))
    assert unkeyed._client.api_key == "EMPTY"


def test_openai_upstream_embedded_takes_the_first_listed_model(embedded_upstream):
    engine = load_engine(settings(kind="openai-upstream", upstream_url=embedded_upstream.base_url))
    assert engine.model == embedded_upstream.model


def test_vllm_missing_is_a_clear_install_error(vllm_imports):
    with pytest.raises(EngineUnavailableError, match=r"pip install 'konsilium\[vllm\]'") as caught:
        load_engine(settings(kind="vllm", model="/models/some-llm"))
    assert "CUDA" in str(caught.value)
    assert vllm_imports  # the factory did try, only because kind is vllm


def test_other_kinds_never_import_vllm(vllm_imports, embedded_upstream):
    load_engine(settings())
    load_engine(settings(kind="openai-upstream", model="m", upstream_url=embedded_upstream.base_url))
    import konsilium.engines.vllm_engine  # noqa: F401  (the module itself imports vllm only when built)

    assert vllm_imports == []


def test_importing_the_engines_package_stays_light():
    code = "import sys, konsilium.engines; print([m for m in ('torch', 'openai', 'vllm') if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def model_info(home, *args) -> object:
    cli = typer.Typer()
    cli.add_typer(model_app, name="model")  # as konsilium.cli.main mounts it
    return CliRunner().invoke(cli, ["model", "info", "--home", str(home), *args])


def test_model_info_describes_the_configured_upstream(tmp_path, embedded_upstream):
    engine = {"kind": "openai-upstream", "model": embedded_upstream.model, "upstream_url": embedded_upstream.base_url}
    (tmp_path / "konsilium.yaml").write_text(yaml.safe_dump({"engine": engine}), encoding="utf-8")
    result = model_info(tmp_path, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "engine": "openai-upstream",
        "path": embedded_upstream.base_url,
        "gguf_file": None,
        "architecture": None,
        "dtype": None,
        "device": "remote",
        "parameters": None,
        "model": embedded_upstream.model,
        # This upstream is a konsilium that does not allow runtime adapters: roles name its models instead.
        "lora_loading": False,
        "lora_loading_reason": ANY,
        "max_loras": None,
        "max_loras_source": None,
        "replicas": [{"url": embedded_upstream.base_url, "up": True, "in_flight": 0, "adapters": [], "error": None}],
    }
    assert "runtime_loading: true" in json.loads(result.stdout)["lora_loading_reason"]
    shown = model_info(tmp_path)
    assert shown.exit_code == 0 and "openai-upstream" in shown.stdout and "remote" in shown.stdout


def test_model_info_reports_an_unreachable_upstream_in_one_line(tmp_path):
    engine = {"kind": "openai-upstream", "upstream_url": "http://127.0.0.1:9/v1"}  # port 9: discard, never served
    (tmp_path / "konsilium.yaml").write_text(yaml.safe_dump({"engine": engine}), encoding="utf-8")
    result = model_info(tmp_path, "--json")
    assert result.exit_code == 1
    assert "cannot reach the upstream at http://127.0.0.1:9" in json.loads(result.stdout)["error"]["message"]
    assert "Traceback" not in result.output


def test_batching_limits_come_from_the_engine_settings():
    from concurrent.futures import ThreadPoolExecutor

    from konsilium.engines import SamplingParams

    engine = load_engine(settings(max_batch_size=2))
    try:
        assert engine is load_embedded_default() and engine.info()["batching"]["max_batch_size"] == 2
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda q: engine.generate(q, SamplingParams(max_tokens=6)), ["a", "b", "c", "d"]))
        assert engine._scheduler.batch_sizes and max(engine._scheduler.batch_sizes) <= 2
    finally:
        load_engine(EngineSettings())  # the shared engine goes back to the defaults for other tests
    assert load_embedded_default().info()["batching"] == {
        "max_batch_size": 16,
        "max_batch_tokens": 32768,
        "batch_invariant": False,
    }


def test_vllm_gets_the_parallel_settings_as_they_are(monkeypatch):
    import konsilium.engines.vllm_engine as vllm_engine

    built = {}
    monkeypatch.setattr(vllm_engine, "VLLMEngine", lambda model, **kwargs: built.update(kwargs, model=model))
    parallel = dict(
        tensor_parallel_size=4,
        pipeline_parallel_size=2,
        distributed_executor_backend="ray",
        enable_expert_parallel=True,
        quantization="fp8",
    )
    load_engine(settings(kind="vllm", model="/models/qwen3-235b", gpu_memory_utilization=0.85, **parallel))
    assert built == {
        **parallel,
        "model": "/models/qwen3-235b",
        "gpu_memory_utilization": 0.85,
        "dtype": "auto",
        "context_length": 0,
    }
