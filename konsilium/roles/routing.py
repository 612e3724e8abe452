"""`model: "auto"`: pick the role whose description fits the request, and keep alternative views out.

A role's profile (description + topics) and the request are embedded with the index's embedder; the most
similar eligible role above `threshold` wins, else the neutral fallback (the base model, or a configured
neutral role). Eligibility is the guard: a role with allowed topics is only chosen when the request is about
one of them, a blocked topic excludes a role, and an `alternative` role must always match one of its topics
explicitly — an essay request never drifts into a personal sports-science worldview by similarity alone.
A topic matches when all its word stems occur in the request, or when its embedding is close enough.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..index.text import analyze

# Measured with USE-m3 on role descriptions vs questions: a fitting role scores 0.23-0.40, unrelated ones
# below 0.15. Below the threshold, or without a clear margin over the runner-up, the neutral fallback answers.
THRESHOLD = 0.2
MARGIN = 0.05
TOPIC_THRESHOLD = 0.45  # a topic is "this request's subject" only when clearly close


@dataclass(frozen=True)
class Route:
    role: str | None  # None: the base model
    score: float
    reason: str
    scores: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"role": self.role, "score": round(self.score, 4), "reason": self.reason, "scores": self.scores}


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def _stems(text: str) -> set[str]:
    return set(analyze(text))


class Router:
    def __init__(
        self,
        roles: list,
        embed: Callable[[list[str]], np.ndarray],
        threshold: float = THRESHOLD,
        topic_threshold: float = TOPIC_THRESHOLD,
        fallback: str | None = None,
    ):
        self.roles = [role for role in roles if role.id != fallback]
        self.embed, self.threshold, self.topic_threshold, self.fallback = embed, threshold, topic_threshold, fallback
        profiles = [" ".join([role.description, *role.topics]).strip() or role.id for role in self.roles]
        self.profiles = _unit(embed(profiles)) if profiles else np.zeros((0, 1), dtype=np.float32)
        topics = sorted({t for role in self.roles for t in (*role.topics, *role.blocked_topics)})
        self.topic_vectors = dict(zip(topics, _unit(embed(topics)), strict=True)) if topics else {}
        self.topic_stems = {topic: _stems(topic) for topic in topics}

    def route(self, text: str) -> Route:
        if not self.roles or not text.strip():
            return Route(self.fallback, 0.0, "no roles to choose from" if not self.roles else "empty request")
        query = _unit(self.embed([text]))[0]
        stems = _stems(text)
        scores = {role.id: float(s) for role, s in zip(self.roles, self.profiles @ query, strict=True)}
        eligible, excluded = [], []
        for role in self.roles:
            blocked = [t for t in role.blocked_topics if self._matches(t, query, stems)]
            if blocked:
                excluded.append(f"{role.id} (blocked topic {blocked[0]!r})")
                continue
            if role.topics and not any(self._matches(t, query, stems) for t in role.topics):
                if role.label == "alternative":
                    excluded.append(f"{role.id} (alternative view, off its topics)")
                continue
            eligible.append(role)
        rounded = {k: round(v, 4) for k, v in scores.items()}
        ranked = sorted(eligible, key=lambda role: scores[role.id], reverse=True)
        if ranked and scores[ranked[0].id] >= self.threshold:
            best, runner_up = ranked[0], scores[ranked[1].id] if len(ranked) > 1 else -1.0
            if scores[best.id] - runner_up >= MARGIN:
                return Route(best.id, scores[best.id], f"closest role ({scores[best.id]:.2f})", rounded)
        why = "no role is clearly closest" if eligible else "no role is eligible"
        if excluded:
            why += "; excluded: " + ", ".join(excluded)
        return Route(self.fallback, max(scores.values(), default=0.0), why, rounded)

    def blocked(self, role, text: str) -> str | None:
        """The first of the role's blocked topics this request is about (None: none is)."""
        query, stems = _unit(self.embed([text]))[0], _stems(text)
        return next((t for t in role.blocked_topics if self._matches(t, query, stems)), None)

    def _matches(self, topic: str, query: np.ndarray, stems: set[str]) -> bool:
        topic_stems = self.topic_stems.get(topic) or _stems(topic)
        if topic_stems and topic_stems <= stems:
            return True
        vector = self.topic_vectors.get(topic)
        return vector is not None and float(vector @ query) >= self.topic_threshold


def blocked_topic(role, text: str, router: Router | None) -> str | None:
    """A named request's guard: the role's blocked topic this request is about. With a router (an embedder) topics
    match by meaning too; without one, by their word stems only."""
    if router is not None and any(r.id == role.id for r in router.roles):
        return router.blocked(role, text)
    stems = _stems(text)
    return next((t for t in role.blocked_topics if _stems(t) and _stems(t) <= stems), None)
