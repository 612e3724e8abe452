"""Samples -> token windows with labels, the one tokenization training and perplexity share.

Text samples: every token is learned; the sample ends with the end-of-text token so the model learns where a note
ends. Chat samples: rendered with the base model's own chat template, and only the assistant's tokens (its
message and the template's end-of-turn mark) carry loss, found by rendering the conversation up to each assistant
turn. Long samples are cut into windows of `max_tokens`; a window that would learn nothing is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

from .samples import Sample

IGNORE = -100  # the label torch's cross-entropy skips


@dataclass(frozen=True)
class Window:
    input_ids: tuple[int, ...]
    labels: tuple[int, ...]
    source: str

    @property
    def learned(self) -> int:
        """Tokens that carry loss (the first token never does: nothing predicts it)."""
        return sum(1 for label in self.labels[1:] if label != IGNORE)


def encode(sample: Sample, tokenizer, max_tokens: int) -> list[Window]:
    ids, labels = _chat(sample, tokenizer) if sample.messages is not None else _text(sample.text or "", tokenizer)
    windows = []
    for start in range(0, len(ids), max_tokens):
        window = Window(
            tuple(ids[start : start + max_tokens]), tuple(labels[start : start + max_tokens]), sample.source
        )
        if window.learned:
            windows.append(window)
    return windows


def pad_id(tokenizer) -> int:
    """The id batches are padded with (masked out, never learned): the pad token, else end-of-text."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def encode_all(samples: list[Sample], tokenizer, max_tokens: int) -> list[Window]:
    return [window for sample in samples for window in encode(sample, tokenizer, max_tokens)]


def _text(text: str, tokenizer) -> tuple[list[int], list[int]]:
    ids = list(tokenizer(text, add_special_tokens=True)["input_ids"])
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return ids, list(ids)


def _render(tokenizer, messages, generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=generation_prompt)


def assistant_spans(tokenizer, messages) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of the assistant's turns in it. A template that renders
    earlier turns differently once more follow (Qwen3 drops old reasoning) gets loss on its last turn only."""
    full = _render(tokenizer, messages)
    spans = []
    for n, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = _render(tokenizer, messages[:n], generation_prompt=True) if n else ""
        upto = _render(tokenizer, messages[: n + 1])
        if not (upto.startswith(before) and full.startswith(upto)):
            spans = []
            break
        spans.append((len(before), len(upto)))
    if not spans:
        before = _render(tokenizer, messages[:-1], generation_prompt=True)
        start = len(before) if full.startswith(before) else 0
        spans = [(start, len(full))]
    return full, spans


def _chat(sample: Sample, tokenizer) -> tuple[list[int], list[int]]:
    full, spans = assistant_spans(tokenizer, sample.messages)
    encoded = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(encoded["input_ids"])
    labels = [
        token if any(start <= begin < end for start, end in spans) else IGNORE
        for token, (begin, _) in zip(ids, encoded["offset_mapping"], strict=True)
    ]
    return ids, labels
