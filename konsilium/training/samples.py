"""Training samples and the dataset file: one JSON object a line, in the common chat format.

    {"text": "...", "source": "Folder/Note.md", "split": "train"}                       continued pre-training
    {"messages": [{"role": "user", "content": "..."}, ...], "source": "...", "split": "eval"}   chat

`source` and `split` are ours and optional: a plain chat JSONL file from elsewhere reads as well. A sample without
`split` is assigned one from its source (or its text), so a note is never half in training and half held out.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

SPLITS = ("train", "eval")
CHAT_ROLES = ("system", "user", "assistant")


class DatasetError(ValueError):
    """A dataset file that cannot be used (said with the line number)."""


@dataclass(frozen=True)
class Sample:
    text: str | None = None  # a text sample: loss on every token
    messages: tuple[dict, ...] | None = None  # a chat sample: loss on the assistant's tokens only
    source: str = ""
    split: str = "train"

    @property
    def kind(self) -> str:
        return "chat" if self.messages is not None else "text"

    def content(self) -> str:
        """All the words of the sample (dedup, filters, sizes)."""
        if self.messages is None:
            return self.text or ""
        return "\n".join(m["content"] for m in self.messages)

    def to_json(self) -> dict:
        body = {"text": self.text} if self.messages is None else {"messages": list(self.messages)}
        return {**body, "source": self.source, "split": self.split}


def _bucket(key: str) -> float:
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2**64


def split_for(key: str, eval_fraction: float) -> str:
    """A stable split from a key alone (a chat of a JSONL file, an exchange): held out with that probability."""
    return "eval" if eval_fraction > 0 and _bucket(key) < eval_fraction else "train"


def hold_out(samples: list[Sample], eval_fraction: float) -> list[Sample]:
    """Hold out whole sources (notes): the ceil(share) of them with the lowest hash of their path, at least one
    when there are two or more. The same notes are held out in every build of the same folder, and the share is
    exact (a hash threshold alone may hold out none of 15 notes, or five)."""
    sources = sorted({s.source for s in samples}, key=_bucket)
    if eval_fraction <= 0 or len(sources) < 2:
        return [replace(s, split="train") for s in samples]
    held = set(sources[: min(len(sources) - 1, max(1, math.ceil(eval_fraction * len(sources))))])
    return [replace(s, split="eval" if s.source in held else "train") for s in samples]


def parse_sample(data: object, where: str, eval_fraction: float = 0.1) -> Sample:
    if not isinstance(data, dict):
        raise DatasetError(f"{where}: expected a JSON object with 'text' or 'messages'")
    source = data.get("source") or ""
    if not isinstance(source, str):
        raise DatasetError(f"{where}: 'source' must be a string")
    if "messages" in data:
        messages = _messages(data["messages"], where)
        key = source or json.dumps(messages, ensure_ascii=False)
        sample = Sample(messages=messages, source=source, split="train")
    elif "text" in data:
        if not isinstance(data["text"], str):
            raise DatasetError(f"{where}: 'text' must be a string")
        key = source or data["text"]
        sample = Sample(text=data["text"], source=source, split="train")
    else:
        raise DatasetError(f"{where}: a sample needs 'text' (plain text) or 'messages' (a chat)")
    split = data.get("split")
    if split is None:
        split = split_for(key, eval_fraction)
    elif split not in SPLITS:
        raise DatasetError(f"{where}: 'split' must be one of {', '.join(SPLITS)}, not {split!r}")
    return Sample(sample.text, sample.messages, source, split)


def _messages(raw: object, where: str) -> tuple[dict, ...]:
    if not isinstance(raw, list) or not raw:
        raise DatasetError(f"{where}: 'messages' must be a non-empty list")
    messages = []
    for n, message in enumerate(raw):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            raise DatasetError(f"{where}: messages[{n}] needs a string 'content'")
        role = message.get("role")
        if role == "developer":  # OpenAI's newer name for the system message
            role = "system"
        if role not in CHAT_ROLES:
            raise DatasetError(f"{where}: messages[{n}].role {role!r} is not one of {', '.join(CHAT_ROLES)}")
        messages.append({"role": role, "content": message["content"]})
    if not any(m["role"] == "assistant" for m in messages):
        raise DatasetError(f"{where}: a chat sample needs an assistant message (the part that is learned)")
    return tuple(messages)


def read_samples(path: Path, eval_fraction: float = 0.1) -> list[Sample]:
    """Every sample of a JSONL file; the first bad line stops the read with its number."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such dataset file (build one with `konsilium dataset build`)")
    samples = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{number}: not JSON ({exc.msg})") from None
            samples.append(parse_sample(data, f"{path}:{number}", eval_fraction))
    if not samples:
        raise DatasetError(f"{path}: the dataset is empty")
    return samples


def write_samples(samples: list[Sample], path: Path) -> None:
    """Written to a temporary file and renamed: a crash never leaves half a dataset under the name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8") as fh:
        for sample in samples:
            fh.write(json.dumps(sample.to_json(), ensure_ascii=False) + "\n")
    partial.replace(path)


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
