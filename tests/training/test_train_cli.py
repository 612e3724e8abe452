"""`konsilium dataset build`, `konsilium train` and `konsilium eval perplexity` as scripts use them (--json), on a
tiny real model given with --base: the trained adapter is the role's new version at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_runner import run

NOTES = {
    "Sport/Intervals.md": "# Intervals\n\nFour times four minutes hard, three minutes easy between. " * 4,
    "Sport/Recovery.md": "# Recovery\n\nSleep eight hours and ride easy the day after intervals. " * 4,
    "Sport/Cadence.md": "# Cadence\n\nKeep ninety revolutions a minute on the flat, seventy on climbs. " * 4,
    "Sport/Gear.md": "# Gear\n\nA steel frame, eleven gears, tubeless tyres at four bar. " * 4,
    "Sport/Food.md": "# Food\n\nRice and eggs before a long ride, a banana every hour on the bike. " * 4,
}


@pytest.fixture(scope="module")
def notes(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("vault")
    for rel, text in NOTES.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text, encoding="utf-8")
    (folder / "Sport/Copy of Gear.md").write_text(NOTES["Sport/Gear.md"], encoding="utf-8")
    return folder


def test_build_train_and_measure_a_role_through_the_cli(notes, tiny_base, tmp_path):
    home = tmp_path / "home"
    dataset = tmp_path / "sport.jsonl"
    built = json.loads(
        run(
            home,
            "dataset",
            "build",
            "--notes",
            str(notes / "Sport"),
            "--out",
            str(dataset),
            "--eval-fraction",
            "0.3",
            "--json",
        ).stdout
    )
    assert built["samples"] == 5 and built["dropped"] == {"duplicate of an earlier sample": 1}
    assert built["by_split"]["train"] + built["by_split"]["eval"] == 5
    assert built["tokens"]["train"] > 0 and len(built["preview"]) == 3
    assert len(dataset.read_text().splitlines()) == 5

    args = [
        "--dataset",
        str(dataset),
        "--max-steps",
        "4",
        "--base",
        str(tiny_base),
        "--max-tokens",
        "64",
        "--batch-tokens",
        "128",
        "--lr",
        "0.01",
        "--json",
    ]
    first = json.loads(run(home, "train", "sport", *args).stdout)
    assert first["role"] == "sport" and first["version"] == 1 and first["model_id"] == "sport@1"
    assert first["steps"] == 4 and first["train_loss"] > 0 and first["tokens_per_s"] > 0
    adapter = Path(first["adapter_path"])
    assert (adapter / "adapter_config.json").is_file() and (adapter / "run-card.json").is_file()
    card = json.loads((adapter / "run-card.json").read_text())
    assert card["dataset"]["samples"] == 5 and len(card["base_model"]["fingerprint"]) == 64

    longer = [*args[:2], "--max-steps", "8", *args[4:]]
    second = json.loads(run(home, "train", "sport", *longer).stdout)
    assert second["version"] == 2
    versions = json.loads(run(home, "roles", "versions", "sport", "--json").stdout)
    assert [v["model_id"] for v in versions if v["current"]] == ["sport@2"]

    measured = {
        model: json.loads(
            run(
                home,
                "eval",
                "perplexity",
                "--model",
                model,
                "--notes",
                str(notes / "Sport"),
                "--base",
                str(tiny_base),
                "--context",
                "64",
                "--json",
            ).stdout
        )
        for model in ("base", "sport", "sport@1")
    }
    assert all(m["tokens"] == measured["base"]["tokens"] > 0 for m in measured.values())
    assert measured["sport"]["perplexity"] < measured["base"]["perplexity"]
    assert measured["sport"]["perplexity"] < measured["sport@1"]["perplexity"]  # twice the steps


def test_bad_input_gets_a_clear_error_and_creates_nothing(tiny_base, tmp_path):
    home = tmp_path / "home"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine text sample"}\n{"oops": 1}\n', encoding="utf-8")
    failed = run(home, "train", "sport", "--dataset", str(bad), "--base", str(tiny_base), check=False)
    assert failed.returncode == 1 and "bad.jsonl:2" in failed.stderr
    assert not (home / "training").exists()
    missing = run(home, "train", "sport", "--resume", check=False)
    assert missing.returncode == 1 and "no unfinished training run" in missing.stderr
    both = run(home, "train", "sport", check=False)
    assert both.returncode == 2
    knob = run(
        home,
        "eval",
        "perplexity",
        "--model",
        "base",
        "--notes",
        str(tmp_path),
        "--set",
        "hidden_size=32",
        "--base",
        str(tiny_base),
        check=False,
    )
    assert knob.returncode == 1 and "hidden_size" in knob.stderr and "retrain" in knob.stderr
    good = tmp_path / "good.jsonl"
    good.write_text('{"text": "fine text sample"}\n', encoding="utf-8")
    unknown = run(
        home,
        "eval",
        "perplexity",
        "--model",
        "nobody",
        "--dataset",
        str(good),
        "--split",
        "all",
        "--base",
        str(tiny_base),
        check=False,
    )
    assert unknown.returncode == 1 and "nobody" in unknown.stderr


def test_rated_exchanges_from_the_log_become_a_dataset(tmp_path):
    from konsilium.config import open_home
    from konsilium.memory.log import ConversationLog, Exchange, log_path

    home = tmp_path / "home"
    with ConversationLog(log_path(open_home(home))) as log:
        for n, (question, answer) in enumerate(
            [("How long is my tempo ride?", "Forty minutes at threshold."), ("Hi", "Hello! How can I help you?")]
        ):
            log.record(
                Exchange(
                    f"chatcmpl-{n}",
                    1_700_000_000.0 + n,
                    "chat.completions",
                    "coach",
                    "coach",
                    [{"role": "user", "content": question}],
                    answer,
                    "stop",
                    [],
                )
            )
    rated = json.loads(run(home, "history", "rate", "chatcmpl-0", "good", "--json").stdout)
    assert rated == {"id": "chatcmpl-0", "rating": "good"}
    assert json.loads(run(home, "history", "show", "chatcmpl-0", "--json").stdout)["rating"] == "good"
    assert run(home, "history", "rate", "chatcmpl-9", "good", check=False).returncode == 1
    assert run(home, "history", "rate", "chatcmpl-0", "great", check=False).returncode == 2

    out = tmp_path / "good.jsonl"
    built = json.loads(
        run(
            home, "dataset", "build", "--log", "--rated", "good", "--out", str(out), "--eval-fraction", "0", "--json"
        ).stdout
    )
    assert built["samples"] == 1 and built["by_kind"] == {"text": 0, "chat": 1}
    [line] = out.read_text().splitlines()
    assert json.loads(line)["messages"][-1] == {"role": "assistant", "content": "Forty minutes at threshold."}
    none = run(home, "dataset", "build", "--log", "--rated", "bad", "--out", str(tmp_path / "x.jsonl"), check=False)
    assert none.returncode == 1 and not (tmp_path / "x.jsonl").exists()


def test_attention_mode_trains_q_k_v_o_only_and_router_mode_is_refused_with_the_reason(notes, tiny_base, tmp_path):
    home = tmp_path / "home"
    dataset = tmp_path / "d.jsonl"
    run(home, "dataset", "build", "--notes", str(notes / "Sport"), "--out", str(dataset))
    common = ["--dataset", str(dataset), "--base", str(tiny_base), "--max-steps", "1", "--max-tokens", "32"]
    trained = json.loads(run(home, "train", "att", *common, "--mode", "attention", "--json").stdout)
    config = json.loads((Path(trained["adapter_path"]) / "adapter_config.json").read_text())
    assert sorted(config["target_modules"]) == ["k_proj", "o_proj", "q_proj", "v_proj"]
    router = run(home, "train", "moe", *common, "--mode", "router", check=False)
    assert router.returncode == 1 and "router" in router.stderr and "no router" in router.stderr
    bogus = run(home, "train", "x", *common, "--mode", "experts", check=False)
    assert bogus.returncode == 1 and "lora, attention, router" in bogus.stderr
    assert not (home / "training" / "moe").exists() and not (home / "training" / "x").exists()
