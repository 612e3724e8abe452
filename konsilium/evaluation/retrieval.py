"""`konsilium eval retrieval`: hit@k and MRR@10 over notes, for every retrieval mode.

A question is a hit when a chunk of any expected note is among the first k distinct notes retrieved.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from konsilium.errors import QuestionFileError

from ..index.retrieval import MODES, Retriever
from .jsonl import read_jsonl

MRR_DEPTH = 10


@dataclass
class Question:
    question: str
    expected: list[str]


def load_questions(path: Path) -> list[Question]:
    questions = []
    for number, item in read_jsonl(path, QuestionFileError, "questions"):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("question"), str)
            or not isinstance(item.get("expected"), list)
            or not all(isinstance(e, str) for e in item["expected"])
        ):
            raise QuestionFileError(f'{path}:{number}: expected {{"question": str, "expected": [note paths]}}')
        questions.append(Question(item["question"], [e.replace("\\", "/") for e in item["expected"]]))
    if not questions:
        raise QuestionFileError(f"{path}: no questions")
    return questions


def ranked_notes(retriever: Retriever, query: str, mode: str, depth: int) -> list[str]:
    notes: list[str] = []
    for hit in retriever.search(query, k=depth * 4, mode=mode):
        if hit.note not in notes:
            notes.append(hit.note)
        if len(notes) == depth:
            break
    return notes


def evaluate(retriever: Retriever, questions: list[Question], k: int = 5, modes=MODES, details=False) -> dict:
    result: dict = {"k": k, "questions": len(questions), "modes": {}}
    per_question: list[dict] = [{"question": q.question, "expected": q.expected} for q in questions]
    for mode in modes:
        hits = 0
        reciprocal = 0.0
        for q, row in zip(questions, per_question, strict=True):
            notes = ranked_notes(retriever, q.question, mode, max(k, MRR_DEPTH))
            rank = next((i + 1 for i, n in enumerate(notes) if n in q.expected), None)
            hits += rank is not None and rank <= k
            reciprocal += 1.0 / rank if rank is not None and rank <= MRR_DEPTH else 0.0
            row[mode] = {"rank": rank, "top": notes[:k]}
        result["modes"][mode] = {
            "hit": round(hits / len(questions), 4),
            "mrr": round(reciprocal / len(questions), 4),
        }
    if details:
        result["details"] = per_question
    return result
