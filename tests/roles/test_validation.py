"""Adapter checks against the real embedded model, with real PEFT adapters made for it (and broken on purpose)."""

from __future__ import annotations

import copy
import shutil

import pytest
import torch
from adapters import ATTENTION, MLP, edit_config, edit_weights, make_adapter, rename_modules, widen_inputs

from konsilium.roles.validation import (
    AdapterError,
    base_model_warnings,
    check_against,
    check_info,
    inspect_adapter,
    load_adapter_weights,
)

PROMPT = torch.tensor([[1, 504, 3458, 314, 253, 1345, 30, 2]])  # token ids: any short input will do


def logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(PROMPT).logits


@pytest.fixture(scope="module")
def good(base_model, tmp_path_factory):
    return make_adapter(base_model, tmp_path_factory.mktemp("adapters") / "good", rank=8)


@pytest.fixture
def copy_of(good, tmp_path):
    """A fresh copy of the good adapter to break."""

    def make(name: str = "broken"):
        return shutil.copytree(good, tmp_path / name)

    return make


def test_making_an_adapter_leaves_the_base_model_alone(base_model, tmp_path):
    before = logits(base_model)
    modules = [type(m) for m in base_model.modules()]
    make_adapter(base_model, tmp_path / "a", rank=4, targets=ATTENTION + MLP)
    assert torch.equal(logits(base_model), before)
    assert [type(m) for m in base_model.modules()] == modules
    assert not any("lora" in name for name, _ in base_model.named_parameters())


def test_inspect_reads_the_config_and_the_shapes(good, base_model):
    info = inspect_adapter(good)
    layers = base_model.config.num_hidden_layers
    assert (info.name, info.peft_type, info.r, info.lora_alpha) == ("good", "LORA", 8, 8)
    assert sorted(info.target_modules) == ["q_proj", "v_proj"]
    assert info.base_model_name_or_path == base_model.config.name_or_path
    assert info.bytes == sum(p.stat().st_size for p in good.iterdir())
    assert len(info.tensors) == layers * 2 * 2  # two modules a layer, A and B each
    hidden = base_model.config.hidden_size
    kv = base_model.config.num_key_value_heads * base_model.config.head_dim
    assert info.tensors["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"] == (8, hidden)
    assert info.tensors["base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight"] == (kv, 8)
    assert info.to_dict()["tensors"] == len(info.tensors)


@pytest.mark.parametrize(
    "rank, targets",
    [(8, ("q_proj", "v_proj")), (16, ATTENTION + MLP), (64, ("q_proj", "o_proj", "down_proj"))],
)
def test_good_adapters_have_no_problems(base_model, tmp_path, rank, targets):
    info = inspect_adapter(make_adapter(base_model, tmp_path / f"r{rank}", rank=rank, targets=targets))
    assert info.r == rank
    assert check_against(info, base_model, max_rank=64) == []
    assert base_model_warnings(info, base_model) == []


@pytest.mark.parametrize(
    "options",
    [
        {"targets": "all-linear"},
        {"targets": r".*\.layers\.[0-3]\.self_attn\.(q|k)_proj"},  # a regex, matched whole
        {"targets": ("embed_tokens", "q_proj")},
        {"lora_bias": True},
        {"rank_pattern": {"v_proj": 4}},
    ],
)
def test_other_peft_forms_pass(base_model, tmp_path, options):
    info = inspect_adapter(make_adapter(base_model, tmp_path / "a", rank=4, **options))
    assert check_against(info, base_model, max_rank=64) == []


def test_the_adapter_is_real_peft_and_changes_the_answer(good, base_model):
    from peft import PeftModel, get_peft_model_state_dict

    model = PeftModel.from_pretrained(copy.deepcopy(base_model), str(good))
    assert not torch.allclose(logits(model), logits(base_model), atol=1e-3)
    config, weights = load_adapter_weights(good, max_rank=64, model=base_model)
    assert config.r == 8 and sorted(config.target_modules) == ["q_proj", "v_proj"]
    loaded = get_peft_model_state_dict(model)
    assert weights.keys() == loaded.keys()
    assert all(torch.equal(weights[k], loaded[k]) for k in weights)
    # A model already holding LoRA layers (as an engine's may) is checked as its base model.
    assert check_against(inspect_adapter(good), model, max_rank=64) == []
    assert check_against(inspect_adapter(good), model.get_base_model(), max_rank=64) == []


def test_wrong_shapes_are_named(copy_of, base_model):
    info = inspect_adapter(widen_inputs(copy_of(), extra=64))
    problems = check_against(info, base_model, max_rank=64)
    hidden = base_model.config.hidden_size
    assert len(problems) == base_model.config.num_hidden_layers * 2  # every lora_A, no lora_B
    assert problems[0] == (
        "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight: "
        f"shape [8, {hidden + 64}], expected [8, {hidden}] for model.layers.0.self_attn.q_proj"
    )
    assert check_info(info, 64) == []  # nothing the CLI can see without the model
    with pytest.raises(AdapterError, match=r"shape \[8, 640\], expected \[8, 576\].*\(\+\d+ more\)"):
        load_adapter_weights(info.path, max_rank=64, model=base_model)


def test_modules_the_model_lacks_are_named(copy_of, base_model):
    problems = check_against(inspect_adapter(rename_modules(copy_of())), base_model, max_rank=64)
    assert problems[0] == "target module 'qkv_proj' matches no module of the base model"
    assert (
        "base_model.model.model.layers.0.self_attn.qkv_proj.lora_A.weight: the base model has no module "
        "'model.layers.0.self_attn.qkv_proj'" in problems
    )
    extra = edit_config(copy_of("extra"), target_modules=["q_proj", "v_proj", "c_attn"])
    assert check_against(inspect_adapter(extra), base_model, 64) == [
        "target module 'c_attn' matches no module of the base model"
    ]
    regex = edit_config(copy_of("regex"), target_modules="transformer[.]h[.][0-9]+[.]attn")  # GPT-2's names
    problems = check_against(inspect_adapter(regex), base_model, 64)
    assert problems[0] == "target module 'transformer[.]h[.][0-9]+[.]attn' matches no module of the base model"


def test_rank_over_the_maximum(base_model, tmp_path, copy_of):
    info = inspect_adapter(make_adapter(base_model, tmp_path / "big", rank=128, targets=("q_proj",)))
    assert check_against(info, base_model, max_rank=64) == [
        "rank 128 is over the configured maximum 64 (adapter_cache.max_rank)"
    ]
    assert check_against(info, base_model, max_rank=128) == []
    with pytest.raises(AdapterError, match="rank 128 is over the configured maximum 64"):
        load_adapter_weights(info.path, max_rank=64)
    patterned = edit_config(copy_of(), rank_pattern={"q_proj": 96})
    assert "rank 96 is over the configured maximum 64" in check_info(inspect_adapter(patterned), 64)[0]


def test_only_lora_is_accepted(copy_of, base_model):
    info = inspect_adapter(edit_config(copy_of(), peft_type="IA3"))
    assert check_against(info, base_model, 64) == ["peft_type is IA3; only LoRA adapters are supported"]
    with pytest.raises(AdapterError, match="only LoRA adapters are supported"):
        load_adapter_weights(info.path)


def test_unpaired_factors_and_empty_targets(copy_of):
    halved = edit_weights(copy_of("half"), lambda w: {k: v for k, v in w.items() if "lora_B" not in k})
    assert "model.layers.0.self_attn.q_proj: lora_B is missing" in check_info(inspect_adapter(halved), 64)
    empty = edit_config(copy_of("empty"), target_modules=[])
    assert "target_modules is empty: the adapter changes nothing" in check_info(inspect_adapter(empty), 64)


def test_another_base_model_is_only_a_warning(copy_of, base_model):
    info = inspect_adapter(edit_config(copy_of(), base_model_name_or_path="HuggingFaceTB/SmolLM2-360M-Instruct"))
    assert check_against(info, base_model, 64) == []
    (warning,) = base_model_warnings(info, base_model)
    assert "trained on 'HuggingFaceTB/SmolLM2-360M-Instruct'" in warning


def test_inspect_reads_only_the_header(copy_of):
    folder = copy_of()
    weights = folder / "adapter_model.safetensors"
    (length,) = __import__("struct").unpack("<Q", weights.read_bytes()[:8])
    weights.write_bytes(weights.read_bytes()[: 8 + length + 16])  # the tensors' data cut off
    assert len(inspect_adapter(folder).tensors) > 0
    with pytest.raises(AdapterError, match="adapter_model.safetensors: cannot load"):
        load_adapter_weights(folder)


@pytest.mark.parametrize(
    "breakage, message",
    [
        (lambda f: shutil.rmtree(f), "adapter folder {f} does not exist"),
        (lambda f: (shutil.rmtree(f), f.write_text("x")), "adapter path {f} is not a folder"),
        (lambda f: (f / "adapter_config.json").unlink(), "{f}: no adapter_config.json; a PEFT adapter folder holds"),
        (lambda f: (f / "adapter_config.json").write_text("{r: 8"), "{f}/adapter_config.json: unreadable JSON"),
        (lambda f: (f / "adapter_config.json").write_text("[8]"), "adapter_config.json: expected a JSON object"),
        (lambda f: (f / "adapter_config.json").write_text("{}"), "adapter_config.json: no peft_type"),
        (
            lambda f: (f / "adapter_config.json").write_text('{"peft_type": "LORA", "r": "8"}'),
            "adapter_config.json: r must be int, got '8'",
        ),
        (lambda f: (f / "adapter_model.safetensors").unlink(), "{f}: no adapter_model.safetensors"),
        (
            lambda f: (f / "adapter_model.safetensors").rename(f / "adapter_model.bin"),
            "{f}: only adapter_model.bin (a pickle) is there",
        ),
        (lambda f: (f / "adapter_model.safetensors").write_bytes(b"abc"), "not a safetensors file (only 3 bytes)"),
        (
            lambda f: (f / "adapter_model.safetensors").write_bytes(b"\xff" * 64),
            "not a safetensors file (header length",
        ),
        (
            lambda f: (f / "adapter_model.safetensors").write_bytes(b"\x04\0\0\0\0\0\0\0{x}!"),
            "not a safetensors file (unreadable header",
        ),
    ],
)
def test_unreadable_adapters_raise_one_clear_line(copy_of, breakage, message):
    folder = copy_of()
    breakage(folder)
    with pytest.raises(AdapterError) as info:
        inspect_adapter(folder)
    assert message.format(f=folder) in str(info.value)
    assert "\n" not in str(info.value) and isinstance(info.value, ValueError)
    with pytest.raises(AdapterError):
        load_adapter_weights(folder)


def test_one_read_gives_the_same_tensors_as_safetensors_in_any_float_dtype(copy_of):
    from safetensors.torch import load_file

    from konsilium.roles.validation import read_tensors

    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        folder = edit_weights(copy_of(str(dtype)), lambda w, d=dtype: {k: v.to(d) for k, v in w.items()})
        path = folder / "adapter_model.safetensors"
        ours, theirs = read_tensors(path), load_file(str(path))
        assert ours.keys() == theirs.keys()
        assert all(ours[k].dtype == dtype and torch.equal(ours[k], theirs[k]) for k in theirs)
