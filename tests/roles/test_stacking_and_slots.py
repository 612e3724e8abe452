"""Adapters in slots and stacked roles, on the real embedded model: outputs equal PEFT's own."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from adapters import MLP, make_adapter
from peft import PeftModel

from konsilium.engines.lora_slots import AdapterLoadError, LoraSlots
from konsilium.roles.stacking import scale_of, stack
from konsilium.roles.validation import load_adapter_weights

IDS = torch.tensor([[1, 330, 2010, 314, 253, 1978]])


@pytest.fixture(scope="module")
def folders(base_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    return {
        "attn8": make_adapter(base_model, root / "attn8", rank=8, seed=1, scale=0.05, alpha=16),
        "mlp16": make_adapter(base_model, root / "mlp16", rank=16, targets=MLP, seed=2, scale=0.05),
        "all4": make_adapter(base_model, root / "all4", rank=4, targets=("q_proj", "o_proj", "down_proj"), seed=3),
    }


@pytest.fixture(scope="module")
def expected(base_model, folders) -> dict:
    """PEFT's own answer for each adapter (one model copy holding all three), and the base model's."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        names = list(folders)
        model = PeftModel.from_pretrained(copy.deepcopy(base_model), str(folders[names[0]]), adapter_name=names[0])
        for name in names[1:]:
            model.load_adapter(str(folders[name]), adapter_name=name)
    model.eval()
    logits = {}
    with torch.inference_mode():
        for name in names:
            model.set_adapter(name)
            logits[name] = model(input_ids=IDS).logits[0, -1].clone()
        logits[None] = base_model(input_ids=IDS).logits[0, -1].clone()
    del model
    return logits


@pytest.fixture(scope="module")
def slots(base_model):
    return LoraSlots(copy.deepcopy(base_model), slots=3, max_rank=32)


def slot_logits(slots, names) -> torch.Tensor:
    batch = IDS.repeat(len(names), 1)
    with torch.inference_mode(), slots.serving(names):
        return slots.model(input_ids=batch).logits[:, -1]


def test_one_batch_serves_different_adapters_and_the_base_exactly_as_peft(folders, slots, expected):
    for name, folder in folders.items():
        slots.load(name, *load_adapter_weights(folder))
    mixed = slot_logits(slots, ["attn8", None, "mlp16", "all4"])
    for row, name in enumerate(["attn8", None, "mlp16", "all4"]):
        assert torch.allclose(mixed[row], expected[name], atol=2e-3), name
    assert not torch.allclose(mixed[0], expected[None], atol=1e-2)  # the adapters really change the answer
    for name in folders:  # a batch on one adapter takes the unbatched path: the same answers
        assert torch.allclose(slot_logits(slots, [name, name])[1], expected[name], atol=2e-3), name
    with torch.inference_mode():  # outside `serving` the model is the base model, slots loaded or not
        assert torch.allclose(slots.model(input_ids=IDS).logits[0, -1], expected[None], atol=1e-5)


def test_padding_rows_do_not_change_the_real_rows(folders, slots, expected):
    for name, folder in folders.items():
        if name not in slots.slot_of:
            slots.load(name, *load_adapter_weights(folder))
    batch = IDS.repeat(4, 1)
    with torch.inference_mode(), slots.serving(["mlp16", None], rows=4):
        out = slots.model(input_ids=batch).logits[:, -1]
    assert torch.allclose(out[0], expected["mlp16"], atol=2e-3)
    assert torch.allclose(out[1], expected[None], atol=2e-3)


def test_a_freed_slot_takes_another_adapter_without_leftovers(folders, slots, expected):
    for name in list(slots.slot_of):
        slots.unload(name)
    slots.load("mlp16", *load_adapter_weights(folders["mlp16"]))  # lands in a slot attn8 used before
    slots.load("attn8", *load_adapter_weights(folders["attn8"]))
    out = slot_logits(slots, ["mlp16", "attn8"])
    assert torch.allclose(out[0], expected["mlp16"], atol=2e-3)
    assert torch.allclose(out[1], expected["attn8"], atol=2e-3)


def test_slots_refuse_what_they_cannot_hold_and_stay_usable(base_model, folders, tmp_path, slots):
    for name in list(slots.slot_of):
        slots.unload(name)
    big = make_adapter(base_model, tmp_path / "big", rank=64)
    with pytest.raises(AdapterLoadError, match="rank 64, over this server's max_rank 32"):
        slots.load("big", *load_adapter_weights(big))
    slots.load("a", *load_adapter_weights(folders["attn8"]))
    with pytest.raises(AdapterLoadError, match="already loaded"):
        slots.load("a", *load_adapter_weights(folders["attn8"]))
    slots.load("b", *load_adapter_weights(folders["mlp16"]))
    slots.load("c", *load_adapter_weights(folders["all4"]))
    with pytest.raises(AdapterLoadError, match="all 3 adapter slots are in use"):
        slots.load("d", *load_adapter_weights(folders["all4"]))
    config, weights = load_adapter_weights(folders["attn8"])
    key = next(k for k in weights if k.endswith("q_proj.lora_A.weight"))
    weights[key] = weights[key][:, :100]
    slots.unload("c")
    with pytest.raises(AdapterLoadError, match="the model needs"):
        slots.load("bad", config, weights)
    assert "bad" not in slots.slot_of and len(slots.free) == 1  # nothing half-loaded


def test_a_stack_is_the_weighted_sum_of_its_adapters(folders):
    parts = []
    for name, weight in (("attn8", 1.0), ("mlp16", 0.5), ("all4", 0.8)):
        config, weights = load_adapter_weights(folders[name])
        parts.append((name, config, weights, weight))
    config, combined = stack(parts)
    assert config.r == 28 and set(config.target_modules) == {
        "q_proj",
        "v_proj",
        "o_proj",
        "down_proj",
        "gate_proj",
        "up_proj",
    }
    prefix = "base_model.model.model.layers.3.self_attn.q_proj"
    expected = torch.zeros_like(combined[prefix + ".lora_B.weight"] @ combined[prefix + ".lora_A.weight"])
    for _, part_config, weights, weight in parts:
        if prefix + ".lora_A.weight" in weights:
            delta = weights[prefix + ".lora_B.weight"] @ weights[prefix + ".lora_A.weight"]
            expected += weight * scale_of(part_config) * delta
    got = scale_of(config) * combined[prefix + ".lora_B.weight"] @ combined[prefix + ".lora_A.weight"]
    assert torch.allclose(got, expected, atol=1e-6)


def test_a_stack_of_one_at_weight_one_answers_like_the_adapter(base_model, folders, slots):
    for name in list(slots.slot_of):
        slots.unload(name)
    config, weights = load_adapter_weights(folders["attn8"])
    slots.load("alone", config, weights)
    slots.load("stacked", *stack([("attn8", config, weights, 1.0)]))
    out = slot_logits(slots, ["alone", "stacked"])
    assert torch.allclose(out[0], out[1], atol=1e-4)


def test_per_module_ranks_and_alphas_and_rslora_scale_as_in_peft(base_model, slots, tmp_path):
    folder = make_adapter(
        base_model,
        tmp_path / "patterned",
        rank=16,
        targets=("q_proj", "o_proj", "down_proj"),
        seed=4,
        scale=0.05,
        alpha=8,
        rank_pattern={"o_proj": 4},
        alpha_pattern={"down_proj": 40},
        use_rslora=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = PeftModel.from_pretrained(copy.deepcopy(base_model), str(folder)).eval()
    with torch.inference_mode():
        want = reference(input_ids=IDS).logits[0, -1]
    for name in list(slots.slot_of):
        slots.unload(name)
    slots.load("patterned", *load_adapter_weights(folder))
    assert torch.allclose(slot_logits(slots, ["patterned"])[0], want, atol=2e-3)


def test_a_batch_that_does_not_match_its_row_plan_is_an_error_not_a_wrong_answer(folders, slots):
    for name in ("attn8", "mlp16"):
        if name not in slots.slot_of:
            slots.load(name, *load_adapter_weights(folders[name]))
    with torch.inference_mode(), slots.serving(["attn8", "mlp16"]):
        with pytest.raises(RuntimeError, match=r"mixed-adapter batches need \[rows, tokens, features\]"):
            slots.model(input_ids=IDS)  # one row for a two-row plan
    assert slots.rows is None  # the plan ends with the block, whatever happened inside


def test_slots_that_would_not_fit_the_gpu_budget_are_refused_before_anything_is_allocated(base_model, folders, slots):
    built = sum(t.numel() * t.element_size() for g in slots.groups.values() for t in (g.a, g.bt))
    assert built == slots.nbytes  # what the refusal quotes is what building takes
    tight = LoraSlots(base_model, slots=8, max_rank=64, max_bytes=slots.nbytes)
    with pytest.raises(AdapterLoadError, match=r"need 0\.\d\d GB, over adapter_cache.gpu_bytes 0\.\d\d GB"):
        tight.load("attn8", *load_adapter_weights(folders["attn8"]))
    assert not tight.injected and not base_model._forward_hooks  # the shared model is untouched
    assert all(not m._forward_hooks for m in tight.modules.values())
