"""Server load: N concurrent `openai` clients against konsilium on the embedded model, direct and via a gateway.

Three servers run in their own processes (as `konsilium serve` would: the clients' own Python work must not be
charged to the server's GIL), each a uvicorn on a free loopback port:

* **direct**: `create_app(load_embedded_default())` -- SmolLM2-135M GGUF on CPU, retrieval off, no conversation log;
* **gateway**: `create_app(OpenAIUpstreamEngine(direct))` -- a second konsilium relaying to the first;
* **fake**: a tiny FastAPI app that answers chat completions instantly (fixed JSON or SSE), and two gateways in
  front of it, one without and one with a `ConversationLog` (SQLite, WAL, fsync on every commit).

Sections:

1. **Load**: for each N in `--clients`, N threads, each with its own sync `openai.OpenAI` (max_retries=0), send
   requests back to back: streaming chat completions, greedy, `max_tokens` small, short prompts varied per client,
   `stream_options={"include_usage": True}`. Requests/s, completion tokens/s, p50/p95 time to first token (first
   non-empty content delta) and total latency, errors, and fairness between clients. Direct, then via the gateway.
2. **Gateway overhead on the model**: max_tokens=1 greedy requests, sequential, `--overhead-reps` pairs; each pair
   sends the same prompt direct and via the gateway (order alternating). Difference of medians and the median of
   the paired differences, JSON and SSE.
3. **Gateway overhead alone**: the same against the fake upstream (no model time at all): fake direct vs. gateway
   vs. gateway with the conversation log, so the gateway's own cost (HTTP, pydantic, relay) and the log's fsync
   are isolated. Plus `ConversationLog.record()` timed in-process, and the fake/gateway under the same N clients.

    python benchmarks/server_load.py --quick                       # smoke test, ~1 min
    python benchmarks/server_load.py                               # clients 1 8 32 64, 4 requests each
    python benchmarks/server_load.py --clients 1 8 --requests 8 --max-tokens 32 --skip-gateway

Retrieval is off throughout (no `Knowledge`): these numbers are the serving path only.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import multiprocessing
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from fastapi import Request

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.provenance import provenance  # noqa: E402

MODEL_ID = "konsilium"
DEFAULT_JSON = ROOT / "benchmarks" / "results" / "server_load.json"
FAKE_TOKENS = 64  # the fake upstream answers min(max_tokens, this) one-word tokens
UVICORN = {"log_level": "warning", "access_log": False, "lifespan": "off"}  # `konsilium serve` logs at info

TOPICS = [
    "the moon",
    "rivers",
    "bread",
    "chess",
    "owls",
    "volcanoes",
    "green tea",
    "bicycles",
    "libraries",
    "winter",
    "bees",
    "lighthouses",
    "maps",
    "clocks",
    "the ocean",
    "gardens",
    "trains",
    "music",
    "mountains",
    "paper",
    "salt",
    "bridges",
    "cats",
    "rain",
]
TEMPLATES = [
    "Name one fact about {}.",
    "Describe {} in one sentence.",
    "Why do people like {}?",
    "Give a short tip about {}.",
    "What is the best thing about {}?",
]


def messages_for(client: int, request: int) -> list[dict]:
    k = client * 1009 + request * 31
    text = TEMPLATES[k % len(TEMPLATES)].format(TOPICS[(client * 7 + request) % len(TOPICS)])
    return [{"role": "user", "content": text}]


# ----------------------------------------------------------------------------------------------------------
# Servers (child processes)
# ----------------------------------------------------------------------------------------------------------
def fake_upstream_app():
    """An OpenAI-compatible chat server that does no work: fixed answers, built once, returned at once."""
    from fastapi import FastAPI
    from fastapi.responses import Response, StreamingResponse

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    models = json.dumps({"object": "list", "data": [{"id": MODEL_ID, "object": "model", "owned_by": "fake"}]})

    def body(n: int) -> str:
        return json.dumps(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": 0,
                "model": MODEL_ID,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": " word" * n},
                        "finish_reason": "length",
                    }
                ],
                "usage": {"prompt_tokens": 20, "completion_tokens": n, "total_tokens": 20 + n},
            }
        )

    def events(n: int, include_usage: bool) -> list[bytes]:
        def chunk(delta: dict, finish=None, usage=None, choices=True) -> bytes:
            event = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": MODEL_ID}
            event["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}] if choices else []
            if usage:
                event["usage"] = usage
            return f"data: {json.dumps(event)}\n\n".encode()

        out = [chunk({"role": "assistant", "content": ""})]
        out += [chunk({"content": " word"}) for _ in range(n - 1)]
        out.append(chunk({"content": " word"}, "length"))
        if include_usage:
            usage = {"prompt_tokens": 20, "completion_tokens": n, "total_tokens": 20 + n}
            out.append(chunk({}, usage=usage, choices=False))
        out.append(b"data: [DONE]\n\n")
        return out

    bodies = {n: body(n) for n in range(1, FAKE_TOKENS + 1)}
    streams = {(n, u): events(n, u) for n in range(1, FAKE_TOKENS + 1) for u in (False, True)}

    @app.get("/v1/models")
    async def list_models():
        return Response(models, media_type="application/json")

    @app.post("/v1/chat/completions")
    async def chat(request: Request):  # Request is imported at module level: FastAPI resolves it there
        req = await request.json()
        n = max(1, min(int(req.get("max_completion_tokens") or req.get("max_tokens") or 16), FAKE_TOKENS))
        if not req.get("stream"):
            return Response(bodies[n], media_type="application/json")
        usage = bool((req.get("stream_options") or {}).get("include_usage"))

        async def send():
            for event in streams[(n, usage)]:
                yield event

        return StreamingResponse(send(), media_type="text/event-stream")

    return app


def _serve(kind: str, options: dict, queue) -> None:
    """Child process: build one app, serve it on a free port, report the URL (and facts), serve until terminated."""
    import uvicorn

    facts: dict = {"kind": kind, "pid": os.getpid()}
    if kind == "fake":
        app = fake_upstream_app()
    else:
        from konsilium.config import ServerSection
        from konsilium.server.app import create_app
        from konsilium.server.settings import ServerSettings

        settings = ServerSettings(ServerSection(model_id=MODEL_ID, retrieval=False))
        conversation_log = None
        if kind == "direct":
            import torch

            from konsilium.engines import load_embedded_default

            if options.get("torch_threads"):
                torch.set_num_threads(options["torch_threads"])
            started = time.perf_counter()
            engine = load_embedded_default()
            facts.update(
                konsilium_source=str(Path(sys.modules["konsilium"].__file__).parent),
                load_s=round(time.perf_counter() - started, 2),
                engine_class=f"{type(engine).__module__}.{type(engine).__qualname__}",
                engine_info={k: v for k, v in engine.info().items() if k != "path"},
                has_max_batch_size=hasattr(engine, "max_batch_size"),
                max_batch_size=getattr(engine, "max_batch_size", None),
                # the continuous-batching engine keeps it on its scheduler
                scheduler_max_batch_size=getattr(getattr(engine, "_scheduler", None), "max_batch_size", None),
                torch_threads=torch.get_num_threads(),
                torch=torch.__version__,
            )
        else:  # gateway
            from konsilium.engines.openai_upstream import OpenAIUpstreamEngine

            engine = OpenAIUpstreamEngine(options["upstream"], MODEL_ID, timeout_s=options["timeout"])
            if options.get("log"):
                from konsilium.memory.log import ConversationLog

                conversation_log = ConversationLog(Path(options["log"]))
            facts.update(upstream=options["upstream"], conversation_log=options.get("log"))
        app = create_app(engine, model_id=MODEL_ID, conversation_log=conversation_log, settings=settings)
    # uvicorn binds the port itself, as `konsilium serve` does. (Handing it a socket made with socket.socket()
    # would cost TCP_NODELAY: asyncio sets it only on sockets whose proto is IPPROTO_TCP, and without it a JSON
    # response's body waits ~40 ms for a delayed ACK about a third of the time.)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, **UVICORN))

    def report_port() -> None:
        while not server.started:
            time.sleep(0.02)
        facts["url"] = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}/v1"
        queue.put(facts)

    threading.Thread(target=report_port, daemon=True).start()
    server.run()


@contextmanager
def server_process(kind: str, options: dict | None = None, start_timeout: float = 300):
    """Yield the facts (with `url`) of a server child process; terminate it afterwards."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_serve, args=(kind, options or {}, queue), daemon=True, name=f"bench-{kind}")
    proc.start()
    try:
        deadline = time.monotonic() + start_timeout
        facts = None
        while facts is None:
            try:
                facts = queue.get(timeout=1)
            except Exception:  # noqa: BLE001 -- queue.Empty
                if not proc.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"the {kind} server did not start (exit code {proc.exitcode})") from None
        while True:  # the port is bound before uvicorn listens: wait until it answers
            try:
                with urllib.request.urlopen(facts["url"] + "/models", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                if not proc.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"the {kind} server does not answer (exit code {proc.exitcode})") from None
                time.sleep(0.1)
        yield facts
    finally:
        queue.close()
        queue.join_thread()
        proc.terminate()
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join(5)


# ----------------------------------------------------------------------------------------------------------
# Clients
# ----------------------------------------------------------------------------------------------------------
@dataclass
class Sample:
    client: int
    start: float  # seconds since the run's start
    latency_ms: float
    ttft_ms: float | None  # streaming only: first chunk with non-empty content
    prompt_tokens: int
    completion_tokens: int
    error: str | None


def make_client(base_url: str, timeout: float):
    import openai

    client = openai.OpenAI(base_url=base_url, api_key="EMPTY", max_retries=0, timeout=timeout)
    client.organization = client.project = None
    return client


def one_request(
    client, messages: list[dict], max_tokens: int, stream: bool, who: int = 0, origin: float = 0.0
) -> Sample:
    ttft = None
    prompt_tokens = completion_tokens = 0
    error = None
    started = time.perf_counter()
    try:
        kwargs = {"model": MODEL_ID, "messages": messages, "max_tokens": max_tokens, "temperature": 0}
        if stream:
            with client.chat.completions.create(
                stream=True, stream_options={"include_usage": True}, **kwargs
            ) as events:
                usage = None
                for event in events:
                    usage = event.usage or usage
                    if ttft is None and any(choice.delta.content for choice in event.choices):
                        ttft = (time.perf_counter() - started) * 1000
            if usage is None:
                error = "no usage in the stream"
            else:
                prompt_tokens, completion_tokens = usage.prompt_tokens, usage.completion_tokens
        else:
            response = client.chat.completions.create(**kwargs)
            prompt_tokens, completion_tokens = response.usage.prompt_tokens, response.usage.completion_tokens
    except Exception as exc:  # noqa: BLE001 -- every failure is counted, none stops the run
        error = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:160]
    finished = time.perf_counter()
    return Sample(who, started - origin, (finished - started) * 1000, ttft, prompt_tokens, completion_tokens, error)


def pct(values, q: float) -> float | None:
    values = [v for v in values if v is not None]
    return round(float(np.percentile(values, q)), 2) if values else None


def run_load(base_url: str, n_clients: int, per_client: int, max_tokens: int, timeout: float, row_timeout: float):
    """N threads, one client each, `per_client` streaming requests back to back; all start at one barrier."""
    origin = [0.0]  # set by the barrier's action, before any thread is released
    barrier = threading.Barrier(n_clients + 1, action=lambda: origin.__setitem__(0, time.perf_counter()))
    stop = threading.Event()  # set when the row runs past row_timeout: no new requests
    samples: list[list[Sample]] = [[] for _ in range(n_clients)]

    def worker(i: int) -> None:
        client = make_client(base_url, timeout)
        try:
            barrier.wait()
            for r in range(per_client):
                if stop.is_set():
                    break
                samples[i].append(one_request(client, messages_for(i, r), max_tokens, True, i, origin[0]))
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n_clients)]
    for thread in threads:
        thread.start()
    load_before = os.getloadavg()
    barrier.wait()
    started = origin[0]
    deadline = started + row_timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.perf_counter()))
    aborted = any(thread.is_alive() for thread in threads)
    if aborted:
        stop.set()
        for thread in threads:
            thread.join(timeout + 30)
    wall = time.perf_counter() - started
    flat = [s for per in samples for s in per]
    ok = [s for s in flat if s.error is None]
    errors = Counter(s.error for s in flat if s.error)
    per_client_mean = [statistics.fmean(s.latency_ms for s in per) for per in samples if per]
    per_client_done = [max(s.start + s.latency_ms / 1000 for s in per) for per in samples if per]
    tokens = sum(s.completion_tokens for s in ok)
    return {
        "clients": n_clients,
        "requests_per_client": per_client,
        "requests": len(flat),
        "ok": len(ok),
        "errors": len(flat) - len(ok),
        "error_kinds": dict(errors.most_common(5)),
        "aborted_after_row_timeout": aborted,
        "wall_s": round(wall, 2),
        "req_per_s": round(len(ok) / wall, 3),
        "completion_tokens": tokens,
        "completion_tokens_per_s": round(tokens / wall, 1),
        "mean_completion_tokens": round(tokens / len(ok), 2) if ok else None,
        "mean_prompt_tokens": round(statistics.fmean(s.prompt_tokens for s in ok), 1) if ok else None,
        "ttft_ms": {"p50": pct([s.ttft_ms for s in ok], 50), "p95": pct([s.ttft_ms for s in ok], 95)},
        "latency_ms": {
            "p50": pct([s.latency_ms for s in ok], 50),
            "p95": pct([s.latency_ms for s in ok], 95),
            "max": pct([s.latency_ms for s in ok], 100),
        },
        "fairness": {
            "client_mean_latency_ms_min": round(min(per_client_mean), 1) if per_client_mean else None,
            "client_mean_latency_ms_max": round(max(per_client_mean), 1) if per_client_mean else None,
            "client_mean_latency_max_over_min": round(max(per_client_mean) / min(per_client_mean), 2)
            if per_client_mean
            else None,
            "client_done_s_min": round(min(per_client_done), 2) if per_client_done else None,
            "client_done_s_max": round(max(per_client_done), 2) if per_client_done else None,
        },
        "loadavg_before": [round(x, 2) for x in load_before],
    }


def wait_healthy(base_url: str, timeout: float, limit_s: float = 600) -> float | None:
    """Seconds until a max_tokens=1 streaming request succeeds again (None: not within limit_s)."""
    started = time.perf_counter()
    client = make_client(base_url, timeout)
    try:
        while time.perf_counter() - started < limit_s:
            if one_request(client, messages_for(30_000, 0), 1, True).error is None:
                return round(time.perf_counter() - started, 1)
            time.sleep(2)
    finally:
        client.close()
    return None


def run_paired(targets: dict[str, str], reps: int, max_tokens: int, stream: bool, timeout: float, warmup: int = 3):
    """Sequential requests; rep i sends the same prompt to every target, in an order rotated by i."""
    names = list(targets)
    clients = {name: make_client(url, timeout) for name, url in targets.items()}
    try:
        for w in range(warmup):
            for name in names:
                one_request(clients[name], messages_for(10_000 + w, 0), max_tokens, stream)
        samples: dict[str, list[Sample]] = {name: [] for name in names}
        for i in range(reps):
            shift = i % len(names)
            for name in names[shift:] + names[:shift]:
                samples[name].append(one_request(clients[name], messages_for(i, i), max_tokens, stream))
    finally:
        for client in clients.values():
            client.close()
    out: dict = {"mode": "sse" if stream else "json", "max_tokens": max_tokens, "reps": reps, "targets": {}}
    for name in names:
        ok = [s for s in samples[name] if s.error is None]
        out["targets"][name] = {
            "errors": len(samples[name]) - len(ok),
            "error_kinds": dict(Counter(s.error for s in samples[name] if s.error).most_common(3)),
            "latency_ms": {"p50": pct([s.latency_ms for s in ok], 50), "p95": pct([s.latency_ms for s in ok], 95)},
            "ttft_ms": {"p50": pct([s.ttft_ms for s in ok], 50)} if stream else None,
            "completion_tokens_p50": pct([s.completion_tokens for s in ok], 50),
            "latencies_ms": [round(s.latency_ms, 3) for s in samples[name]],
        }
    return out, samples


def paired_diff(samples: dict[str, list[Sample]], name: str, base: str) -> dict:
    pairs = [(a, b) for a, b in zip(samples[name], samples[base], strict=True) if a.error is None and b.error is None]
    if not pairs:
        return {"pairs": 0}
    diffs = [a.latency_ms - b.latency_ms for a, b in pairs]
    return {
        "vs": base,
        "pairs": len(pairs),
        "diff_of_medians_ms": round(
            statistics.median(a.latency_ms for a, _ in pairs) - statistics.median(b.latency_ms for _, b in pairs), 3
        ),
        "paired_diff_p50_ms": round(statistics.median(diffs), 3),
        "paired_diff_p25_ms": pct(diffs, 25),
        "paired_diff_p75_ms": pct(diffs, 75),
    }


def log_record_microbench(log_dir: Path, reps: int) -> dict:
    """ConversationLog.record() in-process: one SQLite INSERT + COMMIT (WAL, synchronous=FULL: an fsync)."""
    from konsilium.memory.log import ConversationLog, Exchange

    log = ConversationLog(log_dir / "micro.sqlite3")
    times = []
    try:
        for i in range(reps):
            exchange = Exchange(
                id=f"chatcmpl-micro-{i}",
                time=time.time(),
                endpoint="chat.completions",
                model=MODEL_ID,
                role=None,
                messages=messages_for(i, i),
                response=" word" * 16,
                finish_reason="length",
                sources=[],
                prompt_tokens=20,
                completion_tokens=16,
                timings={"retrieval_ms": 0.0, "total_ms": 100.0},
            )
            started = time.perf_counter()
            log.record(exchange)
            times.append((time.perf_counter() - started) * 1000)
    finally:
        log.close()
    return {"reps": reps, "record_ms": {"p50": pct(times, 50), "p95": pct(times, 95), "max": pct(times, 100)}}


# ----------------------------------------------------------------------------------------------------------
# Facts, report
# ----------------------------------------------------------------------------------------------------------
def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _fs_type(path: Path) -> str | None:
    """The filesystem type /proc/mounts gives for the mount holding `path` (fsync on tmpfs is free)."""
    try:
        best = ("", None)
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            mount = parts[1]
            if str(path.resolve()).startswith(mount.rstrip("/") + "/") or str(path.resolve()) == mount:
                if len(mount) > len(best[0]):
                    best = (mount, parts[2])
        return best[1]
    except OSError:
        return None


def machine_facts() -> dict:
    cpu = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            name: _version(name)
            for name in ("torch", "transformers", "openai", "fastapi", "starlette", "uvicorn", "anyio", "pydantic")
        },
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }


def source_facts() -> dict:
    """Which konsilium is measured: the checkout's commit and whether konsilium/ has uncommitted changes."""
    facts: dict = {"root": str(ROOT), "git_head": None, "konsilium_dirty": None}
    try:
        run = {"cwd": ROOT, "capture_output": True, "text": True, "timeout": 10, "check": True}
        facts["git_head"] = subprocess.run(["git", "rev-parse", "HEAD"], **run).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--", "konsilium"], **run).stdout
        facts["konsilium_dirty"] = bool(status.strip())
    except (OSError, subprocess.SubprocessError):
        pass  # not a git checkout (e.g. a `git archive` snapshot): say so with --label
    return facts


def _ms(value) -> str:
    return "-" if value is None else f"{value:,.1f}"


def print_report(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=200)
    s = report["settings"]
    engine = report.get("engine", {})
    console.print(
        f"[bold]konsilium server load[/bold] -- embedded {engine.get('engine_info', {}).get('gguf_file')} on CPU "
        f"({report['machine']['cpu_count']} cores, torch {engine.get('torch')}, "
        f"{engine.get('torch_threads')} torch threads); "
        f"engine max_batch_size: {engine.get('max_batch_size') if engine.get('has_max_batch_size') else 'absent'} "
        f"(scheduler: {engine.get('scheduler_max_batch_size')}); "
        f"retrieval OFF; greedy; streaming; max_tokens={s['max_tokens']}; shared, noisy machine: quote medians"
    )
    t = Table(title="Load: N concurrent openai clients, streaming chat completions")
    for col in [
        "target",
        "clients",
        "req/client",
        "ok/err",
        "wall s",
        "req/s",
        "compl tok/s",
        "TTFT p50",
        "TTFT p95",
        "lat p50",
        "lat p95",
        "lat max",
        "client mean lat min..max",
    ]:
        t.add_column(col, justify="right")
    for target, rows in report["load"].items():
        for r in rows:
            f = r["fairness"]
            t.add_row(
                target,
                str(r["clients"]),
                str(r["requests_per_client"]),
                f"{r['ok']}/{r['errors']}" + (" (aborted)" if r["aborted_after_row_timeout"] else ""),
                f"{r['wall_s']:.1f}",
                f"{r['req_per_s']:.2f}",
                f"{r['completion_tokens_per_s']:.1f}",
                _ms(r["ttft_ms"]["p50"]),
                _ms(r["ttft_ms"]["p95"]),
                _ms(r["latency_ms"]["p50"]),
                _ms(r["latency_ms"]["p95"]),
                _ms(r["latency_ms"]["max"]),
                f"{_ms(f['client_mean_latency_ms_min'])}..{_ms(f['client_mean_latency_ms_max'])}",
            )
    console.print(t)
    console.print("latencies in ms; TTFT = first non-empty content delta; errors must be 0")
    for r in (row for rows in report["load"].values() for row in rows):
        if r["error_kinds"]:
            console.print(f"  errors at {r['clients']} clients: {r['error_kinds']}")

    if report["overhead"]:
        t = Table(title="Gateway overhead: sequential paired requests (same prompt to each target, order rotated)")
        cols = ["section", "mode", "max_tok", "target", "n", "err", "p50 ms", "p95 ms", "vs", "Δ med", "paired Δ p50"]
        for col in cols:
            t.add_column(col, justify="right")
        for section, runs in report["overhead"].items():
            for run in runs:
                for name, target in run["targets"].items():
                    d = run["diffs"].get(name, {})
                    t.add_row(
                        section,
                        run["mode"],
                        str(run["max_tokens"]),
                        name,
                        str(run["reps"]),
                        str(target["errors"]),
                        _ms(target["latency_ms"]["p50"]),
                        _ms(target["latency_ms"]["p95"]),
                        d.get("vs", ""),
                        _ms(d.get("diff_of_medians_ms")) if d else "",
                        f"{d['paired_diff_p50_ms']:.2f}" if d.get("paired_diff_p50_ms") is not None else "",
                    )
        console.print(t)
    for section, runs in report["overhead"].items():
        for run in runs:
            label = f"{section} {run['mode']} max_tokens={run['max_tokens']}"
            extra = {"log cost (gateway+log - gateway)": run["log_cost"]} if "log_cost" in run else {}
            for name, d in {**{f"{k} - {v.get('vs')}": v for k, v in run["diffs"].items()}, **extra}.items():
                if d.get("pairs"):
                    console.print(
                        f"  {label}: {name}: paired p50 {d['paired_diff_p50_ms']:+.2f} ms "
                        f"(IQR {d['paired_diff_p25_ms']:+.2f}..{d['paired_diff_p75_ms']:+.2f}), "
                        f"diff of medians {d['diff_of_medians_ms']:+.2f} ms, {d['pairs']} pairs"
                    )
    if report.get("log_record"):
        r = report["log_record"]
        console.print(
            f"ConversationLog.record() in-process ({r['reps']} commits, fs {report['settings']['log_fs']}): "
            f"p50 {r['record_ms']['p50']:.2f} ms, p95 {r['record_ms']['p95']:.2f} ms"
        )
    console.print(f"JSON: {report['json_path']}")


# ----------------------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32, 64], help="concurrent clients per row")
    p.add_argument("--requests", type=int, default=4, help="requests per client, back to back")
    p.add_argument(
        "--min-requests", type=int, default=16, help="raise requests/client so each row has at least this many"
    )
    p.add_argument(
        "--max-row-requests", type=int, default=0, help="cap a row's total (lowers requests/client at large N; 0: none)"
    )
    p.add_argument("--max-tokens", type=int, default=16)
    p.add_argument(
        "--torch-threads", type=int, default=0, help="torch.set_num_threads in the model server (0: torch's default)"
    )
    p.add_argument("--timeout", type=float, default=180, help="per-request client timeout, s")
    p.add_argument("--row-timeout", type=float, default=420, help="no new requests in a load row after this, s")
    p.add_argument("--overhead-reps", type=int, default=50, help="paired reps against the model (max_tokens=1)")
    p.add_argument("--fake-reps", type=int, default=200, help="paired reps against the fake upstream")
    p.add_argument("--log-reps", type=int, default=200, help="in-process ConversationLog.record() reps")
    p.add_argument("--log-dir", type=Path, default=None, help="where the benchmark's conversation logs go (temp)")
    p.add_argument("--skip-gateway", action="store_true", help="only the direct server under load")
    p.add_argument("--skip-fake", action="store_true", help="no fake-upstream sections")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON, help="results file")
    p.add_argument("--quick", action="store_true", help="smoke test: 1 and 4 clients, few reps")
    p.add_argument("--label", default=None, help="free text kept in the JSON (e.g. which snapshot was measured)")
    args = p.parse_args(argv)
    if args.quick:
        args.clients, args.requests, args.min_requests, args.max_tokens = [1, 4], 2, 4, 8
        args.overhead_reps, args.fake_reps, args.log_reps = 10, 30, 30
    return args


def per_client_requests(args, n: int) -> int:
    per = max(args.requests, math.ceil(args.min_requests / n))
    if args.max_row_requests:
        per = max(1, min(per, args.max_row_requests // n))
    return per


def _log(msg: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    log_dir = Path(args.log_dir or tempfile.mkdtemp(prefix="konsilium-server-load-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    try:
        return run(args, log_dir)
    finally:
        if args.log_dir is None:
            shutil.rmtree(log_dir, ignore_errors=True)


def run(args: argparse.Namespace, log_dir: Path) -> int:
    report: dict = {
        "benchmark": "server_load",
        "provenance": provenance(),
        "argv": sys.argv[1:],
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_facts(),
        "source": {**source_facts(), "label": args.label},
        "settings": {
            "clients": args.clients,
            "requests_per_client": {str(n): per_client_requests(args, n) for n in args.clients},
            "max_tokens": args.max_tokens,
            "torch_threads_requested": args.torch_threads or "default",
            "temperature": 0,
            "stream": True,
            "stream_options": {"include_usage": True},
            "retrieval": False,
            "conversation_log_in_load_rows": False,
            "client": "openai.OpenAI per thread, max_retries=0",
            "timeout_s": args.timeout,
            "row_timeout_s": args.row_timeout,
            "servers": "separate processes; uvicorn " + json.dumps(UVICORN),
            "anyio_threadpool_tokens": 40,
            "log_dir": str(log_dir),
            "log_fs": _fs_type(log_dir),
            "overhead_reps": args.overhead_reps,
            "fake_reps": args.fake_reps,
            "fake_tokens_cap": FAKE_TOKENS,
        },
        "load": {},
        "overhead": {},
        "json_path": str(args.json),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        report["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")

    started = time.perf_counter()
    with ExitStack() as stack:
        _log("starting the direct server (loading the embedded model)")
        direct = stack.enter_context(server_process("direct", {"torch_threads": args.torch_threads}))
        report["engine"] = {k: v for k, v in direct.items() if k not in ("url", "pid")}
        _log(
            f"direct at {direct['url']}; {direct['engine_class']}; max_batch_size "
            f"{direct['max_batch_size'] if direct['has_max_batch_size'] else 'absent'}"
        )
        targets = {"direct": direct["url"]}
        if not args.skip_gateway:
            gateway = stack.enter_context(server_process("gateway", {"upstream": direct["url"], "timeout": 600}))
            targets["gateway"] = gateway["url"]
        for url in targets.values():  # warm up: first forward passes, connections, the gateway's model listing
            client = make_client(url, args.timeout)
            for w in range(3):
                one_request(client, messages_for(20_000 + w, 0), args.max_tokens, True)
            client.close()

        report["load"] = {name: [] for name in targets}
        for n in args.clients:  # N outer: direct and gateway rows of one N run close together in time
            per = per_client_requests(args, n)
            for name, url in targets.items():
                _log(f"load: {name}, {n} clients x {per} requests")
                row = run_load(url, n, per, args.max_tokens, args.timeout, args.row_timeout)
                _log(
                    f"  {row['ok']} ok, {row['errors']} errors, {row['wall_s']} s, {row['req_per_s']} req/s, "
                    f"{row['completion_tokens_per_s']} tok/s, lat p50 {row['latency_ms']['p50']} ms"
                )
                if row["errors"]:  # e.g. a stalled server: wait until it answers again before the next row
                    row["recovery_s"] = wait_healthy(direct["url"], args.timeout)
                    _log(f"  the direct server answers again after {row['recovery_s']} s")
                report["load"][name].append(row)
                save()

        if "gateway" in targets:
            runs = []
            for stream in (False, True):
                _log(f"overhead on the model: max_tokens=1, {'sse' if stream else 'json'}, {args.overhead_reps} pairs")
                run, samples = run_paired(targets, args.overhead_reps, 1, stream, args.timeout)
                run["diffs"] = {"gateway": paired_diff(samples, "gateway", "direct")}
                runs.append(run)
            report["overhead"]["model"] = runs
            save()

        if not args.skip_fake:
            _log("starting the fake upstream and two gateways in front of it (without / with the conversation log)")
            fake = stack.enter_context(server_process("fake"))
            gw_fake = stack.enter_context(server_process("gateway", {"upstream": fake["url"], "timeout": 600}))
            gw_log = stack.enter_context(
                server_process(
                    "gateway",
                    {"upstream": fake["url"], "timeout": 600, "log": str(log_dir / "conversations.sqlite3")},
                )
            )
            fake_targets = {"fake": fake["url"], "gateway": gw_fake["url"], "gateway+log": gw_log["url"]}
            runs = []
            for stream, max_tokens in ((False, args.max_tokens), (True, 1), (True, args.max_tokens)):
                _log(f"overhead alone: {'sse' if stream else 'json'}, max_tokens={max_tokens}, {args.fake_reps} reps")
                run, samples = run_paired(fake_targets, args.fake_reps, max_tokens, stream, args.timeout, warmup=10)
                run["diffs"] = {
                    "gateway": paired_diff(samples, "gateway", "fake"),
                    "gateway+log": paired_diff(samples, "gateway+log", "fake"),
                }
                run["log_cost"] = paired_diff(samples, "gateway+log", "gateway")
                runs.append(run)
            report["overhead"]["fake_upstream"] = runs
            _log(f"ConversationLog.record() x {args.log_reps}")
            report["log_record"] = log_record_microbench(log_dir, args.log_reps)
            for name in ("fake", "gateway"):
                key = f"{name} (fake upstream)" if name == "gateway" else "fake upstream"
                report["load"][key] = []
                for n in args.clients:
                    per = per_client_requests(args, n)
                    _log(f"load: {key}, {n} clients x {per} requests")
                    row = run_load(fake_targets[name], n, per, args.max_tokens, args.timeout, args.row_timeout)
                    report["load"][key].append(row)
            save()
    report["total_s"] = round(time.perf_counter() - started, 1)
    save()
    print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
