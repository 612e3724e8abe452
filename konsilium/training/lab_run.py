"""Running `konsilium lab`: every profile on the same windows and prompts. The base model is loaded once per
distinct set of config overrides (they change how the model is built) and each role's adapters are put on it and
taken off again, so a grid over roles costs one load."""

from __future__ import annotations

import contextlib
import gc
import json
import sys
import time
from pathlib import Path

from .base_model import base_model_of, choose_device
from .lab import Lab, LabError, Profile
from .measure import load_for_measuring, measure_windows, under_role
from .tokens import encode_all

_PROBE = [{"role": "user", "content": "hi"}]
# Read by from_pretrained itself, whatever the config class declares.
_READ_WHEN_LOADING = ("quantization_config", "dtype", "torch_dtype")


def run_lab(home, lab: Lab, progress_for=None) -> dict:
    """The lab's result as `konsilium lab --json` prints it. `progress_for(profile)`: a context manager giving a
    progress callback (done, total, item) for that profile."""
    from ..roles.registry import RoleRegistry

    registry = RoleRegistry.open(home)
    roles = lab.roles(registry)  # every model id and the text are checked before anything loads
    samples = lab.samples(home.config.training)
    base = base_model_of(home, lab.base)
    run = _Run(home, lab, registry, choose_device(lab.device), samples)
    results: list[dict | None] = [None] * len(lab.profiles)
    for index in _grouped(lab.profiles):
        profile = lab.profiles[index]
        with progress_for(profile) if progress_for else contextlib.nullcontext() as progress:
            progress = progress or (lambda done, total, item: None)
            run.load(base, profile, progress)
            try:
                results[index] = run.profile(profile, roles[index], progress)
            except (ValueError, RuntimeError, TypeError) as exc:
                raise LabError(f"profile {profile.name!r}: {type(exc).__name__}: {exc}") from exc
    return {
        "text": {
            **lab.text.describe(),
            "samples": len(samples),
            "contexts": [
                {"context": c, "windows": len(w), "tokens": sum(x.learned for x in w)} for c, w in run.windows.items()
            ],
        },
        "base": str(base.path / base.gguf_file if base.gguf_file else base.path),
        "device": run.device,
        "max_new_tokens": lab.max_new_tokens,
        "peak_memory": run.memory.kind,
        "profiles": results,
        "notes": run.notes,
    }


def _grouped(profiles: tuple[Profile, ...]) -> list[int]:
    """Profile indices, those sharing the overrides next to each other (first seen first): one load per group."""
    order: dict[str, list[int]] = {}
    for index, profile in enumerate(profiles):
        order.setdefault(json.dumps(profile.overrides, sort_keys=True), []).append(index)
    return [index for group in order.values() for index in group]


class _Run:
    """The loaded base (one build at a time) and the windows per context, shared by the profiles."""

    def __init__(self, home, lab: Lab, registry, device: str, samples: list):
        self.home, self.lab, self.registry, self.device, self.samples = home, lab, registry, device, samples
        self.memory = PeakMemory(device)
        self.windows: dict[int, list] = {}  # the tokenizer is the same whatever the overrides: shared
        self.notes: list[str] = []
        self.loaded, self.tokenizer, self.model = None, None, None

    def load(self, base, profile: Profile, progress) -> None:
        key = json.dumps(profile.overrides, sort_keys=True)
        if key == self.loaded:
            return
        self.model = None  # the previous build goes before the next one loads
        self.memory.settle()
        progress(0, 1, "loading the model")
        try:
            self.tokenizer, self.model = load_for_measuring(self.home, base, self.device, profile.overrides)
        except (ValueError, RuntimeError, TypeError) as exc:
            settings = f" with set: {json.dumps(profile.overrides)}" if profile.overrides else ""
            raise LabError(f"profile {profile.name!r}: the model does not load{settings}: {exc}") from exc
        if self.loaded is None and any(p.thinking is not None for p in self.lab.profiles):
            if not thinking_matters(self.tokenizer):
                self._note("thinking on/off has no effect for this model: its chat template ignores enable_thinking")
        config = type(self.model.config).__name__
        for field in unread_fields(self.model.config, profile.overrides):
            self._note(f"set.{field} has no effect for this model: {config} has no such field")
        self.loaded = key

    def _note(self, note: str) -> None:
        if note not in self.notes:
            self.notes.append(note)

    def profile(self, profile: Profile, role, progress) -> dict:
        from .batches import plan_batches

        context = profile.context or self.home.config.training.max_tokens
        if context not in self.windows:
            self.windows[context] = encode_all(self.samples, self.tokenizer, context)
        windows, prompts = self.windows[context], self.lab.prompts
        batch_tokens = self.home.config.training.batch_tokens
        steps = len(plan_batches(windows, batch_tokens))
        total = steps + len(prompts)
        with under_role(self.model, self.registry, role) as model:
            self.memory.reset()
            ppl = measure_windows(
                model, self.tokenizer, windows, batch_tokens, lambda done, _, __: progress(done, total, "perplexity")
            )
            answers = []
            for n, prompt in enumerate(prompts, 1):
                answers.append(answer(model, self.tokenizer, prompt, role, profile.thinking, self.lab.max_new_tokens))
                progress(steps + n, total, f"answer {n}/{len(prompts)}")
            peak = self.memory.peak()
        seconds = sum(a.pop("seconds") for a in answers)
        generated = sum(a["tokens"] for a in answers)
        return {
            "name": profile.name,
            "model": profile.model,
            "overrides": profile.overrides,
            "context": context,
            "thinking": profile.thinking,
            "perplexity": ppl["perplexity"],
            "nll": ppl["nll"],
            "tokens": ppl["tokens"],
            "windows": ppl["windows"],
            "perplexity_tokens_per_s": ppl["tokens_per_s"],
            "generated_tokens": generated,
            "generation_tokens_per_s": round(generated / seconds, 1) if seconds else None,
            "peak_memory_bytes": peak,
            "answers": answers,
        }


def unread_fields(config, overrides: dict) -> list[str]:
    """Overridden fields the model's config class does not have (experts per token on a dense model): set on the
    config, they are read by nothing, and a profile would silently measure the unchanged model."""
    try:
        defaults = type(config)()
    except Exception:  # a config class that cannot be built bare: nothing to say
        return []
    return [field for field in overrides if field not in _READ_WHEN_LOADING and not hasattr(defaults, field)]


def thinking_matters(tokenizer) -> bool:
    """Whether the chat template reads enable_thinking (Qwen3's do; most others render the same either way)."""
    from ..engines.transformers_engine import render_chat

    return render_chat(tokenizer, _PROBE, enable_thinking=True) != render_chat(tokenizer, _PROBE, enable_thinking=False)


def answer(model, tokenizer, prompt: str, role, thinking: bool | None, max_new_tokens: int) -> dict:
    """A greedy answer to one user message, rendered as the server renders it (the role's system prompt first)."""
    import torch
    from transformers import GenerationConfig

    from ..engines.transformers_engine import encode_prompt, eos_token_ids, render_chat
    from ..roles.guard import with_role_prompt

    messages = with_role_prompt([{"role": "user", "content": prompt}], role)
    text = render_chat(tokenizer, messages, **({} if thinking is None else {"enable_thinking": thinking}))
    ids = torch.tensor([encode_prompt(tokenizer, text)], device=next(model.parameters()).device)
    eos = sorted(eos_token_ids(model, tokenizer))
    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=False,
        eos_token_id=eos,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0],
    )
    started = time.monotonic()
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config)
    new = out[0, ids.shape[1] :].tolist()  # .tolist() waits for the device: the time below is complete
    seconds = time.monotonic() - started
    return {
        "prompt": prompt,
        "text": tokenizer.decode(new, skip_special_tokens=True),
        "tokens": len(new),
        "seconds": seconds,
    }


class PeakMemory:
    """Peak memory while one profile runs. CUDA: torch's peak of allocated tensors. CPU: the process's peak
    resident size (VmHWM), reset before each profile through /proc/self/clear_refs, so it counts the loaded
    weights plus what that profile needed; where it cannot be reset it only grows, and `kind` says so."""

    def __init__(self, device: str):
        self.cuda = device == "cuda"
        self.resets = True
        if self.cuda:
            self.kind = "CUDA tensors at their peak (torch.cuda.max_memory_allocated), reset per profile"
        else:
            self.kind = "process peak resident memory (VmHWM), reset per profile: the loaded weights included"

    def settle(self) -> None:
        """Free what is no longer referenced (a previous build) so the next reading starts from what is in use."""
        gc.collect()
        if self.cuda:
            import torch

            torch.cuda.empty_cache()
        else:
            _trim_heap()

    def reset(self) -> None:
        self.settle()
        if self.cuda:
            import torch

            torch.cuda.reset_peak_memory_stats()
            return
        try:
            Path("/proc/self/clear_refs").write_text("5")  # 5: reset the peak RSS to the current RSS
        except OSError:
            if self.resets:
                self.resets = False
                self.kind = "process peak resident memory since the start (could not be reset here: only grows)"

    def peak(self) -> int | None:
        if self.cuda:
            import torch

            return int(torch.cuda.max_memory_allocated())
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        import resource

        self.resets = False
        self.kind = "process peak resident memory since the start (ru_maxrss: only grows)"
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return maxrss if sys.platform == "darwin" else maxrss * 1024


def _trim_heap() -> None:
    """Give freed heap back to the system (glibc keeps it otherwise, and the next profile's peak would start
    from the previous one's high-water mark)."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
