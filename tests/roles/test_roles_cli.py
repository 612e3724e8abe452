"""`konsilium roles` and `konsilium adapters` as the user runs them over a temporary home, with real PEFT adapter
folders (made on a small Llama: the CLI checks files, not shapes against the model). Through the real typer app in
this process (a process start costs seconds of imports); the installed command in a subprocess where its own exit
status and stderr are checked."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml
from adapters import edit_config, make_adapter
from cli_runner import run_process
from cli_runner import run_with_home as run
from click.testing import Result


def error_of(proc: subprocess.CompletedProcess | Result) -> str:
    """The one error line; with --json also the same message on stdout."""
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0].removeprefix("error: ")


@pytest.fixture(scope="module")
def folders(tiny_llama, tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    good = make_adapter(tiny_llama, root / "good", rank=8, targets=("q_proj", "v_proj", "down_proj"))
    big = make_adapter(tiny_llama, root / "big", rank=128, targets=("q_proj",))
    ia3 = edit_config(make_adapter(tiny_llama, root / "ia3", rank=4), peft_type="IA3")
    return good, big, ia3


def test_an_empty_home_lists_nothing(tmp_path):
    assert json.loads(run_process(tmp_path, "roles", "list", "--json").stdout) == []
    assert json.loads(run(tmp_path, "adapters", "list", "--json").stdout) == []
    assert "no roles yet" in run(tmp_path, "roles", "list").stdout
    assert "no adapters yet" in run(tmp_path, "adapters", "list").stdout
    assert not (tmp_path / "roles.yaml").exists()


def test_adapters_add_list_remove(tmp_path, folders):
    good, _, _ = folders
    proc = run(tmp_path, "adapters", "add", "core", str(good), "--tier", "gpu", "--pinned", "--json")
    added = json.loads(proc.stdout)
    assert added["name"] == "core" and added["ok"] and added["problems"] == []
    assert (added["tier"], added["pinned"], added["rank"], added["path"]) == ("gpu", True, 8, str(good))
    assert sorted(added["target_modules"]) == ["down_proj", "q_proj", "v_proj"]
    assert added["bytes"] == sum(p.stat().st_size for p in good.iterdir())
    assert added["source"] == str(tmp_path / "roles.yaml")
    (listed,) = json.loads(run(tmp_path, "adapters", "list", "--json").stdout)
    assert listed == added
    table = run(tmp_path, "adapters", "list").stdout
    assert "core" in table and "gpu pinned" in table and " ok " in table
    assert json.loads(run(tmp_path, "adapters", "remove", "core", "--json").stdout)["removed"] == "core"
    assert good.exists()  # the folder itself is left alone
    assert json.loads(run(tmp_path, "adapters", "list", "--json").stdout) == []


def test_a_broken_adapter_is_refused_with_the_reason(tmp_path, folders):
    _, big, ia3 = folders
    proc = run_process(tmp_path, "adapters", "add", "big", str(big), code=1)  # the real process's exit and stderr
    assert error_of(proc) == (
        f"adapter 'big' refused: {big}: rank 128 is over the configured maximum 64 (adapter_cache.max_rank)"
    )
    proc = run(tmp_path, "adapters", "add", "ia3", str(ia3), "--json", code=1)
    assert "peft_type is IA3; only LoRA adapters are supported" in json.loads(proc.stdout)["error"]["message"]
    assert "only LoRA" in error_of(proc)
    assert "does not exist" in error_of(run(tmp_path, "adapters", "add", "x", str(tmp_path / "nothing"), code=1))
    proc = run(tmp_path, "adapters", "add", "x", str(big), "--tier", "ram", code=1)
    assert "adapters.x.tier: 'ram' is not allowed" in error_of(proc)
    assert json.loads(run(tmp_path, "adapters", "list", "--json").stdout) == []
    # A higher max_rank in konsilium.yaml lets the big one in.
    (tmp_path / "konsilium.yaml").write_text("adapter_cache:\n  max_rank: 128\n")
    assert json.loads(run(tmp_path, "adapters", "add", "big", str(big), "--json").stdout)["rank"] == 128


def test_adapters_list_reports_a_folder_that_broke_after_it_was_added(tmp_path, folders, tiny_llama):
    folder = make_adapter(tiny_llama, tmp_path / "later", rank=4)
    run(tmp_path, "adapters", "add", "later", str(folder))
    (folder / "adapter_model.safetensors").unlink()
    (row,) = json.loads(run(tmp_path, "adapters", "list", "--json").stdout)
    assert row["ok"] is False and "no adapter_model.safetensors" in row["problems"][0] and row["rank"] is None
    assert "broken: no" in run(tmp_path, "adapters", "list").stdout


def test_roles_add_show_list_remove(tmp_path, folders):
    good, _, _ = folders
    run(tmp_path, "adapters", "add", "core", str(good))
    run(tmp_path, "adapters", "add", "sport", str(good), "--tier", "disk")
    args = ["roles", "add", "coach", "--adapter", "core", "--adapter", "sport:0.8", "--description", "Training"]
    args += ["--system-prompt", "You are a coach.", "--topic", "sport", "--topic", "diet", "--blocked-topic", "drugs"]
    args += ["--collection", "vault", "--json"]
    role = json.loads(run(tmp_path, *args).stdout)
    assert role["id"] == "coach" and role["adapters"] == {"core": 1.0, "sport": 0.8}
    assert role["topics"] == ["sport", "diet"] and role["blocked_topics"] == ["drugs"]
    assert role["retrieval"] == {"collections": ["vault"], "folders": [], "tags": [], "enabled": True, "memory": True}
    run(tmp_path, "roles", "add", "skeptic", "--label", "alternative", "--disclaimer", "A contrarian view.")

    listed = json.loads(run(tmp_path, "roles", "list", "--json").stdout)
    assert [r["id"] for r in listed] == ["coach", "skeptic"] and listed[0] == role
    assert listed[1]["label"] == "alternative" and listed[1]["adapters"] == {}
    table = run(tmp_path, "roles", "list").stdout
    assert "core:1, sport:0.8" in table and "alternative" in table and "base model: konsilium" in table

    shown = json.loads(run(tmp_path, "roles", "show", "coach", "--json").stdout)
    assert {k: v for k, v in shown.items() if k != "adapter_details"} == role
    assert [(a["name"], a["weight"], a["rank"], a["ok"]) for a in shown["adapter_details"]] == [
        ("core", 1.0, 8, True),
        ("sport", 0.8, 8, True),
    ]
    text = run(tmp_path, "roles", "show", "coach").stdout
    assert "You are a coach." in text and "collections vault" in text and "sport ×0.8" in text

    stored = yaml.safe_load((tmp_path / "roles.yaml").read_text())
    assert set(stored["roles"]) == {"coach", "skeptic"} and stored["roles"]["coach"]["adapters"]["sport"] == 0.8

    assert "used by role coach" in error_of(run(tmp_path, "adapters", "remove", "sport", code=1))
    assert json.loads(run(tmp_path, "roles", "remove", "coach", "--json").stdout) == {
        "removed": "coach",
        "source": str(tmp_path / "roles.yaml"),
    }
    run(tmp_path, "adapters", "remove", "sport")
    assert [r["id"] for r in json.loads(run(tmp_path, "roles", "list", "--json").stdout)] == ["skeptic"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["roles", "show", "nobody"], "unknown role 'nobody'; known roles: none"),
        (["roles", "remove", "nobody"], "unknown role 'nobody'; known roles: none"),
        (["roles", "add", "auto"], "roles.auto: the id 'auto' is reserved"),
        (["roles", "add", "konsilium"], "roles.konsilium: the id is the base model's id"),
        (["roles", "add", "bad id"], "roles: 'bad id' is not a valid name"),
        (["roles", "add", "r", "--label", "alternative"], "roles.r.disclaimer: required for an 'alternative' role"),
        (["roles", "add", "r", "--label", "odd"], "roles.r.label: 'odd' is not allowed"),
        (["roles", "add", "r", "--adapter", "ghost"], "role 'r' uses adapter 'ghost', which is not defined"),
        (["roles", "add", "r", "--adapter", "core:lots"], "--adapter core:lots: the weight after ':' must be a number"),
        (["roles", "add", "r", "--adapter", "core:3"], "roles.r.adapters.core: weight 3.0 is outside (0, 2]"),
        (["adapters", "remove", "ghost"], "unknown adapter 'ghost'; known adapters: none"),
    ],
)
def test_mistakes_get_one_clear_line(tmp_path, args, message):
    proc = run(tmp_path, *args, "--json", code=1)  # --json: the message on stdout too, the same line on stderr
    assert message in error_of(proc)
    assert json.loads(proc.stdout) == {"error": {"message": error_of(proc)}}


def test_roles_in_konsilium_yaml_are_listed_but_not_removed(tmp_path, folders):
    good, _, _ = folders
    config = {"adapters": {"core": {"path": str(good)}}, "roles": {"coach": {"adapters": {"core": 1.0}}}}
    (tmp_path / "konsilium.yaml").write_text(yaml.safe_dump(config))
    (listed,) = json.loads(run(tmp_path, "roles", "list", "--json").stdout)
    assert listed["id"] == "coach" and listed["source"] == str(tmp_path / "konsilium.yaml")
    message = error_of(run(tmp_path, "roles", "remove", "coach", code=1))
    assert message == f"role 'coach' is defined in {tmp_path / 'konsilium.yaml'}; edit that file to remove it"
    # A conflicting copy in roles.yaml is a warning, and can be removed to repair it.
    (tmp_path / "roles.yaml").write_text("roles:\n  coach: {description: copy}\n")
    proc = run(tmp_path, "roles", "list", "--json")
    assert "warning: role 'coach' is defined in both" in proc.stderr
    run(tmp_path, "roles", "remove", "coach")
    assert "warning" not in run(tmp_path, "roles", "list").stderr
