"""Structured output on the embedded model: how often the JSON is valid, and what constrained decoding costs.

For each schema of `SCHEMAS` (enums, nested objects, arrays, bounded numbers, optional fields, $ref/anyOf,
patterns and formats, a top-level array, an open object) the embedded SmolLM2-135M answers greedily under the
schema (response_format json_schema, strict), and the same prompt again without it for as many tokens: the
validity rate (parsed and validated with `jsonschema`), ms per token with and without the constraint, and the
mask's own time per token (llguidance's mask plus applying it to the row's logits). Then `TOOLS` with tool_choice
`required` and a named function: every call's arguments must validate against its tool's parameters. Last, four
requests decode together, once all free and once two of them constrained: the step time of the batch shows
whether constrained rows slow the others.

    python benchmarks/structured_output.py                 # 10 schemas, 2 reps, max 64 tokens (~3 min on 2 cores)
    python benchmarks/structured_output.py --reps 1 --max-tokens 48

Prints a table and writes benchmarks/results/structured_output.json (with provenance).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.provenance import provenance  # noqa: E402

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "structured_output.json"
SYSTEM = "Answer with JSON only."


def _object(properties: dict, required: list[str], closed: bool = True) -> dict:
    schema = {"type": "object", "properties": properties, "required": required}
    return {**schema, "additionalProperties": False} if closed else schema


POINT = _object({"x": {"type": "integer"}, "y": {"type": "integer"}}, ["x", "y"])
# name -> (schema, question): varied on purpose (see the module's docstring). Shared with the tests.
SCHEMAS: dict[str, tuple[dict, str]] = {
    "enum": (
        _object({"sentiment": {"enum": ["positive", "negative", "neutral"]}}, ["sentiment"]),
        "Classify the sentiment: I love this phone!",
    ),
    "nested": (
        _object(
            {"person": _object({"name": {"type": "string"}, "city": {"type": "string"}}, ["name", "city"])},
            ["person"],
        ),
        "Anna lives in Berlin.",
    ),
    "array": (
        _object({"tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3}}, ["tags"]),
        "Tag this: a marathon training plan for beginners",
    ),
    "bounded_numbers": (
        _object(
            {
                "rating": {"type": "integer", "minimum": 1, "maximum": 5},
                "score": {"type": "number", "minimum": 0, "maximum": 1},
            },
            ["rating", "score"],
        ),
        "Rate the movie Alien.",
    ),
    "optional_fields": (
        _object(
            {"title": {"type": "string"}, "note": {"type": "string"}, "done": {"type": "boolean"}}, ["title", "done"]
        ),
        "Make a todo: buy milk",
    ),
    "array_of_objects": (
        _object(
            {
                "items": {
                    "type": "array",
                    "maxItems": 3,
                    "items": _object(
                        {"name": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}}, ["name", "qty"]
                    ),
                }
            },
            ["items"],
        ),
        "Two apples and one bread.",
    ),
    "ref_and_nullable": (
        {
            "$defs": {"point": POINT},
            "type": "object",
            "properties": {
                "start": {"$ref": "#/$defs/point"},
                "end": {"anyOf": [{"$ref": "#/$defs/point"}, {"type": "null"}]},
            },
            "required": ["start", "end"],
            "additionalProperties": False,
        },
        "A line from (1,2) to (3,4).",
    ),
    "pattern_and_format": (
        _object(
            {
                "date": {"type": "string", "format": "date"},
                "code": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{2}$"},
            },
            ["date", "code"],
        ),
        "Flight ABC-12 on 2024-05-01.",
    ),
    "top_level_array": (
        {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 100}, "minItems": 2, "maxItems": 4},
        "List some small numbers.",
    ),
    "open_object": (
        _object(
            {"city": {"type": "string"}, "country": {"type": "string"}, "population": {"type": "integer"}},
            ["city", "country", "population"],
            closed=False,
        ),
        "Tell me about Paris.",
    ),
}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city now",
            "parameters": _object(
                {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
                ["city", "unit"],
                closed=False,
            ),
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "The time in a timezone",
            "parameters": _object({"timezone": {"type": "string"}}, ["timezone"], closed=False),
        },
    },
]
TOOL_CHOICES = {"required": "required", "named": {"type": "function", "function": {"name": "get_time"}}}
TOOL_QUESTION = "What's the weather in Paris?"


def response_format(name: str) -> dict:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": SCHEMAS[name][0], "strict": True}}


def messages_for(question: str) -> list[dict]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]


def valid(text: str, schema: dict) -> bool:
    import jsonschema

    try:
        jsonschema.validate(json.loads(text), schema)
    except (ValueError, jsonschema.ValidationError):
        return False
    return True


class MaskClock:
    """Time spent in TokenMask.apply (llguidance's mask and its application to the row), per call."""

    def __init__(self):
        from konsilium.structured import grammar

        self.grammar, self.calls, self.seconds = grammar, 0, 0.0
        self._apply = grammar.TokenMask.apply
        clock = self

        def timed(mask, logits, remaining=None):
            started = time.perf_counter()
            clock._apply(mask, logits, remaining)
            clock.seconds += time.perf_counter() - started
            clock.calls += 1

        grammar.TokenMask.apply = timed

    def reset(self) -> None:
        self.calls, self.seconds = 0, 0.0

    def per_call_us(self) -> float | None:
        return self.seconds / self.calls * 1e6 if self.calls else None


def timed_generate(engine, messages, params, tools=None):
    started = time.perf_counter()
    result = engine.generate_chat(messages, params, tools=tools) if tools else engine.generate_chat(messages, params)
    return result, time.perf_counter() - started


def schema_runs(engine, clock: MaskClock, reps: int, max_tokens: int) -> list[dict]:
    from konsilium.engines import SamplingParams
    from konsilium.structured.request import structured_request

    rows = []
    for name, (schema, question) in SCHEMAS.items():
        _, constraint = structured_request(response_format=response_format(name))
        messages = messages_for(question)
        constrained, free, mask_us, text, ok, finish, tokens = [], [], [], "", True, "", 0
        for _ in range(reps):  # interleaved: the machine's load falls on both alike
            clock.reset()
            result, seconds = timed_generate(
                engine, messages, SamplingParams(max_tokens=max_tokens, temperature=0, constraint=constraint)
            )
            mask_us.append(clock.per_call_us())
            constrained.append(seconds * 1000 / result.completion_tokens)
            text, finish, ok = result.text, result.finish_reason, ok and valid(result.text, schema)
            tokens = result.completion_tokens
            plain, seconds = timed_generate(
                engine, messages, SamplingParams(max_tokens=result.completion_tokens, temperature=0)
            )
            free.append(seconds * 1000 / plain.completion_tokens)
        rows.append(
            {
                "schema": name,
                "valid": ok,
                "finish_reason": finish,
                "tokens": tokens,
                "constrained_ms_per_token": round(statistics.median(constrained), 2),
                "free_ms_per_token": round(statistics.median(free), 2),
                "mask_us_per_token": round(statistics.median(mask_us), 1),
                "output": text,
            }
        )
        print(
            f"{name:20} {'valid' if ok else 'INVALID':8} {rows[-1]['constrained_ms_per_token']:7.1f} "
            f"{rows[-1]['free_ms_per_token']:7.1f} {rows[-1]['mask_us_per_token']:8.1f}  {text[:60]}",
            flush=True,
        )
    return rows


def tool_runs(engine, max_tokens: int) -> list[dict]:
    import jsonschema

    from konsilium.engines import SamplingParams
    from konsilium.structured.hermes import read
    from konsilium.structured.request import structured_request

    rows = []
    for label, choice in TOOL_CHOICES.items():
        use, constraint = structured_request(TOOLS, choice)
        params = SamplingParams(max_tokens=max_tokens, temperature=0, constraint=constraint)
        result, _ = timed_generate(engine, [{"role": "user", "content": TOOL_QUESTION}], params, use.for_engine())
        calls = read(result.text, use.parallel).calls
        schemas = {tool["function"]["name"]: tool["function"]["parameters"] for tool in TOOLS}
        ok = bool(calls)
        for call in calls:
            try:
                jsonschema.validate(json.loads(call.arguments), schemas[call.name])
            except (ValueError, KeyError, jsonschema.ValidationError):
                ok = False
        rows.append({"tool_choice": label, "valid": ok, "calls": [[c.name, c.arguments] for c in calls]})
        print(f"tool_choice {label:9} {'valid' if ok else 'INVALID':8} {rows[-1]['calls']}", flush=True)
    return rows


def batch_runs(engine, tokens: int) -> dict:
    """Four requests decoding together: all free, then two of them constrained (the step time of the batch)."""
    from konsilium.engines import SamplingParams
    from konsilium.structured.request import structured_request

    names = list(SCHEMAS)[:4]

    def run(constrained: int) -> float:
        results = [None] * len(names)

        def one(i: int) -> None:
            name = names[i]
            constraint = structured_request(response_format=response_format(name))[1] if i < constrained else None
            params = SamplingParams(max_tokens=tokens, temperature=0, constraint=constraint)
            results[i] = timed_generate(engine, messages_for(SCHEMAS[name][1]), params)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(names))]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        free_rows = [r for i, r in enumerate(results) if i >= constrained]
        return {
            "wall_s": round(elapsed, 2),
            "free_rows_ms_per_token": round(statistics.median(s * 1000 / r.completion_tokens for r, s in free_rows), 1),
        }

    return {"all_free": run(0), "two_constrained": run(2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--batch-tokens", type=int, default=24)
    parser.add_argument("--json-out", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    started = provenance()

    from konsilium.engines import SamplingParams, load_embedded_default

    engine = load_embedded_default()
    engine.warm_up()
    clock = MaskClock()
    warm = structured_request_warm(engine)
    engine.generate_chat(messages_for("Hello"), SamplingParams(max_tokens=4, temperature=0))
    print(f"{'schema':20} {'':8} {'ms/tok':>7} {'free':>7} {'mask µs':>8}  output", flush=True)
    schemas = schema_runs(engine, clock, args.reps, args.max_tokens)
    tools = tool_runs(engine, args.max_tokens)
    batch = batch_runs(engine, args.batch_tokens)
    valid_rate = sum(row["valid"] for row in schemas + tools) / len(schemas + tools)
    constrained = round(statistics.median(row["constrained_ms_per_token"] for row in schemas), 2)
    free = round(statistics.median(row["free_ms_per_token"] for row in schemas), 2)
    mask = round(statistics.median(row["mask_us_per_token"] for row in schemas), 1)
    summary = {
        "valid_rate": round(valid_rate, 3),
        "median_constrained_ms_per_token": constrained,
        "median_free_ms_per_token": free,
        "median_mask_us_per_token": mask,
        "first_constrained_request_s": warm,
    }
    print(
        f"\nvalid {valid_rate:.0%} of {len(schemas) + len(tools)}; ms/token constrained {constrained:.1f}, free "
        f"{free:.1f}; mask {mask:.0f} µs/token; batch of 4: all free {batch['all_free']}, two constrained "
        f"{batch['two_constrained']}"
    )
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "provenance": started,
        "engine": engine.info(),
        "max_tokens": args.max_tokens,
        "reps": args.reps,
        "summary": summary,
        "schemas": schemas,
        "tools": tools,
        "batch_of_4": batch,
    }
    args.json_out.write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.json_out}")


def structured_request_warm(engine) -> float:
    """The first constrained request pays for converting the tokenizer for llguidance (once per engine)."""
    from konsilium.engines import SamplingParams
    from konsilium.structured.request import structured_request

    started = time.perf_counter()
    _, constraint = structured_request(response_format={"type": "json_object"})
    engine.generate_chat(messages_for("Hello"), SamplingParams(max_tokens=4, temperature=0, constraint=constraint))
    return round(time.perf_counter() - started, 2)


if __name__ == "__main__":
    main()
