"""Token-weighted perplexity: exp(total negative log-likelihood / tokens) over every learned token of every window,
so a long note weighs by its tokens, not as one item."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .batches import collate, plan_batches
from .tokens import IGNORE, Window


def token_losses(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """(summed NLL, learned tokens) of one batch; the sum carries the graph when called under autograd."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    labels = batch["labels"][:, 1:]
    loss = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=IGNORE, reduction="sum"
    )
    return loss, int((labels != IGNORE).sum())


@torch.no_grad()
def perplexity(
    model, windows: list[Window], pad_id: int, batch_tokens: int = 4096, progress: Callable | None = None
) -> dict:
    if not windows:
        raise ValueError("nothing to measure: no text left after tokenization")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, tokens = 0.0, 0
    batches = plan_batches(windows, batch_tokens)
    try:
        for done, indices in enumerate(batches, 1):
            loss, count = token_losses(model, collate([windows[i] for i in indices], pad_id, device))
            total += float(loss)
            tokens += count
            if progress:
                progress(done, len(batches), "")
    finally:
        model.train(was_training)
    nll = total / tokens
    return {"tokens": tokens, "nll": round(nll, 6), "perplexity": round(math.exp(nll), 4)}
