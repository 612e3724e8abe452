"""Roles on an engine that keeps its own adapter tiers and reads adapters from folders (vLLM).

vLLM needs a CUDA GPU, which CI does not have: `FolderEngine` below stands in for VLLMEngine's adapter surface
(PATHS: add_adapter / remove_adapter / resident_adapters) and records what it was asked. Everything on our
side is real: the registry, adapter folders made by PEFT, stacking and the folder it is written to, waiting for
in-flight answers."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch
import yaml
from adapters import edit_config, edit_weights, make_adapter, nan_weight
from safetensors.torch import load_file

from konsilium.config import AdapterCacheSettings, open_home
from konsilium.engines import AdapterRequest, AdapterSupport
from konsilium.errors import ModelNotFoundError
from konsilium.roles.path_adapters import PathAdapterPool, vllm_lora_args
from konsilium.roles.registry import RoleRegistry
from konsilium.roles.runtime import RoleService, RoleUnavailableError
from konsilium.roles.stacking import stack
from konsilium.roles.validation import AdapterError, load_adapter_weights


class FolderEngine:
    engine_name = "vllm"
    adapter_support = AdapterSupport.PATHS

    def __init__(self):
        self.added: dict[str, tuple[Path, bool]] = {}
        self.removed: list[str] = []

    def add_adapter(self, name: str, path, pinned: bool = False) -> None:
        self.added[name] = (Path(path), pinned)

    def remove_adapter(self, name: str) -> None:
        self.added.pop(name, None)
        self.removed.append(name)

    def resident_adapters(self) -> set[str]:
        return set(self.added)


@pytest.fixture
def setup(tiny_llama, tmp_path):
    folders = {
        "core": make_adapter(tiny_llama, tmp_path / "a" / "core", rank=4, seed=1),
        "sport": make_adapter(tiny_llama, tmp_path / "a" / "sport", rank=8, targets=("q_proj", "down_proj"), seed=2),
        "cold": make_adapter(tiny_llama, tmp_path / "a" / "cold", rank=4, seed=3),
    }
    config = {
        # runtime loading is opt-in: on here, for the hot-load test, from this test's folder
        "adapter_cache": {"max_loaded": 2, "max_rank": 16, "runtime_loading": True, "runtime_folders": [str(tmp_path)]},
        "adapters": {
            "core": {"path": str(folders["core"]), "pinned": True},
            "sport": {"path": str(folders["sport"]), "tier": "cpu"},
            "cold": {"path": str(folders["cold"]), "tier": "disk"},
        },
        "roles": {
            "coach": {"description": "sport", "adapters": {"core": 1.0, "sport": 0.8}},
            "runner": {"description": "running", "adapters": {"sport": 1.0}},
        },
    }
    home_dir = tmp_path / "home"
    home_dir.mkdir()
    (home_dir / "konsilium.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    home = open_home(home_dir)
    engine = FolderEngine()
    roles = RoleService(engine, RoleRegistry.open(home), cache_settings=home.config.adapter_cache)
    return roles, engine, folders, home_dir


def test_the_cache_settings_become_vllms_lora_arguments():
    settings = AdapterCacheSettings(max_loaded=4, max_rank=32, cpu_bytes=100, gpu_bytes=0)
    assert vllm_lora_args(settings, [30, 30, 30, 30, 30, 30]) == {
        "max_loras": 4,  # 3 fit in 100 bytes of RAM, but vLLM needs its CPU cache at least as big as its slots
        "max_lora_rank": 32,
        "max_cpu_loras": 4,
    }
    more_ram = settings.model_copy(update={"cpu_bytes": 1000})
    assert vllm_lora_args(more_ram, [30] * 10 + [900])["max_cpu_loras"] == 10
    odd_rank = settings.model_copy(update={"max_rank": 48})
    assert vllm_lora_args(odd_rank, [])["max_lora_rank"] == 64  # vLLM takes 8/16/32/64/...
    with pytest.raises(ValueError, match="over vLLM's largest LoRA rank 512"):
        vllm_lora_args(settings.model_copy(update={"max_rank": 600}), [])


def test_preferred_tiers_and_pins_are_handed_to_the_engine_at_start(setup):
    roles, engine, folders, _ = setup
    assert isinstance(roles.cache, PathAdapterPool) and roles.support is AdapterSupport.PATHS
    roles.warm_all()
    assert engine.added == {"core": (folders["core"], True), "sport": (folders["sport"], False)}  # not "cold"
    status = {item["name"]: item for item in roles.adapters_status()}
    assert status["core"]["tier"] == "engine" and status["cold"]["tier"] == "disk"
    assert status["core"]["managed_by"] == "vllm" and status["core"]["pinned"]


def test_a_role_request_names_its_adapter_folder(setup):
    roles, _, folders, _ = setup
    assert roles.resolve("runner").adapter == AdapterRequest("sport", str(folders["sport"]))
    assert roles.resolve("konsilium").adapter is None  # the base model: no adapter at all


def test_a_stacked_role_is_written_once_as_a_folder_with_the_weighted_sum(setup):
    roles, _, folders, home_dir = setup
    adapter = roles.resolve("coach").adapter
    name, folder = adapter.name, Path(adapter.path)
    assert folder == home_dir / ".stacked" / "coach"
    parts = [(n, *load_adapter_weights(folders[n]), w) for n, w in (("core", 1.0), ("sport", 0.8))]
    config, expected = stack(parts)
    written = load_file(str(folder / "adapter_model.safetensors"))
    assert written.keys() == expected.keys()
    assert all(torch.equal(written[k], expected[k]) for k in expected)
    assert load_adapter_weights(folder)[0].r == config.r == 12  # a real PEFT folder: our own checks pass
    assert roles.resolve("coach").adapter == AdapterRequest(name, str(folder))  # written once


def test_a_stack_over_the_rank_limit_is_refused_with_the_reason(setup):
    roles, engine, _, home_dir = setup
    narrow = RoleService(
        engine, RoleRegistry.open(open_home(home_dir)), cache_settings={"max_loaded": 2, "max_rank": 10}
    )
    with pytest.raises(RoleUnavailableError, match="rank 12 in all, over adapter_cache.max_rank 10"):
        narrow.resolve("coach")
    assert narrow.resolve("runner").adapter.name == "sport"  # the other roles still work


def test_hot_load_checks_the_folder_and_unload_waits_for_the_answer_in_flight(setup, tmp_path):
    roles, engine, folders, _ = setup
    with pytest.raises(AdapterError, match="no adapter_config.json"):
        roles.load_lora("broken", str(tmp_path))
    assert "broken" not in roles.model_ids() and "broken" not in engine.added
    roles.load_lora("fresh", str(folders["cold"]))
    assert engine.added["fresh"] == (folders["cold"], False)  # loaded at once: usable as a model id
    resolution = roles.resolve("fresh")
    assert resolution.adapter == AdapterRequest("fresh", str(folders["cold"]))
    held = roles.using(resolution)
    held.__enter__()
    done = threading.Event()
    worker = threading.Thread(target=lambda: (roles.unload_lora("fresh"), done.set()))
    worker.start()
    assert not done.wait(0.5) and "fresh" in engine.added  # the answer is still being made
    held.__exit__(None, None, None)
    assert done.wait(10)
    assert engine.removed == ["fresh"]
    with pytest.raises(ModelNotFoundError):
        roles.resolve("fresh")


def test_adapters_that_fail_the_checks_never_reach_the_engine(setup, tiny_llama, tmp_path):
    """The engine reads folders itself (vLLM, without our checks): every check runs before it gets one."""
    roles, engine, folders, _ = setup
    nan = edit_weights(make_adapter(tiny_llama, tmp_path / "nan", rank=4, seed=7), nan_weight)
    with pytest.raises(AdapterError, match="NaN or infinite"):
        roles.load_lora("nan", str(nan))
    loud = edit_config(make_adapter(tiny_llama, tmp_path / "loud", rank=4, seed=8), lora_alpha=1e300)
    with pytest.raises(AdapterError, match="once scaled by its lora_alpha"):
        roles.load_lora("loud", str(loud))
    assert "nan" not in engine.added and "loud" not in engine.added
    assert not {"nan", "loud"} & set(roles.model_ids())
    edit_weights(folders["sport"], nan_weight)  # a configured adapter goes bad before its first use
    for role in ("runner", "coach"):  # alone, and stacked with core
        with pytest.raises(RoleUnavailableError, match="NaN or infinite"):
            roles.resolve(role)
    assert "sport" not in engine.added
