"""Token windows -> padded batches. Windows of similar length go together (sorted by length, then cut at a token
budget), so padding stays small without packing unrelated samples into one sequence."""

from __future__ import annotations

import random

import torch

from .tokens import IGNORE, Window


def plan_batches(windows: list[Window], batch_tokens: int) -> list[list[int]]:
    """Indices of `windows` per batch: sorted by length, each batch's padded size within `batch_tokens` (a single
    window longer than the budget makes a batch of its own)."""
    order = sorted(range(len(windows)), key=lambda i: (len(windows[i].input_ids), i))
    batches, current, longest = [], [], 0
    for i in order:
        size = len(windows[i].input_ids)
        if current and max(longest, size) * (len(current) + 1) > batch_tokens:
            batches.append(current)
            current, longest = [], 0
        current.append(i)
        longest = max(longest, size)
    if current:
        batches.append(current)
    return batches


def epoch_order(batches: list[list[int]], seed: int, epoch: int) -> list[list[int]]:
    """The batches of one epoch in a seeded order: a resumed run replays the same order."""
    shuffled = list(batches)
    random.Random(seed * 100_003 + epoch).shuffle(shuffled)
    return shuffled


def collate(windows: list[Window], pad_id: int, device) -> dict[str, torch.Tensor]:
    width = max(len(w.input_ids) for w in windows)
    ids = torch.full((len(windows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(windows), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(windows), width), dtype=torch.long)
    for row, window in enumerate(windows):
        n = len(window.input_ids)
        ids[row, :n] = torch.tensor(window.input_ids)
        labels[row, :n] = torch.tensor(window.labels)
        mask[row, :n] = 1
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "labels": labels.to(device)}
