"""Continuous batching in the transformers engine: N concurrent greedy requests against the engine directly.

For each N, the same N requests (varied prompts, ~32 new tokens each) run in three modes, back to back so that
machine load drifts as little as possible between them:

* serial: `max_batch_size=1`, one request after another (what the engine did before batching);
* batched: the default (`max_batch_size=16`), a lone request keeps the one-row kernels;
* invariant: batched with `batch_invariant=True` (a lone request is padded like a batch).

Reported per mode and N: aggregate completion tokens/s (all tokens / wall time from the first submit to the last
token), per-request latency and first-chunk latency (p50/p95, from the common start), the mean number of sequences
per decode step, and whether every greedy text equals the serial one.

    python benchmarks/engine_batching.py                       # N = 1 4 8 16, 32 tokens, all three modes
    python benchmarks/engine_batching.py --n 1 4 --modes serial batched --json-out /tmp/b.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import transformers  # noqa: E402

from benchmarks.provenance import provenance  # noqa: E402
from konsilium.engines import SamplingParams, load_embedded_default  # noqa: E402

QUESTIONS = [
    "Write a short story about a lighthouse keeper.",
    "Explain how a bicycle works.",
    "Describe the water cycle to a ten-year-old.",
    "What are the benefits of regular exercise? Give several reasons.",
    "Write a poem about the autumn forest.",
    "Explain the difference between a virus and a bacterium.",
    "Tell me about the history of the printing press.",
    "How do I make a cup of tea? Describe every step.",
    "Write a letter to a friend about a trip to the mountains.",
    "Describe a busy market in a small town early in the morning, with its sounds and smells.",
    "Why do leaves change color in the fall?",
    "Explain what a computer program is.",
    "Give me tips for learning a new language.",
    "Describe the life of a honey bee.",
    "Write a product description for a wooden chair.",
    "Расскажи о Байкале в нескольких предложениях.",
]
MODES = {
    "serial": {"max_batch_size": 1},
    "batched": {},
    "invariant": {"batch_invariant": True},
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_concurrent(
    engine, prompts: list[str], params: SamplingParams | list[SamplingParams], adapters: list | None = None
) -> dict:
    """All requests start together (one thread each, as the server's worker threads would call the engine).
    `params`: one for all, or one per request; `adapters`: an AdapterRequest (or None) per request
    (benchmarks/adapters.py gives each its adapter)."""
    per_request = params if isinstance(params, list) else [params] * len(prompts)
    per_adapter = adapters if adapters is not None else [None] * len(prompts)
    results: list[dict | None] = [None] * len(prompts)
    barrier = threading.Barrier(len(prompts) + 1)

    def worker(index: int) -> None:
        barrier.wait()
        first, parts, last = None, [], None
        for last in engine.stream(prompts[index], per_request[index], per_adapter[index]):
            first = first or time.perf_counter()
            parts.append(last.text)
        results[index] = {
            "first": first,
            "end": time.perf_counter(),
            "tokens": last.completion_tokens,
            "text": "".join(parts),
        }

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(prompts))]
    for thread in threads:
        thread.start()
    before = engine._scheduler.batch_sizes.copy()
    start = time.perf_counter()
    barrier.wait()
    for thread in threads:
        thread.join()
    steps = engine._scheduler.batch_sizes - before
    wall = max(r["end"] for r in results) - start
    latencies = [r["end"] - start for r in results]
    firsts = [r["first"] - start for r in results]
    tokens = sum(r["tokens"] for r in results)
    return {
        "requests": len(prompts),
        "completion_tokens": tokens,
        "wall_s": round(wall, 3),
        "tokens_per_s": round(tokens / wall, 2),
        "latency_p50_s": round(statistics.median(latencies), 3),
        "latency_p95_s": round(percentile(latencies, 0.95), 3),
        "first_chunk_p50_s": round(statistics.median(firsts), 3),
        "first_chunk_p95_s": round(percentile(firsts, 0.95), 3),
        "decode_steps": sum(steps.values()),
        "mean_batch": round(sum(k * v for k, v in steps.items()) / max(1, sum(steps.values())), 2),
        "batch_sizes": dict(sorted(steps.items())),
        "texts": [r["text"] for r in results],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's own choice)")
    parser.add_argument("--json-out", type=Path, default=ROOT / "benchmarks" / "results" / "engine_batching.json")
    args = parser.parse_args()
    started = provenance()  # the code as it was when the run began
    load_start = os.getloadavg()[0]

    if args.threads:
        torch.set_num_threads(args.threads)
    loaded = time.perf_counter()
    engine = load_embedded_default()
    print(f"model loaded in {time.perf_counter() - loaded:.1f} s; torch threads {torch.get_num_threads()}")
    prompts = [engine.apply_chat_template([{"role": "user", "content": q}]) for q in QUESTIONS]
    params = SamplingParams(max_tokens=args.max_tokens, temperature=0)
    for mode in args.modes:  # warm-up: first-call kernel setup, the scheduler's one-time probes
        engine.configure_batching(**MODES[mode])
        run_concurrent(engine, prompts[:2], SamplingParams(max_tokens=2, temperature=0))

    rows = []
    for n in args.n:
        batch = [prompts[i % len(prompts)] for i in range(n)]
        reference = None
        for mode in args.modes:
            engine.configure_batching(**MODES[mode])
            run_concurrent(engine, batch[:1], SamplingParams(max_tokens=1, temperature=0))  # the scheduler's setup
            load_before = os.getloadavg()[0]
            result = run_concurrent(engine, batch, params)
            texts = result.pop("texts")
            reference = reference or texts
            same = sum(a == b for a, b in zip(texts, reference, strict=True))
            result.update(mode=mode, n=n, same_text_as_first_mode=same)
            result["load_avg_1m"] = round((load_before + os.getloadavg()[0]) / 2, 2)
            rows.append(result)
            print(format_row(result), flush=True)
    engine.configure_batching()

    report = {
        "benchmark": "engine_batching",
        "provenance": started,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "model": engine.info()["gguf_file"],
        "device": str(engine.device),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "max_tokens": args.max_tokens,
        "load_avg_1m_start": round(load_start, 2),
        "note": "one run; timings are wall-clock on whatever else the machine is doing (see load_avg_1m)",
        "results": rows,
    }
    print()
    print(table(rows))
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwrote {args.json_out}")


HEADER = (
    f"{'mode':<10}{'N':>4}{'tokens':>8}{'wall s':>9}{'tok/s':>9}{'lat p50':>9}{'lat p95':>9}"
    f"{'1st p50':>9}{'1st p95':>9}{'batch':>7}{'same':>6}{'load':>6}"
)


def format_row(r: dict) -> str:
    return (
        f"{r['mode']:<10}{r['n']:>4}{r['completion_tokens']:>8}{r['wall_s']:>9.2f}{r['tokens_per_s']:>9.2f}"
        f"{r['latency_p50_s']:>9.2f}{r['latency_p95_s']:>9.2f}{r['first_chunk_p50_s']:>9.2f}"
        f"{r['first_chunk_p95_s']:>9.2f}{r['mean_batch']:>7.2f}{r['same_text_as_first_mode']:>6}{r['load_avg_1m']:>6.1f}"
    )


def table(rows: list[dict]) -> str:
    return "\n".join([HEADER, *(format_row(r) for r in rows)])


if __name__ == "__main__":
    main()
