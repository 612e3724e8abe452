"""Prefill speed and first-token latency of grounded answers on the configured (embedded) engine.

A grounded answer's first token waits for the whole prompt to be read: the question plus the notes. This measures,
on the real engine (chat template and streaming as the server calls them), how long that takes for prompts of
growing length (real sample-vault text stands in for retrieved notes, so the tokenizer sees what it would), and
derives prefill tokens/s. It shows why a CPU engine gets a small notes budget (`server.notes_tokens`, 1,024 by default
there) and what the budget costs a GPU.

    python benchmarks/first_token.py                       # 256, 512, 1024, 2048, 3072 prompt tokens, 3 reps
    python benchmarks/first_token.py --tokens 512 1024 --reps 5 --torch-threads 1

Prints a table and writes benchmarks/results/first_token.json (medians, with provenance).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.provenance import provenance  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "sample-vault"
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "first_token.json"


def vault_text() -> str:
    notes = sorted(SAMPLE.rglob("*.md")) if SAMPLE.is_dir() else []
    text = "\n\n".join(note.read_text(encoding="utf-8", errors="replace") for note in notes[:40])
    return text or ("Заметка о видеокартах, контексте и квантовании моделей. " * 2000)


def prompt_of(engine, text: str, tokens: int) -> list[dict]:
    """Chat messages whose rendered prompt is about `tokens` long: a system message of note text and a question."""
    question = {"role": "user", "content": "Какая у меня видеокарта и сколько памяти нужно для контекста 32k?"}
    low, high = 0, len(text)
    while low < high:  # the longest prefix of the notes that fits
        middle = (low + high + 1) // 2
        if engine.count_chat_tokens([{"role": "system", "content": text[:middle]}, question]) <= tokens:
            low = middle
        else:
            high = middle - 1
    return [{"role": "system", "content": text[:low]}, question]


def first_token_s(engine, messages: list[dict]) -> tuple[float, int]:
    from konsilium.engines import SamplingParams

    started = time.perf_counter()
    stream = engine.stream_chat(messages, SamplingParams(max_tokens=2, temperature=0))
    try:
        chunk = next(stream)
        return time.perf_counter() - started, chunk.prompt_tokens
    finally:
        stream.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, nargs="+", default=[256, 512, 1024, 2048, 3072])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--torch-threads", type=int, default=0, help="0: torch's default")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    options = parser.parse_args()
    facts = {"provenance": provenance()}
    import torch

    if options.torch_threads:
        torch.set_num_threads(options.torch_threads)
    from konsilium.engines import load_embedded_default

    engine = load_embedded_default()
    engine.warm_up()
    text = vault_text()
    rows = []
    first_token_s(engine, prompt_of(engine, text, 64))  # the first forward pays for allocations
    for tokens in options.tokens:
        messages = prompt_of(engine, text, tokens)
        runs = [first_token_s(engine, messages) for _ in range(options.reps)]
        seconds = statistics.median(run[0] for run in runs)
        prompt_tokens = runs[0][1]
        rows.append(
            {
                "prompt_tokens": prompt_tokens,
                "first_token_s_p50": round(seconds, 3),
                "prefill_tokens_per_s": round(prompt_tokens / seconds, 1),
                "reps": options.reps,
            }
        )
        print(f"{prompt_tokens:>6} tokens  first token {seconds:7.2f} s  prefill {prompt_tokens / seconds:7.1f} tok/s")
    facts.update(engine=engine.info(), torch_threads=torch.get_num_threads(), rows=rows)
    options.json.parent.mkdir(parents=True, exist_ok=True)
    options.json.write_text(json.dumps(facts, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {options.json}")


if __name__ == "__main__":
    main()
