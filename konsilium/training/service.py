"""`konsilium train ROLE`: check the run fits, train, write the run card, make the adapter the role's new version.

Everything a run needs to continue (dataset path and digest, settings, base model) is kept in its run.json, so
`--resume` takes nothing else and refuses a dataset that changed since.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from .base_model import BaseModel, TrainingSetupError, base_model_of, choose_device, choose_precision
from .runs import CARD_FILE, RunDir
from .samples import file_digest, read_samples
from .trainer import TrainOptions, default_learning_rate, peak_memory_bytes, prepare, run_training, summary


def memory_capacity(device: str) -> tuple[float, str]:
    """(bytes, what) a run may use: the GPU's memory, or the RAM available now."""
    if device == "cuda":
        import torch

        return float(torch.cuda.mem_get_info()[1]), f"GPU memory of {torch.cuda.get_device_name()}"
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024, "RAM available now"
    except OSError:
        pass
    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")), "RAM"


def _shape(base: BaseModel):
    """The planner's shape of the base model, None for an architecture it does not know."""
    from ..plan import analyze, load_config
    from ..plan.architectures import PlanError

    try:
        return analyze(load_config(base.path / base.gguf_file if base.gguf_file else base.path))
    except PlanError:
        return None


def fit_check(shape, options: TrainOptions) -> dict:
    """The planner's estimate for this run (`shape`: the base model's, None when the planner does not know it);
    TrainingSetupError with the numbers when it cannot fit, or with the planner's reason when the run makes no
    sense (router mode: no engine serves the result; bad targets)."""
    from ..plan.architectures import PlanError
    from ..plan.training import TRAIN_MODES, training_plan

    if options.mode not in TRAIN_MODES:
        raise TrainingSetupError(f"--mode {options.mode!r}: allowed values are {', '.join(TRAIN_MODES)}")
    if options.mode == "router":
        reason = "the planner does not know this architecture" if shape is None else None
        try:
            reason = reason or training_plan(shape, mode="router")["serving_warnings"][0]
        except PlanError as exc:  # a dense model: no router at all
            reason = str(exc)
        raise TrainingSetupError(f"--mode router is refused: {reason}")
    if shape is None:  # say so, do not block the run
        return {"fits": None, "note": "not estimated: the planner does not know this architecture"}
    capacity, what = memory_capacity(options.device)
    try:
        plan = training_plan(
            shape,
            mode=options.mode,
            precision=options.precision,
            rank=options.rank,
            targets=list(options.targets) or None,
            batch=max(1, options.batch_tokens // options.max_tokens),
            seq_len=options.max_tokens,
            gradient_checkpointing=options.gradient_checkpointing,
            capacity_bytes=capacity,
            device="cuda" if options.device == "cuda" else "cpu",
        )
    except PlanError as exc:
        raise TrainingSetupError(str(exc)) from None
    if not plan["fits"]:
        gib = 1 << 30
        raise TrainingSetupError(
            f"this run needs about {plan['total_bytes'] / gib:.1f} GiB but the {what} is {capacity / gib:.1f} GiB "
            f"(weights {plan['weights_bytes'] / gib:.1f}, activations {plan['activations_bytes'] / gib:.1f}, "
            f"logits {plan['logits_bytes'] / gib:.1f} GiB): lower --max-tokens or batch_tokens, turn on "
            "gradient checkpointing, or train in 4bit on CUDA (`konsilium plan train` shows the options)"
        )
    return {key: plan[key] for key in ("total_bytes", "capacity_bytes", "headroom_bytes", "trainable_params")}


def start_run(home, role: str, dataset: Path, options: TrainOptions, base_path: str | None = None) -> RunDir:
    """A new run folder with everything `--resume` needs, after the checks that need no model."""
    from ..roles.spec import check_name

    check_name("role", role)
    dataset = Path(dataset).resolve()
    samples = read_samples(dataset)  # a bad file fails here, before anything is created
    base = base_model_of(home, base_path)
    device = choose_device(options.device)
    options = replace(options, device=device, precision=choose_precision(options.precision, device))
    shape = _shape(base)  # read once: the learning rate and the fit check both need it
    if options.learning_rate is None:
        options = replace(options, learning_rate=default_learning_rate(shape.total_params if shape else None))
    fit = fit_check(shape, options)
    run = RunDir.create(home.root, role)
    run.write_info(
        role=role,
        status="created",
        created=time.strftime("%Y-%m-%dT%H:%M:%S"),
        dataset={
            "path": str(dataset),
            "sha256": file_digest(dataset),
            "samples": len(samples),
            "train": sum(s.split == "train" for s in samples),
            "eval": sum(s.split == "eval" for s in samples),
        },
        options=options.to_json(),
        base_model=base.describe(),
        fit=fit,
    )
    return run


def resume_run(home, role: str) -> RunDir:
    run = RunDir.latest_unfinished(home.root, role)
    if run is None:
        raise TrainingSetupError(f"no unfinished training run of {role!r} to resume (start one without --resume)")
    info = run.info()
    dataset = Path(info["dataset"]["path"])
    if not dataset.is_file() or file_digest(dataset) != info["dataset"]["sha256"]:
        raise TrainingSetupError(
            f"the dataset of run {run.id} ({dataset}) is gone or changed since the run started: start a new run"
        )
    return run


def train(
    home,
    run: RunDir,
    progress: Callable[[int, int, str], None] | None = None,
    resume: bool = False,
    register: bool = True,
) -> dict:
    """Train the run to its end and publish the adapter (as the role's new version when `register`)."""
    info = run.info()
    options = TrainOptions(**{**info["options"], "targets": tuple(info["options"]["targets"])})
    base = BaseModel(Path(info["base_model"]["path"]), info["base_model"]["gguf_file"])
    samples = read_samples(Path(info["dataset"]["path"]))
    resume = resume and run.has_checkpoint()
    run.write_info(status="running")
    prepared = prepare(options, base, samples, gguf_cache=home.config.engine.gguf_cache)
    state = run_training(run, options, prepared, progress=progress, resume=resume)
    result = summary(state, options, len(prepared.batches))
    first = state.evals[0] if state.evals else {}  # step 0: the base model on the held-out notes
    result["held_out_perplexity"] = {
        "before": first.get("perplexity"),
        "after": state.best_perplexity,
        "tokens": first.get("tokens"),
    }
    result["peak_memory_bytes"] = peak_memory_bytes(options.device)
    card = {
        "role": info["role"],
        "run": run.id,
        "created": info["created"],
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "dataset": info["dataset"],
        "base_model": info["base_model"],
        "settings": info["options"],
        "metrics": {k: v for k, v in result.items() if k != "options"},
    }
    adapter = run.publish(prepared.model, card)
    result.update(role=info["role"], run=run.id, adapter_path=str(adapter), card=str(adapter / CARD_FILE))
    if register:
        from ..roles.registry import RoleRegistry
        from ..roles.versions import add_version

        version = add_version(RoleRegistry.open(home), info["role"], adapter, card=str(adapter / CARD_FILE))
        result.update(version=version.version, model_id=version.model_id, adapter=version.adapter)
    run.write_info(status="finished", result={k: v for k, v in result.items() if k != "options"})
    return result
