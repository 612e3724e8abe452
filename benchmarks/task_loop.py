"""The task loop on the embedded model: does the council stay inside its bounds, and what does it do with them?

A few notes of the sample vault are indexed into a temporary home; the embedded SmolLM2-135M (CPU) runs each goal
of `GOALS` as a `konsilium task` (TaskRunner, pre-approved, so nothing waits; write_note lands in a temporary
inbox). Per task: its status, model calls, tool calls (valid ones and errors: an unknown tool, bad arguments),
notes read, wall time, and whether the report names a note as a [[wikilink]]. The small model cannot plan well;
what matters is that every task ends (done, within max_steps model calls) and no call escapes the tools.

    python benchmarks/task_loop.py                    # 3 goals, max 4 steps (~1-2 min on 2 cores)
    python benchmarks/task_loop.py --max-steps 2 --notes 3

Prints a table and writes benchmarks/results/task_loop.json (with provenance).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.provenance import provenance  # noqa: E402

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "task_loop.json"
SAMPLE = ROOT.parent / "shared" / "sample-vault" / "0_chatgpt" / "AI" / "2025-06-29 - 1LTM_4"
GOALS = [
    "What do my notes say about my graphics card?",
    "Find what I wrote about n8n and summarize it.",
    "Which notes talk about the context of a conversation?",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-steps", type=int, default=4)
    parser.add_argument("--notes", type=int, default=6, help="notes of the sample vault indexed")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()

    import yaml

    from konsilium.agents import report, task_runner
    from konsilium.config import open_home
    from konsilium.index.indexer import Indexer
    from konsilium.pipeline.assemble import assemble, load_configured_engine

    with tempfile.TemporaryDirectory() as tmp:
        vault, root = Path(tmp) / "vault", Path(tmp) / "home"
        (vault / "notes").mkdir(parents=True)
        for note in sorted(SAMPLE.glob("*.md"))[: args.notes]:
            shutil.copy2(note, vault / "notes" / note.name)
        root.mkdir()
        config = {"vault": {"paths": [str(vault)]}, "embedder": {"model": "default"}, "memory": {"enabled": False}}
        (root / "konsilium.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        home = open_home(root)
        Indexer(home, roots=[vault]).run([vault])
        started = time.perf_counter()
        engine = load_configured_engine(home)
        load_s = time.perf_counter() - started
        runner = task_runner(assemble(home, engine, warm_adapters=False), home)
        rows = []
        for goal in GOALS:
            started = time.perf_counter()
            task = runner.create(goal, approve=True, max_steps=args.max_steps, client="benchmark")
            task = runner.run(task.id)
            tools = [s for s in task.steps if s["kind"] == "tool"]
            models = [s for s in task.steps if s["kind"] == "model"]
            text = report(task)
            rows.append(
                {
                    "goal": goal,
                    "status": task.status,
                    "model_calls": len(models),
                    "hit_step_limit": any(s.get("limit") for s in models),
                    "tool_calls": len(tools),
                    "tool_errors": sum(not s["ok"] for s in tools),
                    "tools": [s["tool"] for s in tools],
                    "errors": [s["result"][:120] for s in tools if not s["ok"]],
                    "notes_read": task.to_json()["notes"],
                    "report_links": "[[" in (task.result or ""),
                    "seconds": round(time.perf_counter() - started, 2),
                    "plan": task.plan,
                    "report": text[:600],
                }
            )
            print(
                f"{rows[-1]['status']:<10} calls={rows[-1]['model_calls']} tools={rows[-1]['tool_calls']} "
                f"errors={rows[-1]['tool_errors']} notes={len(rows[-1]['notes_read'])} "
                f"{rows[-1]['seconds']:>6.1f}s  {goal}",
                flush=True,
            )
    result = {
        "provenance": provenance(),
        "settings": {"max_steps": args.max_steps, "notes": args.notes, "model": "embedded (SmolLM2-135M, CPU)"},
        "engine_load_s": round(load_s, 2),
        "tasks": rows,
        "all_ended": all(r["status"] == "done" for r in rows),
        "within_bound": all(r["model_calls"] <= args.max_steps + 1 for r in rows),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"all ended: {result['all_ended']}; within the bound: {result['within_bound']}; wrote {args.json}")


if __name__ == "__main__":
    main()
