"""How long the embedded model takes to load: from the GGUF file (transformers' conversion) vs from the converted
copy konsilium keeps (`engines/gguf_cache.py`).

Each load runs in a fresh Python process (what `konsilium serve` or `ask` pays at start), with its own temporary
cache folder for the conversion runs, so neither side profits from the other.

    python benchmarks/model_start.py            # 3 loads each way, ~3 min on 2 cores
    python benchmarks/model_start.py --reps 5

Prints a table and writes benchmarks/results/model_start.json (medians, with provenance).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.provenance import provenance  # noqa: E402

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "model_start.json"
LOAD = """
import json, time
started = time.perf_counter()
from konsilium.engines import load_embedded_default
engine = load_embedded_default(gguf_cache={cache})
print(json.dumps({{"seconds": time.perf_counter() - started, "copy": str(engine.converted_copy)}}))
"""


def load_once(cache_dir: str, use_cache: bool) -> dict:
    env = {**os.environ, "KONSILIUM_CACHE": cache_dir, "HF_HUB_OFFLINE": "1"}
    code = LOAD.format(cache=use_cache)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="konsilium-bench-cache-") as cache:
        converting = [load_once(cache, use_cache=False)["seconds"] for _ in range(options.reps)]
        first = load_once(cache, use_cache=True)  # converts and keeps the copy
        from_copy = [load_once(cache, use_cache=True)["seconds"] for _ in range(options.reps)]
        copy_bytes = sum(f.stat().st_size for f in Path(first["copy"]).iterdir())
    rows = {
        "from_gguf_s_p50": round(statistics.median(converting), 2),
        "first_start_with_copy_s": round(first["seconds"], 2),
        "from_copy_s_p50": round(statistics.median(from_copy), 2),
        "speedup": round(statistics.median(converting) / statistics.median(from_copy), 1),
        "copy_mb": round(copy_bytes / 1e6),
        "reps": options.reps,
    }
    print(f"{'load':<34}{'seconds':>10}")
    print(f"{'from the GGUF file (p50)':<34}{rows['from_gguf_s_p50']:>10.2f}")
    print(f"{'first start, writing the copy':<34}{rows['first_start_with_copy_s']:>10.2f}")
    print(f"{'from the converted copy (p50)':<34}{rows['from_copy_s_p50']:>10.2f}")
    print(f"speedup {rows['speedup']}x, copy {rows['copy_mb']} MB")
    facts = {"provenance": provenance(), **rows}
    options.json.parent.mkdir(parents=True, exist_ok=True)
    options.json.write_text(json.dumps(facts, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {options.json}")


if __name__ == "__main__":
    main()
