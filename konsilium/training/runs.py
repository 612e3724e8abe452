"""A training run on disk: `<home>/training/<role>/<run id>/`.

    run.json      what was asked (dataset, settings, base model) and how it stands (running/stopped/finished)
    checkpoint/   the adapter, optimizer and progress at the last checkpoint (replaced atomically)
    best/         the adapter with the lowest held-out perplexity so far
    adapter/      the result: a PEFT folder with run-card.json beside its files

A checkpoint is written to `checkpoint.partial` and swapped in with renames, so a crash at any moment leaves
either the old or the new one whole, and a resumed run loses at most one checkpoint interval.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

CARD_FILE = "run-card.json"


@dataclass
class Progress:
    """Where a run stands; saved with each checkpoint."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of `epoch` already done
    planned_steps: int = 0
    tokens: int = 0  # learned tokens seen
    seconds: float = 0.0  # wall time so far (across resumes), held-out measurements included
    eval_seconds: float = 0.0  # of which measuring the held-out notes
    losses: list[float] = field(default_factory=list)  # mean loss of each step
    evals: list[dict] = field(default_factory=list)  # {"step", "epoch", "perplexity", "tokens"}
    best_step: int | None = None
    best_perplexity: float | None = None


class RunDir:
    def __init__(self, folder: Path):
        self.folder = Path(folder)

    @classmethod
    def create(cls, home_root: Path, role: str) -> RunDir:
        base = Path(home_root) / "training" / role
        run_id = time.strftime("%Y%m%d-%H%M%S")
        folder, n = base / run_id, 1
        while folder.exists():
            n += 1
            folder = base / f"{run_id}-{n}"
        folder.mkdir(parents=True)
        return cls(folder)

    @staticmethod
    def latest_unfinished(home_root: Path, role: str) -> RunDir | None:
        base = Path(home_root) / "training" / role
        runs = sorted(base.glob("*/run.json"), key=lambda p: p.parent.name, reverse=True) if base.is_dir() else []
        for file in runs:
            run = RunDir(file.parent)
            if run.info().get("status") != "finished":
                return run
        return None

    @property
    def id(self) -> str:
        return self.folder.name

    # --- run.json ---------------------------------------------------------------------------------------------

    def info(self) -> dict:
        try:
            return json.loads((self.folder / "run.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def write_info(self, **changes) -> dict:
        info = {**self.info(), **changes}
        _write_json(self.folder / "run.json", info)
        return info

    # --- checkpoints ------------------------------------------------------------------------------------------

    @property
    def checkpoint(self) -> Path:
        return self.folder / "checkpoint"

    def has_checkpoint(self) -> bool:
        return (self.checkpoint / "progress.json").is_file()

    def save_checkpoint(self, model, optimizer, progress: Progress) -> None:
        import torch

        partial = self.folder / "checkpoint.partial"
        shutil.rmtree(partial, ignore_errors=True)
        model.save_pretrained(str(partial))
        torch.save({"optimizer": optimizer.state_dict(), "rng": torch.get_rng_state()}, partial / "trainer.pt")
        _write_json(partial / "progress.json", asdict(progress))  # last: a folder without it is no checkpoint
        old = self.folder / "checkpoint.old"
        shutil.rmtree(old, ignore_errors=True)
        if self.checkpoint.exists():
            self.checkpoint.rename(old)
        partial.rename(self.checkpoint)
        shutil.rmtree(old, ignore_errors=True)

    def load_checkpoint(self, model, optimizer) -> Progress:
        import torch
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(model, load_file(str(self.checkpoint / "adapter_model.safetensors")))
        state = torch.load(self.checkpoint / "trainer.pt", weights_only=False)
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        return Progress(**json.loads((self.checkpoint / "progress.json").read_text(encoding="utf-8")))

    def save_best(self, model) -> None:
        partial = self.folder / "best.partial"
        shutil.rmtree(partial, ignore_errors=True)
        model.save_pretrained(str(partial))
        shutil.rmtree(self.folder / "best", ignore_errors=True)
        partial.rename(self.folder / "best")

    def publish(self, model, card: dict) -> Path:
        """The result folder: the best adapter when a held-out split measured one, else the last; the card beside."""
        out = self.folder / "adapter"
        shutil.rmtree(out, ignore_errors=True)
        if (self.folder / "best").is_dir():
            shutil.copytree(self.folder / "best", out)
        else:
            model.save_pretrained(str(out))
        _write_json(out / CARD_FILE, card)
        return out


def _write_json(path: Path, data: dict) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    partial.replace(path)
