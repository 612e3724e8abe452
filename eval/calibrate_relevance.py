"""Calibrate `retrieval.min_relevance` (issue 10): the raw dense cosine of retrieved passages for the eval
questions (relevant: the expected notes' passages) against eval/offtopic-questions.jsonl, and the hit@5 a cutoff
costs. Run on indexed homes, e.g.:

    .venv/bin/python eval/calibrate_relevance.py --home /tmp/ks/help eval/help-vault-questions.jsonl \
        eval/help-vault-heldout-questions.jsonl --cutoff 0.2 0.25 0.3
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from konsilium.config import open_home
from konsilium.evaluation.retrieval import load_questions
from konsilium.index.indexer import open_store
from konsilium.index.retrieval import Retriever

OFFTOPIC = Path(__file__).with_name("offtopic-questions.jsonl")
PASSAGES = 6  # server.context_chunks: what a grounded answer is offered


def spread(values: list[float]) -> str:
    values = sorted(values)
    return f"min {values[0]:.3f}  median {statistics.median(values):.3f}  max {values[-1]:.3f}  (n={len(values)})"


def top_notes(hits, cutoff: float, depth: int = 5) -> list[str]:
    best: dict[str, float] = {}
    for hit in hits:
        best[hit.note] = max(best.get(hit.note, -1.0), hit.relevance)
    return [note for note in best if best[note] >= cutoff][:depth]  # dicts keep the ranked order


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True)
    parser.add_argument("questions", nargs="+", type=Path)
    parser.add_argument("--cutoff", nargs="+", type=float, default=[0.25])
    args = parser.parse_args()
    home = open_home(args.home)
    store, embedder = open_store(home)
    retriever = Retriever(store, embedder, home.config.retrieval.candidates)
    on = [(q, retriever.search(q.question, 40)) for f in args.questions for q in load_questions(f)]
    off = [(q, retriever.search(q.question, 40)) for q in load_questions(OFFTOPIC)]
    relevant = [max([h.relevance for h in hits if h.note in q.expected] or [float("nan")]) for q, hits in on]
    print("relevant passages (best expected chunk):", spread([r for r in relevant if r == r]))
    print(
        "off-topic, best of the passages offered:",
        spread([max(h.relevance for h in hits[:PASSAGES]) for _, hits in off]),
    )
    for cutoff in [0.0, *args.cutoff]:
        hit5 = sum(any(n in q.expected for n in top_notes(hits, cutoff)) for q, hits in on)
        leaked = sum(any(h.relevance >= cutoff for h in hits[:PASSAGES]) for _, hits in off)
        print(
            f"cutoff {cutoff:.2f}: hit@5 {hit5}/{len(on)}, off-topic questions still given a note {leaked}/{len(off)}"
        )


if __name__ == "__main__":
    main()
