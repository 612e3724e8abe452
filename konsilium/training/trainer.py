"""The LoRA training loop: PEFT adapters over the base model, AdamW, warmup then cosine decay, padded batches of
similar-length windows, held-out perplexity after each epoch (the best adapter is kept), checkpoints on a timer.

A plain loop rather than transformers' Trainer: resuming mid-epoch, a wall-clock budget (`--minutes`), the same
loss as perplexity and a progress line with tokens/s are each a few lines here and would be callbacks there.
"""

from __future__ import annotations

import math
import resource
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields

from ..config import TrainingSettings
from ..plan.training import ENGINE_TARGETS
from .base_model import BaseModel, load
from .batches import collate, epoch_order, plan_batches
from .perplexity import perplexity, token_losses
from .runs import Progress, RunDir
from .samples import Sample
from .tokens import Window, encode_all, pad_id

MIN_LR_SHARE = 0.1  # cosine decay ends at this share of the learning rate
# PEFT asks transformers 5 a deprecated question on every forward in training: noise for the user, not a problem.
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
ATTENTION_TARGETS = ENGINE_TARGETS[:4]  # q/k/v/o


class TrainingStopped(Exception):
    """Stopped on request (Ctrl-C): the run's checkpoint is saved and `--resume` continues it."""

    def __init__(self, run: RunDir, step: int):
        super().__init__(f"stopped at step {step}; the checkpoint is saved in {run.checkpoint}")
        self.run, self.step = run, step


_DEFAULTS = TrainingSettings()  # the defaults live in the settings schema, not here


@dataclass(frozen=True)
class TrainOptions:
    device: str = "cpu"
    precision: str = "fp32"
    mode: str = _DEFAULTS.mode
    rank: int = _DEFAULTS.rank
    alpha: float = _DEFAULTS.alpha
    rslora: bool = _DEFAULTS.rslora
    dropout: float = _DEFAULTS.dropout
    targets: tuple[str, ...] = tuple(_DEFAULTS.targets)
    learning_rate: float | None = _DEFAULTS.learning_rate  # None: `default_learning_rate` for the model's size
    epochs: int = _DEFAULTS.epochs
    warmup_steps: int = _DEFAULTS.warmup_steps
    max_tokens: int = _DEFAULTS.max_tokens
    batch_tokens: int = _DEFAULTS.batch_tokens
    gradient_checkpointing: bool = _DEFAULTS.gradient_checkpointing
    seed: int = _DEFAULTS.seed
    checkpoint_every_s: float = _DEFAULTS.checkpoint_every_s
    max_steps: int = 0  # 0: no limit
    minutes: float = 0.0  # 0: no limit

    @classmethod
    def from_settings(cls, settings, **overrides) -> TrainOptions:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in settings.model_dump().items() if k in known}
        values["targets"] = tuple(values.get("targets") or ())
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def to_json(self) -> dict:
        return {**asdict(self), "targets": list(self.targets)}


def default_targets(model, mode: str = "lora") -> list[str] | str:
    """The linear layers konsilium's engine serves LoRA on (attention and MLP projections; attention alone in
    `attention` mode) that this model has; PEFT's "all-linear" (everything but the output head) for an
    architecture that names them otherwise."""
    import torch

    names = {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)}
    wanted = ATTENTION_TARGETS if mode == "attention" else ENGINE_TARGETS
    found = [t for t in wanted if t in names]
    if not found and mode == "attention":
        raise ValueError(f"--mode attention: the model has none of {', '.join(wanted)}; name --targets instead")
    return found or "all-linear"


def lora_config(options: TrainOptions, model):
    from peft import LoraConfig

    return LoraConfig(
        r=options.rank,
        lora_alpha=options.alpha,
        lora_dropout=options.dropout,
        use_rslora=options.rslora,
        target_modules=list(options.targets) or default_targets(model, options.mode),
        bias="none",
        task_type="CAUSAL_LM",
    )


# LoRA learning rates by model size: small models take (and need) larger steps; 2e-4 is the common choice for
# 7B-70B models. The 135M default was tuned with benchmarks/training.py (1e-3 vs 2e-3 vs 3e-3 over 4 minutes).
LEARNING_RATES = ((1e9, 2e-3), (4e9, 1e-3), (15e9, 5e-4))
LARGE_MODEL_LEARNING_RATE = 2e-4


def default_learning_rate(parameters: int | None) -> float:
    if parameters is None:
        return LEARNING_RATES[1][1]
    return next((rate for limit, rate in LEARNING_RATES if parameters < limit), LARGE_MODEL_LEARNING_RATE)


def learning_rate(options: TrainOptions, step: int, planned: int) -> float:
    """Linear warmup, then cosine decay to MIN_LR_SHARE of the rate at the planned last step."""
    if step < options.warmup_steps:
        return options.learning_rate * (step + 1) / (options.warmup_steps + 1)
    span = max(1, planned - options.warmup_steps)
    done = min(1.0, (step - options.warmup_steps) / span)
    return options.learning_rate * (MIN_LR_SHARE + (1 - MIN_LR_SHARE) * 0.5 * (1 + math.cos(math.pi * done)))


@dataclass
class Prepared:
    model: object  # the PeftModel
    tokenizer: object
    train: list[Window]
    held_out: list[Window]
    batches: list[list[int]]


def prepare(options: TrainOptions, base: BaseModel, samples: list[Sample], gguf_cache: bool = True) -> Prepared:
    import torch
    from peft import get_peft_model

    torch.manual_seed(options.seed)
    tokenizer, model = load(base, options.device, options.precision, gguf_cache=gguf_cache)
    train = encode_all([s for s in samples if s.split == "train"], tokenizer, options.max_tokens)
    held_out = encode_all([s for s in samples if s.split == "eval"], tokenizer, options.max_tokens)
    if not train:
        raise ValueError("the dataset has no training samples left after tokenization (all held out or empty)")
    if options.precision == "4bit":
        # Not peft's prepare_model_for_kbit_training: it casts every bf16 tensor (embeddings, tied lm_head, norms) to
        # fp32, so the whole residual stream and the logits run in fp32 and QLoRA peaked above bf16 LoRA on an H200
        # (33.1 against 26.0 GiB, Qwen3-0.6B shape, 8 x 1024 tokens) at the same loss. Freezing is all it is needed for.
        for parameter in model.parameters():
            parameter.requires_grad_(False)
    if options.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model.config.use_cache = False
    model = get_peft_model(model, lora_config(options, model))
    return Prepared(model, tokenizer, train, held_out, plan_batches(train, options.batch_tokens))


def run_training(
    run: RunDir,
    options: TrainOptions,
    prepared: Prepared,
    progress: Callable[[int, int, str], None] | None = None,
    resume: bool = False,
    clock: Callable[[], float] = time.monotonic,
) -> Progress:
    """Train until the epochs, `max_steps` or `minutes` run out (or Ctrl-C: TrainingStopped after a checkpoint)."""
    import torch

    model, device = prepared.model, next(prepared.model.parameters()).device
    padding = pad_id(prepared.tokenizer)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=options.learning_rate, weight_decay=0.0)
    state = run.load_checkpoint(model, optimizer) if resume else Progress()
    if not resume:
        state.planned_steps = options.epochs * len(prepared.batches)
        if options.max_steps:
            state.planned_steps = min(state.planned_steps, options.max_steps)
        if prepared.held_out:  # step 0: the adapter is still the identity, so this is the base model
            state.evals.append(
                {"step": 0, "epoch": 0, **perplexity(model, prepared.held_out, padding, options.batch_tokens)}
            )
            state.best_step, state.best_perplexity = 0, state.evals[-1]["perplexity"]
    started, last_checkpoint = clock() - state.seconds, clock()
    deadline = started + options.minutes * 60 if options.minutes else None
    model.train()
    try:
        while state.epoch < options.epochs:
            order = epoch_order(prepared.batches, options.seed, state.epoch)
            while state.batch_in_epoch < len(order):
                if _out_of_budget(options, state, deadline, clock):
                    break
                loss = _step(
                    model,
                    optimizer,
                    options,
                    state,
                    [prepared.train[i] for i in order[state.batch_in_epoch]],
                    padding,
                    device,
                    trainable,
                )
                state.batch_in_epoch += 1
                state.seconds = clock() - started
                if deadline and state.step == 5:  # the budget, not the epochs, decides where the decay ends
                    per_step = state.seconds / state.step
                    state.planned_steps = min(state.planned_steps, int((deadline - started) / per_step))
                if progress:
                    progress(
                        state.step,
                        state.planned_steps,
                        f"loss {loss:.3f} · {state.tokens / max(state.seconds - state.eval_seconds, 1e-9):.0f} tok/s",
                    )
                if clock() - last_checkpoint >= options.checkpoint_every_s:
                    run.save_checkpoint(model, optimizer, state)
                    last_checkpoint = clock()
            if state.batch_in_epoch < len(order):  # the budget ran out mid-epoch
                break
            state.epoch, state.batch_in_epoch = state.epoch + 1, 0
            _evaluate(run, model, prepared, options, state, padding)
        if state.batch_in_epoch:  # stopped mid-epoch: measure what we have
            _evaluate(run, model, prepared, options, state, padding)
    except KeyboardInterrupt:
        state.seconds = clock() - started
        run.save_checkpoint(model, optimizer, state)
        raise TrainingStopped(run, state.step) from None
    state.seconds = clock() - started
    run.save_checkpoint(model, optimizer, state)
    return state


def _out_of_budget(options: TrainOptions, state: Progress, deadline: float | None, clock) -> bool:
    return bool((options.max_steps and state.step >= options.max_steps) or (deadline and clock() >= deadline))


def _step(model, optimizer, options, state: Progress, windows: list[Window], padding: int, device, trainable) -> float:
    import torch

    for group in optimizer.param_groups:
        group["lr"] = learning_rate(options, state.step, state.planned_steps)
    loss_sum, count = token_losses(model, collate(windows, padding, device))
    loss = loss_sum / max(count, 1)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(trainable, 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    state.step += 1
    state.tokens += count
    value = float(loss.detach())
    state.losses.append(round(value, 5))
    return value


def _evaluate(run: RunDir, model, prepared: Prepared, options, state: Progress, padding: int) -> None:
    if not prepared.held_out or (state.evals and state.evals[-1]["step"] == state.step):
        return
    started = time.monotonic()
    measured = perplexity(model, prepared.held_out, padding, options.batch_tokens)
    state.eval_seconds += time.monotonic() - started
    model.train()
    state.evals.append({"step": state.step, "epoch": state.epoch, **measured})
    if state.best_perplexity is None or measured["perplexity"] < state.best_perplexity:
        state.best_step, state.best_perplexity = state.step, measured["perplexity"]
        run.save_best(model)


def peak_memory_bytes(device: str) -> int:
    if device == "cuda":
        import torch

        return int(torch.cuda.max_memory_allocated())
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def summary(state: Progress, options: TrainOptions, batches_per_epoch: int) -> dict:
    recent = state.losses[-20:]
    training_s = state.seconds - state.eval_seconds
    return {
        "steps": state.step,
        "epochs": round(state.epoch + state.batch_in_epoch / max(batches_per_epoch, 1), 2),
        "train_loss": round(sum(recent) / len(recent), 4) if recent else None,
        "tokens": state.tokens,
        "seconds": round(state.seconds, 1),
        "tokens_per_s": round(state.tokens / training_s, 1) if training_s > 0 else None,  # held-out time excluded
        "held_out": state.evals,
        "best_step": state.best_step,
        "options": options.to_json(),
    }
