"""The memory loop's costs: extraction per exchange, memory search at 10k / 100k memories, and what memory adds
to a chat answer's latency.

- extraction: the sample sessions (and eval/memory-dev-*.jsonl) replayed through `MemoryService.catch_up`, one
  exchange at a time, with the real USE-m3 embedder (ms per exchange);
- search: N current memories (real sentences' shapes, stand-in unit vectors: embedding 100k sentences would take
  minutes and measures the embedder, not the store), then `recall(question)` p50 / p95 including the query's real
  embedding, the FTS5 stem match and the fusion;
- chat: the real FastAPI app over a no-op fake engine, the same question alternately with `konsilium.memory`
  on and off (paired, so load drifts cancel), 10k memories in the store: the difference of medians.

    python benchmarks/memory.py                      # 10k and 100k, 200 searches, 200 paired chats
    python benchmarks/memory.py --sizes 10000 --searches 100 --chats 100

Prints a table and writes benchmarks/results/memory.json (with provenance).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from benchmarks.provenance import provenance  # noqa: E402

SHARED_EVAL = ROOT.parent / "shared" / "eval"
DEFAULT_JSON = ROOT / "benchmarks" / "results" / "memory.json"
QUESTIONS = [
    "Where do I work now?",
    "Какая у меня видеокарта?",
    "When are my tutor sessions?",
    "Что я не ем?",
    "What is my sister's name?",
]
SUBJECTS = "laptop gpu job city diet tutor deadline car phone hobby sister friend".split()


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def measure_extraction() -> dict:
    from konsilium.evaluation.memory import load_jsonl, session_exchanges
    from konsilium.memory import ConversationLog
    from konsilium.memory.service import MemoryService

    files = [SHARED_EVAL / "memory-sample-sessions.jsonl", *sorted((ROOT / "eval").glob("memory-dev-sessions*.jsonl"))]
    timings = []
    with tempfile.TemporaryDirectory() as folder:
        log = ConversationLog(Path(folder) / "c.sqlite3")
        service = MemoryService(log)
        service.embed(["warm up"])
        for file in files:
            if not file.exists():
                continue
            for session in sorted(
                load_jsonl(file, ("session", "time", "messages"), "sessions"), key=lambda s: s["_time"]
            ):
                for exchange in session_exchanges(session):
                    log.record(exchange)
                    started = time.perf_counter()
                    service.catch_up()
                    timings.append((time.perf_counter() - started) * 1000)
        log.close()
    return {"exchanges": len(timings), "p50_ms": statistics.median(timings), "p95_ms": percentile(timings, 95)}


def fill(service, count: int, rng: np.random.Generator) -> None:
    from konsilium.memory.records import Memory, Operation, new_memory_id

    dim, now, batch = 512, time.time(), []
    for i in range(count):
        vector = rng.standard_normal(dim).astype(np.float32)
        vector /= np.linalg.norm(vector)
        subject = SUBJECTS[i % len(SUBJECTS)]
        text = f"Memory {i}: my {subject} note number {i} says item {rng.integers(1_000_000)}"
        batch.append(Operation("ADD", Memory(new_memory_id(), text, created=now - i, updated=now - i, vector=vector)))
        if len(batch) == 5000:
            service.store.apply(batch)
            batch = []
    if batch:
        service.store.apply(batch)


def measure_search(sizes: list[int], searches: int) -> list[dict]:
    from konsilium.memory import ConversationLog
    from konsilium.memory.service import MemoryService

    rows, rng = [], np.random.default_rng(7)
    for size in sizes:
        with tempfile.TemporaryDirectory() as folder:
            log = ConversationLog(Path(folder) / "c.sqlite3")
            service = MemoryService(log)
            started = time.perf_counter()
            fill(service, size, rng)
            filled_s = time.perf_counter() - started
            service.recall("warm up")  # loads the matrix once, as the server's first question would
            timings = []
            for i in range(searches):
                started = time.perf_counter()
                service.recall(QUESTIONS[i % len(QUESTIONS)])
                timings.append((time.perf_counter() - started) * 1000)
            refresh = []  # the memory thread changed something after an answer: the next recall pays for it
            for i in range(5):
                fill(service, 1, rng)
                started = time.perf_counter()
                service.recall(QUESTIONS[i % len(QUESTIONS)])
                refresh.append((time.perf_counter() - started) * 1000)
            embed = []
            for i in range(min(searches, 50)):
                started = time.perf_counter()
                service.embed([QUESTIONS[i % len(QUESTIONS)]])
                embed.append((time.perf_counter() - started) * 1000)
            log.close()
        rows.append(
            {
                "memories": size,
                "recall_p50_ms": statistics.median(timings),
                "recall_p95_ms": percentile(timings, 95),
                "recall_after_a_change_p50_ms": statistics.median(refresh),
                "query_embedding_p50_ms": statistics.median(embed),
                "fill_s": round(filled_s, 1),
            }
        )
    return rows


def measure_chat(chats: int, memories: int) -> dict:
    import httpx2 as httpx
    from fake_engine import FakeEngine
    from live_server import running_server

    from konsilium.memory import ConversationLog
    from konsilium.memory.service import MemoryService
    from konsilium.pipeline import TurnPipeline
    from konsilium.roles.runtime import RoleService
    from konsilium.server import create_app

    with tempfile.TemporaryDirectory() as folder:
        engine = FakeEngine(context_length=4096)
        log = ConversationLog(Path(folder) / "c.sqlite3")
        memory = MemoryService(log)
        fill(memory, memories, np.random.default_rng(3))
        pipeline = TurnPipeline(engine, RoleService(engine, base_model_id="konsilium"), None, log, memory=memory)
        on, off = [], []
        with running_server(create_app(engine, pipeline=pipeline)) as url, httpx.Client(timeout=60) as http:

            def ask(flag: bool) -> float:
                body = {
                    "model": "konsilium",
                    "messages": [{"role": "user", "content": "Какая у меня видеокарта?"}],
                    "konsilium": {"memory": flag},
                }
                started = time.perf_counter()
                http.post(f"{url}/v1/chat/completions", json=body).raise_for_status()
                return (time.perf_counter() - started) * 1000

            ask(True), ask(False)
            for _ in range(chats):
                on.append(ask(True))
                off.append(ask(False))
        memory.stop()
        log.close()
    deltas = [a - b for a, b in zip(on, off, strict=True)]
    return {
        "memories": memories,
        "chats": chats,
        "memory_on_p50_ms": statistics.median(on),
        "memory_off_p50_ms": statistics.median(off),
        "paired_delta_p50_ms": statistics.median(deltas),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--searches", type=int, default=200)
    parser.add_argument("--chats", type=int, default=200)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    options = parser.parse_args()
    facts = {"provenance": provenance()}
    facts["extraction"] = measure_extraction()
    facts["search"] = measure_search(options.sizes, options.searches)
    facts["chat"] = measure_chat(options.chats, min(options.sizes))
    ex = facts["extraction"]
    print(f"extraction: {ex['exchanges']} exchanges, p50 {ex['p50_ms']:.1f} ms, p95 {ex['p95_ms']:.1f} ms per exchange")
    print(f"{'memories':>10} {'recall p50':>11} {'recall p95':>11} {'after a change':>15} {'query embed':>12}")
    for row in facts["search"]:
        print(
            f"{row['memories']:>10,} {row['recall_p50_ms']:>9.1f}ms {row['recall_p95_ms']:>9.1f}ms "
            f"{row['recall_after_a_change_p50_ms']:>13.1f}ms {row['query_embedding_p50_ms']:>10.1f}ms"
        )
    chat = facts["chat"]
    print(
        f"chat ({chat['memories']:,} memories, {chat['chats']} pairs): on {chat['memory_on_p50_ms']:.1f} ms, "
        f"off {chat['memory_off_p50_ms']:.1f} ms, paired delta p50 {chat['paired_delta_p50_ms']:+.1f} ms"
    )
    options.json.parent.mkdir(parents=True, exist_ok=True)
    options.json.write_text(json.dumps(facts, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
