"""What the vLLM engine hands vLLM as a LoRA adapter: a folder that passed the same checks as on the transformers
engine (no NaN or infinite weights, no alpha that overflows once folded into the factors, no rank-0 factors, no
unsafe patterns, no rank over the limit), checked again when its files change. vLLM itself is not needed (nor
installed here): the engine's `LoraRequests` builds the request, with a stand-in for vLLM's `LoRARequest`. Real
parts: PEFT adapter folders made for a small Llama."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import pytest
import torch
from adapters import edit_config, edit_weights, make_adapter, nan_weight, rank_zero

from konsilium.engines import AdapterRequest
from konsilium.engines.vllm_engine import LoraRequests
from konsilium.roles.validation import AdapterError

BACKTRACKING = "(.|.){0,25}X"


@dataclass(frozen=True)
class FakeLoRARequest:
    """vLLM's `LoRARequest(lora_name, lora_int_id, lora_path)`."""

    lora_name: str
    lora_int_id: int
    lora_path: str


def requests(max_rank: int = 16, dtype=None) -> LoraRequests:
    return LoraRequests(max_rank, dtype=dtype, make_request=FakeLoRARequest)


def with_alpha(folder, text: str):
    """lora_alpha written as raw JSON text (NaN, 1e400: what json.dumps will not write)."""
    config = json.loads((folder / "adapter_config.json").read_text())
    config["lora_alpha"] = "ALPHA"
    (folder / "adapter_config.json").write_text(json.dumps(config).replace('"ALPHA"', text))
    return folder


def test_a_good_adapter_gets_a_request_with_its_folder_and_a_stable_id(tiny_llama, tmp_path):
    good = make_adapter(tiny_llama, tmp_path / "good", rank=8, seed=1)
    other = make_adapter(tiny_llama, tmp_path / "other", rank=4, seed=2)
    loras = requests()
    first = loras.request(AdapterRequest("good", str(good)))
    assert first == FakeLoRARequest("good", 1, str(good.resolve()))
    assert loras.request(AdapterRequest("other", str(other))).lora_int_id == 2
    assert loras.request(AdapterRequest("good", str(good))) == first  # the same id on every request
    assert loras.request(None) is None  # the base model
    assert loras.forget("good") == 1 and loras.forget("good") is None
    assert loras.request(AdapterRequest("good", str(good))).lora_int_id == 3  # a fresh id after a removal


HOSTILE = {  # how each adapter is broken, and what the refusal says
    "nan_weights": (lambda f: edit_weights(f, nan_weight), "holds NaN or infinite values"),
    "nan_alpha": (lambda f: with_alpha(f, "NaN"), "lora_alpha must be a finite number"),
    "inf_alpha": (lambda f: with_alpha(f, "1e400"), "lora_alpha must be a finite number"),
    "huge_alpha": (lambda f: edit_config(f, lora_alpha=1e300), "NaN or infinite values once scaled"),  # finite
    "huge_alpha_pattern": (lambda f: edit_config(f, alpha_pattern={"q_proj": 1e300}), "once scaled"),
    "rank_zero": (lambda f: edit_weights(f, rank_zero), "rank 0"),
    "backtracking": (lambda f: edit_config(f, alpha_pattern={BACKTRACKING: 8}), "exponential"),
    "bad_regex": (lambda f: edit_config(f, rank_pattern={"(": 8}), "not a valid regular expression"),
    "over_rank": (lambda f: edit_config(f, rank_pattern={"q_proj": 32}), "over the configured maximum 16"),
    "dora": (lambda f: edit_config(f, use_dora=True), "DoRA"),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_a_hostile_adapter_never_reaches_vllm(tiny_llama, tmp_path, case):
    breaks, reason = HOSTILE[case]
    folder = breaks(make_adapter(tiny_llama, tmp_path / case, rank=8, seed=3))
    made = []
    loras = LoraRequests(16, make_request=lambda *args: made.append(args))
    with pytest.raises(AdapterError, match=reason):
        loras.request(AdapterRequest(case, str(folder)))
    assert made == []  # no request was built: vLLM never sees the folder


def test_an_alpha_that_overflows_the_models_dtype_is_refused_for_that_dtype(tiny_llama, tmp_path):
    folder = edit_config(make_adapter(tiny_llama, tmp_path / "loud", rank=8, seed=4, scale=1.0), lora_alpha=8e6)
    assert requests(dtype=torch.bfloat16).request(AdapterRequest("loud", str(folder))).lora_int_id == 1
    with pytest.raises(AdapterError, match="float16"):  # 65504 at most: vLLM would fold the scale into inf
        requests(dtype=torch.float16).request(AdapterRequest("loud", str(folder)))


def test_a_folder_rewritten_after_its_first_use_is_checked_again(tiny_llama, tmp_path):
    folder = make_adapter(tiny_llama, tmp_path / "swapped", rank=8, seed=5)
    loras = requests()
    assert loras.request(AdapterRequest("swapped", str(folder))).lora_int_id == 1
    weights = folder / "adapter_model.safetensors"
    before = weights.stat()
    edit_weights(folder, nan_weight)  # same size, other bytes
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000))  # even within one mtime tick
    with pytest.raises(AdapterError, match="NaN"):
        loras.request(AdapterRequest("swapped", str(folder)))


def test_a_request_without_a_folder_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="has no folder for vLLM to load"):
        requests().request(AdapterRequest("nameless"))
    with pytest.raises(AdapterError, match="does not exist"):
        requests().request(AdapterRequest("gone", str(tmp_path / "gone")))
