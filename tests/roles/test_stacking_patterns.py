"""A stacked role over adapters with per-module ranks and alphas (`rank_pattern`, `alpha_pattern`, rsLoRA): its
update is the weighted sum of the sources' updates module by module, as PEFT itself computes them. Real parts: PEFT
adapter folders, PEFT loading them (and the stacked folder) onto a small Llama with random weights, LoRA slots."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from adapters import make_adapter, tiny_llama
from peft import PeftModel
from peft.tuners.lora import LoraLayer

from konsilium.engines.lora_slots import LoraSlots
from konsilium.roles.path_adapters import write_stacked
from konsilium.roles.stacking import StackingError, stack
from konsilium.roles.validation import load_adapter_weights

IDS = torch.tensor([[1, 17, 42, 99, 5, 200]])
WEIGHTS = {"patterned": 1.0, "rslora": 0.5, "plain": 0.8}


@pytest.fixture(scope="module")
def llama():
    return tiny_llama()


@pytest.fixture(scope="module")
def sources(llama, tmp_path_factory):
    root = tmp_path_factory.mktemp("patterns")
    return {
        # a module-specific rank (o_proj everywhere, one layer's q_proj) and alphas (all down_proj, all v_proj)
        "patterned": make_adapter(
            llama,
            root / "patterned",
            rank=8,
            targets=("q_proj", "v_proj", "o_proj", "down_proj"),
            seed=1,
            scale=0.3,
            alpha=16,
            rank_pattern={"o_proj": 2, "layers.1.self_attn.q_proj": 4},
            alpha_pattern={"down_proj": 40, "v_proj": 3},
        ),
        # rsLoRA (alpha / √r) with a pattern of each kind
        "rslora": make_adapter(
            llama,
            root / "rslora",
            rank=4,
            targets=("q_proj", "up_proj"),
            seed=2,
            scale=0.3,
            alpha=8,
            rank_pattern={"q_proj": 6},
            alpha_pattern={"up_proj": 2},
            use_rslora=True,
        ),
        "plain": make_adapter(llama, root / "plain", rank=4, targets=("q_proj", "gate_proj"), seed=3, scale=0.3),
    }


def peft_model(llama, folders: dict):
    with warnings.catch_warnings():  # PEFT's notes about the base model's name
        warnings.simplefilter("ignore")
        names = list(folders)
        model = PeftModel.from_pretrained(copy.deepcopy(llama), str(folders[names[0]]), adapter_name=names[0])
        for name in names[1:]:
            model.load_adapter(str(folders[name]), adapter_name=name)
    return model.eval()


def lora_layers(model) -> dict[str, LoraLayer]:
    return {
        name.removeprefix("base_model.model."): module
        for name, module in model.named_modules()
        if isinstance(module, LoraLayer)
    }


def test_a_stack_of_patterned_adapters_is_the_weighted_sum_of_what_peft_makes_of_each(llama, sources, tmp_path):
    parts = [(name, *load_adapter_weights(folder), WEIGHTS[name]) for name, folder in sources.items()]
    config, weights = stack(parts)
    stacked = write_stacked(tmp_path / "stacked", config, weights)

    # PEFT's own update per module for each source (its own scaling: patterns, rsLoRA), weighted and summed...
    with torch.no_grad():
        each = peft_model(llama, sources)
        expected = {}
        for name, layer in lora_layers(each).items():
            deltas = [WEIGHTS[n] * layer.get_delta_weight(n) for n in sources if n in layer.lora_A]
            expected[name] = torch.stack(deltas).sum(0)
        patterned = lora_layers(each)["model.layers.0.self_attn.o_proj"]
        assert patterned.r["patterned"] == 2 and patterned.scaling["patterned"] == 8  # the patterns are in play
        assert lora_layers(each)["model.layers.0.mlp.up_proj"].scaling["rslora"] == 1  # 2 / √4

        # ...against PEFT's update per module for the stacked folder (which PEFT loads as it is)
        got = {
            name: layer.get_delta_weight("default")
            for name, layer in lora_layers(peft_model(llama, {"default": stacked})).items()
        }
    assert got.keys() == expected.keys()
    for name, delta in expected.items():
        assert torch.allclose(got[name], delta, atol=1e-6), name

    # The same on the model's answer: the stacked adapter = the base model with every weighted update merged in.
    merged = copy.deepcopy(llama)
    modules = dict(merged.named_modules())
    with torch.no_grad():
        for name, delta in expected.items():
            modules[name].weight += delta
        want = merged(input_ids=IDS).logits[0, -1]
        with_stack = peft_model(llama, {"default": stacked})(input_ids=IDS).logits[0, -1]
        assert not torch.allclose(want, llama(input_ids=IDS).logits[0, -1], atol=1e-3)  # it changes the answer
    assert torch.allclose(with_stack, want, atol=1e-4)

    # and in the LoRA slots the transformers engine serves from
    slots = LoraSlots(copy.deepcopy(llama), slots=1, max_rank=config.r)
    slots.load("stacked", config, weights)
    with torch.inference_mode(), slots.serving(["stacked"]):
        assert torch.allclose(slots.model(input_ids=IDS).logits[0, -1], want, atol=1e-4)


def test_a_source_whose_factors_disagree_with_its_rank_pattern_is_refused(llama, sources):
    config, weights = load_adapter_weights(sources["patterned"])
    config.rank_pattern = {"o_proj": 3}  # the saved o_proj factors have 2 rows: PEFT could not load this either
    with pytest.raises(StackingError, match=r"o_proj.*rank 2.*rank_pattern.*3"):
        stack([("patterned", config, weights, 1.0)])
