"""`konsilium eval memory`: replay conversations through the memory loop the server uses, then score what the
prompt would carry for each question.

Sessions (`{"session", "time", "messages"}`) are replayed in time order into a fresh conversation log, one
exchange per user turn with the given assistant reply (nothing is generated), and learned from exactly as the
server does (`MemoryService.catch_up`). Before each question every session up to its time has been learned. The
memory context of a question is what `recall` offers the prompt: the pinned profile and the top `k` current
memories. A hit: any `expected` text in it (case-insensitive); a stale leak: any `stale` text in it.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

from ..memory.log import ConversationLog, Exchange, fold
from .jsonl import read_jsonl

SESSION_FIELDS = ("session", "time", "messages")
QUESTION_FIELDS = ("question", "time", "expected")


class EvalDataError(ValueError):
    pass


def load_jsonl(path: Path, required: tuple[str, ...], what: str) -> list[dict]:
    items = []
    for number, item in read_jsonl(path, EvalDataError, what):
        missing = [name for name in required if not isinstance(item, dict) or name not in item]
        if missing:
            raise EvalDataError(f"{path}:{number}: a {what[:-1]} needs {', '.join(missing)}")
        item["_time"] = parse_time(item["time"], f"{path}:{number}")
        items.append(item)
    if not items:
        raise EvalDataError(f"{path}: no {what} in the file")
    return items


def parse_time(value, where: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    raise EvalDataError(f"{where}: time must be ISO 8601 (2026-02-01T10:00:00Z) or unix seconds, got {value!r}")


def session_exchanges(session: dict) -> list[Exchange]:
    """One exchange per user turn, as a chat client would have sent it (the conversation so far included)."""
    messages = session["messages"]
    if not isinstance(messages, list):
        raise EvalDataError(f"session {session.get('session')!r}: messages must be a list")
    exchanges, history = [], []
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant", "system"):
            raise EvalDataError(f"session {session.get('session')!r}: message {index} needs a role and content")
        if message["role"] != "user":
            history.append(message)
            continue
        history.append(message)
        reply = messages[index + 1] if index + 1 < len(messages) else None
        answer = reply["content"] if isinstance(reply, dict) and reply.get("role") == "assistant" else ""
        exchanges.append(
            Exchange(
                id=f"eval-{session['session']}-{index}",
                time=session["_time"] + index,  # turns a second apart, in order
                endpoint="chat.completions",
                model="konsilium",
                role=None,
                messages=[dict(m) for m in history],
                response=str(answer),
                finish_reason="stop",
                sources=[],
            )
        )
    return exchanges


def evaluate(sessions: list[dict], questions: list[dict], k: int = 5, settings=None, embedder=None) -> dict:
    from ..config import MemorySettings
    from ..memory.service import MemoryService

    settings = settings or MemorySettings()
    sessions = sorted(sessions, key=lambda s: s["_time"])
    questions = sorted(enumerate(questions), key=lambda p: p[1]["_time"])
    per_question: list[dict] = [{} for _ in questions]
    extraction_ms: list[float] = []
    with tempfile.TemporaryDirectory(prefix="konsilium-eval-memory-") as folder:
        log = ConversationLog(Path(folder) / "conversations.sqlite3")
        service = MemoryService(log, settings, embedder=embedder)
        replayed = 0
        for position, question in questions:
            while replayed < len(sessions) and sessions[replayed]["_time"] <= question["_time"]:
                for exchange in session_exchanges(sessions[replayed]):
                    log.record(exchange)
                    started = time.perf_counter()
                    service.catch_up()
                    extraction_ms.append((time.perf_counter() - started) * 1000)
                replayed += 1
            per_question[position] = score(question, service.recall(question["question"], k=k))
        log.close()
    return summary(per_question, k, extraction_ms)


def score(question: dict, recalled: list) -> dict:
    texts = [item.memory.text for item in recalled]
    context = fold("\n".join(texts))
    expected = [str(e) for e in question.get("expected") or []]
    stale = [str(s) for s in question.get("stale") or []]
    return {
        "question": question["question"],
        "kind": question.get("kind") or "unspecified",
        "hit": any(fold(e) in context for e in expected) if expected else None,
        "leak": any(fold(s) in context for s in stale),
        "expected": expected,
        "stale": stale,
        "memories": texts,
    }


def summary(per_question: list[dict], k: int, extraction_ms: list[float]) -> dict:
    scored = [q for q in per_question if q["hit"] is not None]
    by_kind: dict[str, dict] = {}
    for q in per_question:
        kind = by_kind.setdefault(q["kind"], {"hit": 0, "leak": 0, "n": 0, "_scored": 0})
        kind["n"] += 1
        kind["leak"] += int(q["leak"])
        if q["hit"] is not None:
            kind["_scored"] += 1
            kind["hit"] += int(q["hit"])
    for kind in by_kind.values():
        scored_n = kind.pop("_scored")
        kind["hit"] = round(kind["hit"] / scored_n, 4) if scored_n else None
        kind["leak"] = round(kind["leak"] / kind["n"], 4)
    return {
        "k": k,
        "questions": len(per_question),
        "current_hit": round(sum(q["hit"] for q in scored) / len(scored), 4) if scored else None,
        "stale_leak": round(sum(q["leak"] for q in per_question) / len(per_question), 4) if per_question else 0.0,
        "by_kind": by_kind,
        "extraction_ms_per_exchange": {
            "p50": round(statistics.median(extraction_ms), 2) if extraction_ms else None,
            "max": round(max(extraction_ms), 2) if extraction_ms else None,
        },
        "per_question": per_question,
    }
