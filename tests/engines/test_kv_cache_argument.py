"""Answers print no transformers FutureWarning: the KV cache is passed under the name this transformers takes."""

from __future__ import annotations

import threading
import warnings

import torch
from tiny_models import tiny_llama

from konsilium.engines.batching import BatchScheduler, _probe_agrees


class Greedy:
    """A request of `steps` tokens, as the scheduler sees one."""

    def __init__(self, prompt_ids: list[int], steps: int):
        self.prompt_ids, self.reserve, self.cancelled = prompt_ids, len(prompt_ids) + steps, False
        self.tokens: list[int] = []
        self.steps, self.done, self.error = steps, threading.Event(), None

    def choose(self, logits: torch.Tensor) -> int:
        return int(logits.argmax())

    def accept(self, token: int) -> bool:
        self.tokens.append(token)
        finished = len(self.tokens) >= self.steps
        if finished:
            self.done.set()
        return finished

    def fail(self, error: BaseException) -> None:
        self.error = error
        self.done.set()


def test_no_future_warning_from_the_cache_argument():
    model = tiny_llama()
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # as on the user's terminal, but failing the test
        with torch.inference_mode():
            _probe_agrees(model)  # every engine start runs it: a forward through transformers' own cache
        scheduler = BatchScheduler(
            model, max_batch_size=1, max_batch_tokens=4096
        )  # one at a time: transformers' cache every step
        job = Greedy([1, 2, 3, 4], steps=4)
        scheduler.submit(job)
        assert job.done.wait(60)
    assert job.error is None and len(job.tokens) == 4
