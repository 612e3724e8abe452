"""Adapters made to hurt: NaN weights, backtracking regexes, rank 0, negative ranks, DoRA, paths outside the allowed
folders. Each is refused with a clear reason (400 or 403 over HTTP, exit 1 on the CLI), and none can touch the
answers of other requests. Real parts throughout: PEFT adapter folders, a small real Llama with LoRA slots, the
real server with the `openai`-style HTTP calls (httpx2), the CLI in-process."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx2
import pytest
import torch
import yaml
from adapters import edit_config, edit_weights, make_adapter, nan_weight, rank_zero, tiny_llama
from fake_engine import FakePrepared, FakeSlotsEngine
from live_server import running_server
from peft import LoraConfig
from typer.testing import CliRunner

from konsilium.config import open_home
from konsilium.engines.lora_slots import AdapterLoadError, LoraSlots
from konsilium.roles.patterns import PatternError, compile_pattern, pattern_key
from konsilium.roles.registry import RoleRegistry
from konsilium.roles.runtime import RoleService
from konsilium.roles.spec import RetrievalScope, RoleSpecError
from konsilium.roles.validation import AdapterError, check_info, inspect_adapter, load_adapter_weights, read_tensors
from konsilium.server import create_app

BACKTRACKING = "(.|.){0,25}X"  # 2^25 ways to fail on every module name, in PEFT's own matcher


@pytest.fixture(scope="module")
def llama():
    return tiny_llama()


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("hostile")


def adapter(llama, folder: Path, **options) -> Path:
    return make_adapter(llama, folder, seed=options.pop("seed", 1), scale=0.5, **options)


def last_logits(slots: LoraSlots, names: list[str | None]) -> torch.Tensor:
    ids = torch.tensor([[1, 17, 42, 99, 5]]).repeat(len(names), 1)
    with torch.inference_mode(), slots.serving(names):
        return slots.model(input_ids=ids).logits[:, -1]


# --- 1. non-finite values ---------------------------------------------------------------------------------------


def test_a_poisoned_adapter_in_a_mixed_batch_leaves_the_base_rows_untouched(llama, root):
    slots = LoraSlots(llama, slots=2, max_rank=8)
    good = adapter(llama, root / "good8", rank=8, seed=2)
    base = last_logits(slots, [None, None, None])[1]  # the same batch shape: the same arithmetic
    prepared = slots.prepare("bad", *load_adapter_weights(good))
    for _, bt in prepared.groups.values():  # got in past every check (v_proj's reaches the logits)
        bt[0, 0, 0] = float("nan")
    slots.load("bad", None, prepared)
    mixed = last_logits(slots, ["bad", None, None])
    assert torch.isnan(mixed[0]).any()  # the poisoned row is its own business...
    assert torch.equal(mixed[1], base) and torch.equal(mixed[2], base)  # ...the base rows are exactly the base


def test_an_adapter_loaded_over_a_poisoned_slot_does_not_inherit_its_values(llama, root):
    slots = LoraSlots(llama, slots=2, max_rank=8)
    wide = adapter(llama, root / "wide8", rank=8, seed=3)
    narrow = adapter(llama, root / "narrow4", rank=4, seed=4)
    poisoned = slots.prepare("bad", *load_adapter_weights(wide))
    for a, _ in poisoned.groups.values():
        a.fill_(float("nan"))
    slots.load("bad", None, poisoned)
    slots.load("wide", *load_adapter_weights(wide))
    slots.unload("bad")
    slots.load("narrow", *load_adapter_weights(narrow))  # into the poisoned slot: the only free one
    alone = last_logits(slots, ["narrow"])[0]
    together = last_logits(slots, ["narrow", "wide"])  # rank 8 is read for both rows
    assert torch.isfinite(together).all()
    assert torch.allclose(together[0], alone, atol=1e-5)


def test_non_finite_weights_alpha_and_scales_are_refused_with_the_reason(llama, root, tmp_path):
    good = adapter(llama, root / "good8b", rank=8)
    nan = edit_weights(adapter(llama, tmp_path / "nan", rank=8), nan_weight)
    with pytest.raises(AdapterError, match="holds NaN or infinite values"):
        load_adapter_weights(nan)
    for name, text in (("nan_alpha", "NaN"), ("inf_alpha", "1e400")):
        folder = adapter(llama, tmp_path / name, rank=8)
        config = json.loads((folder / "adapter_config.json").read_text())
        config["lora_alpha"] = "ALPHA"
        (folder / "adapter_config.json").write_text(json.dumps(config).replace('"ALPHA"', text))
        with pytest.raises(AdapterError, match="lora_alpha must be a finite number"):
            inspect_adapter(folder)
    folder = adapter(llama, tmp_path / "nan_pattern", rank=8)
    (folder / "adapter_config.json").write_text(
        (folder / "adapter_config.json").read_text().replace('"alpha_pattern": {}', '"alpha_pattern": {"q_proj": NaN}')
    )
    with pytest.raises(AdapterError, match=r"alpha_pattern\['q_proj'\] must be a finite number"):
        inspect_adapter(folder)
    # A finite alpha whose scale overflows the model's dtype once folded into B: refused by the slots.
    config, weights = load_adapter_weights(good)
    config.lora_alpha = 1e300
    with pytest.raises(AdapterLoadError, match="NaN or infinite"):
        LoraSlots(llama, slots=1, max_rank=8).prepare("huge", config, weights)


# --- 2. patterns ------------------------------------------------------------------------------------------------


def test_patterns_match_as_peft_does(llama):
    from peft.utils.other import get_pattern_key

    names = [name for name, _ in llama.named_modules() if name]
    keys = [
        "q_proj",
        "layers.0.self_attn.q_proj",
        r"model\.layers\.1\..*",
        "(q|k)_proj",
        r"layers\.\d+\.mlp\.(up|down)_proj",
        "^model.layers.0.mlp.gate_proj",
        "proj",
        "self_attn.*",
    ]
    for name in names:
        peft = get_pattern_key(keys, name)
        assert pattern_key(keys, name) == (peft if peft != name else None), name
    assert pattern_key(keys, "model.layers.0.self_attn.q_proj") == "q_proj"  # the first key that matches wins


@pytest.mark.parametrize(
    "key, reason",
    [
        (BACKTRACKING, "quantifier over an alternation"),
        ("(a+)+b", "nested quantifiers"),
        (r"(proj)\1", "backreferences"),
        ("(?=q)q_proj", "lookarounds"),
        ("(", "not a valid regular expression"),
        ("a)|(b", "not a valid regular expression"),
    ],
)
def test_unsafe_or_invalid_patterns_are_refused_with_the_reason(key, reason):
    with pytest.raises(PatternError, match=re.escape(reason)):
        compile_pattern(key)


@pytest.mark.parametrize("field", ["alpha_pattern", "rank_pattern"])
def test_a_backtracking_pattern_is_refused_at_once(llama, tmp_path, field):
    folder = edit_config(adapter(llama, tmp_path / "a", rank=8), **{field: {BACKTRACKING: 8}})
    started = time.monotonic()
    with pytest.raises(AdapterError, match=f"{field}: .*exponential time"):
        load_adapter_weights(folder)
    assert time.monotonic() - started < 2


def test_the_slots_refuse_a_bad_alpha_pattern_that_skipped_the_checks(llama, root):
    config, weights = load_adapter_weights(adapter(llama, root / "good8c", rank=8))
    config.alpha_pattern = {"(": 8}
    with pytest.raises(AdapterLoadError, match="not a valid regular expression"):
        LoraSlots(llama, slots=1, max_rank=8).prepare("x", config, weights)


# --- 3 and 5. bad ranks, DoRA, collections ----------------------------------------------------------------------


def test_rank_zero_negative_ranks_and_dora_are_refused(llama, tmp_path):
    zero = edit_weights(adapter(llama, tmp_path / "zero", rank=8), rank_zero)
    assert any("rank 0" in p for p in check_info(inspect_adapter(zero), max_rank=64))
    with pytest.raises(AdapterLoadError, match="rank 0"):  # the slots refuse it too, not a ZeroDivisionError
        raw = LoraConfig.from_pretrained(str(zero)), read_tensors(zero / "adapter_model.safetensors")
        LoraSlots(llama, slots=1, max_rank=8).prepare("zero", *raw)
    negative = edit_config(adapter(llama, tmp_path / "negative", rank=8), r=-5)
    with pytest.raises(AdapterError, match="r must be a positive integer .* got -5"):
        inspect_adapter(negative)
    ranked = edit_config(adapter(llama, tmp_path / "ranked", rank=8), rank_pattern={"q_proj": 0})
    with pytest.raises(AdapterError, match=r"rank_pattern\['q_proj'\] must be a positive integer"):
        inspect_adapter(ranked)
    dora = adapter(llama, tmp_path / "dora", rank=8, use_dora=True)
    assert any("DoRA" in p for p in check_info(inspect_adapter(dora), max_rank=64))


def test_a_collection_must_be_a_plain_name():
    for bad in ("../../etc", "a/b", "x.y"):
        with pytest.raises(RoleSpecError, match="is not a collection name"):
            RetrievalScope(collections=(bad,))
    assert RetrievalScope(collections=("work", "my-notes_2")).collections == ("work", "my-notes_2")


def test_the_cli_refuses_each_with_one_line(llama, tmp_path):
    from konsilium.cli.main import app

    home = tmp_path / "home"
    zero = edit_weights(adapter(llama, tmp_path / "zero", rank=8), rank_zero)
    cases = {
        "backtracking": (
            edit_config(adapter(llama, tmp_path / "bt", rank=8), alpha_pattern={BACKTRACKING: 8}),
            "exponential",
        ),
        "paren": (
            edit_config(adapter(llama, tmp_path / "paren", rank=8), alpha_pattern={"(": 8}),
            "not a valid regular",
        ),
        "negative": (edit_config(adapter(llama, tmp_path / "neg", rank=8), r=-5), "r must be a positive integer"),
        "zero": (zero, "rank 0"),
    }
    runner = CliRunner()
    for name, (folder, reason) in cases.items():
        done = runner.invoke(app, ["--home", str(home), "adapters", "add", name, str(folder)])
        assert done.exit_code == 1 and reason in done.stderr and "Traceback" not in done.output, (name, done.output)
    listed = runner.invoke(app, ["--home", str(home), "adapters", "list", "--json"])
    assert json.loads(listed.stdout) == []  # nothing was added
    role = runner.invoke(app, ["--home", str(home), "roles", "add", "r1", "--collection", "../../etc"])
    assert role.exit_code == 1 and "is not a collection name" in role.stderr


# --- 3 and 4 over HTTP ------------------------------------------------------------------------------------------


class SlotsCheckingEngine(FakeSlotsEngine):
    """The fake slots engine, but every adapter also goes through real LoRA slots on the small Llama (as the
    transformers engine does): what the slots refuse is refused here."""

    def __init__(self, model):
        super().__init__()
        self.real = LoraSlots(model, slots=2, max_rank=16)

    def prepare_adapter(self, name, config, weights):
        if not isinstance(weights, FakePrepared):
            self.real.prepare(name, config, weights)
        return super().prepare_adapter(name, config, weights)


def serve_home(engine, home_dir: Path, adapter_cache: dict):
    home_dir.mkdir(parents=True, exist_ok=True)
    (home_dir / "konsilium.yaml").write_text(yaml.safe_dump({"adapter_cache": adapter_cache}), encoding="utf-8")
    home = open_home(home_dir)
    roles = RoleService(engine, RoleRegistry.open(home), cache_settings=home.config.adapter_cache)
    return running_server(create_app(engine, roles=roles))


def load(url, name, path):
    return httpx2.post(f"{url}/v1/load_lora_adapter", json={"lora_name": name, "lora_path": str(path)}, timeout=60)


def test_hostile_adapters_get_400_with_the_reason_and_the_server_keeps_serving(llama, tmp_path):
    allowed = tmp_path / "home" / "adapters"  # the default allowed folder
    make = lambda name, **options: adapter(llama, allowed / name, rank=8, **options)  # noqa: E731
    cases = {
        "zero": (edit_weights(make("zero"), rank_zero), "rank 0"),
        "paren": (edit_config(make("paren"), alpha_pattern={"(": 8}), "not a valid regular expression"),
        "backtracking": (edit_config(make("bt"), alpha_pattern={BACKTRACKING: 8}), "exponential"),
        "nan": (edit_weights(make("nan"), nan_weight), "NaN"),
        "negative": (edit_config(make("neg"), r=-5), "r must be a positive integer"),
        "dora": (make("dora", use_dora=True), "DoRA"),
    }
    good = make("good")
    with serve_home(SlotsCheckingEngine(llama), tmp_path / "home", {"runtime_loading": True}) as url:
        for name, (folder, reason) in cases.items():
            started = time.monotonic()
            refused = load(url, name, folder)
            assert refused.status_code == 400, (name, refused.text)
            assert reason in refused.json()["error"]["message"] and refused.json()["error"]["param"] == "lora_path"
            assert time.monotonic() - started < 5, name
        assert load(url, "good", good).status_code == 200  # the server still serves
        ids = [m["id"] for m in httpx2.get(f"{url}/v1/models", timeout=30).json()["data"]]
        assert "good" in ids and not set(cases) & set(ids)


def test_runtime_loading_is_off_unless_allowed_and_reads_only_the_allowed_folders(llama, tmp_path):
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    good = adapter(llama, allowed / "good", rank=8)
    elsewhere = adapter(llama, outside / "elsewhere", rank=8)
    (allowed / "link").symlink_to(elsewhere, target_is_directory=True)  # inside by name, outside in truth
    with running_server(create_app(FakeSlotsEngine())) as url:  # the default: off
        off = load(url, "good", good)
        assert off.status_code == 403 and "adapter_cache.runtime_loading: true" in off.json()["error"]["message"]
        unload = httpx2.post(f"{url}/v1/unload_lora_adapter", json={"lora_name": "good"}, timeout=30)
        assert unload.status_code == 403
    settings = {"runtime_loading": True, "runtime_folders": [str(allowed)]}
    with serve_home(FakeSlotsEngine(), tmp_path / "home", settings) as url:
        answers = [load(url, "x", path) for path in (elsewhere, outside / "missing", "/etc", allowed / "link", "../..")]
        assert {a.status_code for a in answers} == {403}
        assert len({a.json()["error"]["message"] for a in answers}) == 1  # whatever the path: exists or not
        assert "/etc" not in answers[0].text and str(outside) not in answers[0].text
        missing_inside = load(url, "x", allowed / "missing")
        assert missing_inside.status_code == 400 and "does not exist" in missing_inside.json()["error"]["message"]
        assert load(url, "good", good).status_code == 200
        ids = [m["id"] for m in httpx2.get(f"{url}/v1/models", timeout=30).json()["data"]]
        assert "good" in ids and "x" not in ids
