"""What a memory is, and the operations that change memories (mem0's ADD / UPDATE / DELETE / NOOP)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Status = Literal["current", "superseded", "forgotten"]
Event = Literal["ADD", "UPDATE", "DELETE", "NOOP", "EDIT", "PIN", "UNPIN"]
USER = "user"  # `about` of a statement about the user himself
UNKNOWN = "someone"  # `about` of a statement whose pronoun names nobody known: no one in particular
ORIGINS = ("rules", "model", "user")


def new_memory_id() -> str:
    return "mem-" + secrets.token_hex(6)


@dataclass
class Memory:
    id: str
    text: str
    about: str = USER
    kind: str = "fact"
    key: str | None = None
    status: Status = "current"
    pinned: bool = False
    origin: str = "rules"
    created: float = 0.0  # when it was said
    updated: float = 0.0
    exchange_id: str | None = None
    superseded_by: str | None = None
    vector: np.ndarray | None = field(default=None, repr=False)
    # What a question is compared with: its own vector averaged with its vector said in context ("пока отложено
    # 38к" after "коплю на мот"), so that a fragment is found by what it is about; None: its own vector.
    search_vector: np.ndarray | None = field(default=None, repr=False)
    stored_fingerprint: str | None = field(default=None, repr=False, compare=False)  # as the store computed it

    @property
    def fingerprint(self) -> str:
        """Read from the store when it came from there: comparing a statement with thousands of memories must not
        analyse each one's text again."""
        return self.stored_fingerprint or fingerprint(self.text, self.about)

    def to_json(self) -> dict:
        """The API's and `--json`'s shape (no vector)."""
        return {
            "id": self.id,
            "object": "memory",
            "text": self.text,
            "about": self.about,
            "kind": self.kind,
            "key": self.key,
            "status": self.status,
            "pinned": self.pinned,
            "origin": self.origin,
            "created": self.created,
            "updated": self.updated,
            "exchange_id": self.exchange_id,
            "superseded_by": self.superseded_by,
        }


@dataclass(frozen=True)
class HistoryEvent:
    memory_id: str
    event: str
    old_text: str | None
    new_text: str | None
    time: float
    exchange_id: str | None
    detail: str | None

    def to_json(self) -> dict:
        return {
            "memory_id": self.memory_id,
            "event": self.event,
            "old_text": self.old_text,
            "new_text": self.new_text,
            "time": self.time,
            "exchange_id": self.exchange_id,
            "detail": self.detail,
        }


@dataclass
class Operation:
    """One decided change. ADD: `memory` is new. UPDATE: `memory` supersedes `target`. DELETE: `target` is
    forgotten. NOOP: `target` already says it (its history notes the repeat)."""

    event: Literal["ADD", "UPDATE", "DELETE", "NOOP"]
    memory: Memory | None = None
    target: str | None = None
    reason: str = ""
    also: tuple[str, ...] = ()  # UPDATE: more memories `memory` supersedes (said with `target` in one message)


def fingerprint(text: str, about: str = USER) -> str:
    """The statement's content words, order-free: the same fact said again (or re-extracted from an old
    exchange after it was forgotten) has the same fingerprint."""
    from ..index.text import analyze

    stems = " ".join(sorted(set(analyze(text))))
    return hashlib.sha256(f"{about.casefold()}\n{stems}".encode()).hexdigest()[:32]


def terms(text: str, about: str = USER, key: str | None = None) -> str:
    """Stems for the full-text index (both languages stemmed as the vault index does), plus a token for every
    subject the text touches and for its own subject `key` (`key_tokens`), so a question's subject finds its
    memories in one index lookup ("Where do I work?" finds "С июня я тимлид в Авито": job.role)."""
    from ..index.text import analyze
    from .subjects import subject_keys  # (subjects → attribution → records: imported here)

    keys = subject_keys(text) | ({key} if key else set())
    subjects = [token for key in sorted(keys) for token in key_tokens(key)]
    return " ".join([*analyze(f"{text} {about if about != USER else ''}"), *dict.fromkeys(subjects)])


def key_family(key: str | None) -> str | None:
    """ "deadline:thesis" → "deadline", "laptop.ram" → "laptop", "job.role" → "job"."""
    return key.split(":")[0].split(".")[0] if key else None


def key_tokens(key: str) -> list[str]:
    """A subject key as full-text tokens (letters only, so FTS5 keeps each whole): the key and its family, e.g.
    "laptop.ram" → kzlaptopram, kzlaptop."""
    family = key_family(key)
    return [f"kz{''.join(ch for ch in key if ch.isalnum())}", f"kz{family}"]
