"""The converted copy of a GGUF model: later starts load it instead of converting again, it answers exactly as the
GGUF file does, it follows the file (an edited file converts again) and a cache that cannot be written costs only a
warning."""

from __future__ import annotations

import json
import logging
import os

import pytest
import torch
from tiny_models import tiny_llama

from konsilium.engines import SamplingParams, embedded_default, load_embedded_default
from konsilium.engines.gguf_cache import CACHE_ENV, find_converted, store_converted


def tiny_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel({f"w{i}": i for i in range(256)} | {"<unk>": 0}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", eos_token="w2")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(root))
    return root


@pytest.fixture
def gguf(tmp_path):
    path = tmp_path / "models" / "tiny.Q4_0.gguf"  # the key is the file's place and state, not its content
    path.parent.mkdir()
    path.write_bytes(b"GGUF" + bytes(64))
    return path


def test_a_stored_copy_is_found_and_loads_the_same_weights_with_tied_embeddings(cache, gguf):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = tiny_llama(tie_word_embeddings=True)
    assert find_converted(gguf, None) is None
    folder = store_converted(gguf, None, model, tiny_tokenizer())
    assert folder is not None and folder.is_relative_to(cache)
    assert find_converted(gguf, None) == folder
    loaded = AutoModelForCausalLM.from_pretrained(folder)
    assert loaded.lm_head.weight.data_ptr() == loaded.model.embed_tokens.weight.data_ptr()
    expected = model.state_dict()
    assert all(torch.equal(tensor, expected[name]) for name, tensor in loaded.state_dict().items())
    assert AutoTokenizer.from_pretrained(folder)("w5 w7")["input_ids"] == [5, 7]
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".converting-")]


def test_an_edited_file_converts_again_and_the_stale_copy_goes_but_other_dtypes_stay(cache, gguf):
    model, tokenizer = tiny_llama(), tiny_tokenizer()
    first = store_converted(gguf, None, model, tokenizer)
    half = store_converted(gguf, "bfloat16", model.to(torch.bfloat16), tokenizer)
    assert find_converted(gguf, "bfloat16") == half != first
    gguf.write_bytes(b"GGUF" + bytes(128))  # the user replaced the file
    assert find_converted(gguf, None) is None
    second = store_converted(gguf, None, tiny_llama(), tokenizer)
    assert second != first and not first.exists()
    assert half.exists()  # another dtype's copy is not stale, only absent from this key


def test_a_cache_that_cannot_be_written_costs_a_warning_not_the_start(tmp_path, gguf, monkeypatch, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv(CACHE_ENV, str(blocker))
    with caplog.at_level(logging.WARNING, logger="konsilium.engine"):
        assert store_converted(gguf, None, tiny_llama(), tiny_tokenizer()) is None
    assert "could not keep a converted copy of tiny.Q4_0.gguf" in caplog.text
    assert find_converted(gguf, None) is None


def test_the_embedded_model_starts_from_its_copy_and_answers_exactly_as_from_the_gguf(monkeypatch):
    """The session's engine comes from the converted copy (made by the first start); one engine loaded from the
    GGUF itself must be indistinguishable: weights, tokenizer, chat template, greedy answer."""
    import transformers.modeling_gguf_pytorch_utils as gguf_utils

    from konsilium.engines.transformers_engine import TransformersEngine

    cached = load_embedded_default()
    folder, name = embedded_default()
    assert cached.converted_copy == find_converted(folder / name, None) is not None
    assert cached.info()["gguf_file"] == name and cached.info()["path"] == str(folder.resolve())

    direct = TransformersEngine(folder, gguf_file=name, gguf_cache=False)
    assert direct.converted_copy is None
    theirs, ours = direct.model.state_dict(), cached.model.state_dict()
    assert theirs.keys() == ours.keys() and all(torch.equal(theirs[k], ours[k]) for k in theirs)
    text = "Привет! Where is Москва? <|im_end|> 3.14"
    assert direct.tokenizer(text)["input_ids"] == cached.tokenizer(text)["input_ids"]
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    prompt = cached.apply_chat_template(messages)
    assert direct.apply_chat_template(messages) == prompt
    greedy = SamplingParams(max_tokens=16, temperature=0)
    assert direct.generate(prompt, greedy).text == cached.generate(prompt, greedy).text
    assert direct._eos_ids == cached._eos_ids

    # A second start reads only the copy: the GGUF converter is not called at all.
    def no_conversion(*args, **kwargs):
        raise AssertionError("the GGUF file was converted again")

    monkeypatch.setattr(gguf_utils, "load_gguf_checkpoint", no_conversion)
    again = TransformersEngine(folder, gguf_file=name)
    assert again.converted_copy == cached.converted_copy
    assert os.path.getsize(again.converted_copy / "model.safetensors") > 0


def test_a_second_start_waits_for_the_conversion_in_progress_instead_of_converting_too(cache, gguf):
    import threading
    import time

    from konsilium.engines.gguf_cache import one_conversion_at_a_time

    order: list[str] = []
    converting = threading.Event()

    def first():
        with one_conversion_at_a_time(gguf, None):
            converting.set()
            time.sleep(0.3)
            store_converted(gguf, None, tiny_llama(), tiny_tokenizer())
            order.append("first stored")

    def second():
        converting.wait(5)
        with one_conversion_at_a_time(gguf, None):
            order.append("second found a copy" if find_converted(gguf, None) else "second converts too")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert order == ["first stored", "second found a copy"]
