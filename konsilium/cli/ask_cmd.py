"""`konsilium ask "QUESTION"`: the server's grounded answer from the command line, streamed, and logged."""

from __future__ import annotations

import sys
import time
import uuid
from typing import Annotated

import typer

from .output import HomeOption, JsonOption, err, fail, home_from, out, print_json, user_errors


def ask(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="The question; '-' reads it from stdin.")],
    collection: Annotated[
        list[str] | None, typer.Option("--collection", "-c", help="Search these collections (repeatable).")
    ] = None,
    no_retrieval: Annotated[bool, typer.Option("--no-retrieval", help="Answer without searching the notes.")] = False,
    k: Annotated[int | None, typer.Option("--k", min=1, max=50, help="Passages offered to the model.")] = None,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1, help="Longest answer in tokens.")] = 512,
    temperature: Annotated[float, typer.Option("--temperature", min=0, max=2, help="0 is greedy.")] = 0.0,
    system: Annotated[str | None, typer.Option("--system", help="A system prompt of your own.")] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
):
    """Ask your notes: the answer streams to stdout and ends with [[wikilink]] sources."""
    if question == "-":
        question = sys.stdin.read()
    if not question.strip():
        fail("the question is empty", as_json, code=2)
    with user_errors(as_json):
        from ..engines import SamplingParams, load_engine
        from ..grounding import Answerer, Knowledge, RetrievalOptions
        from ..memory import ConversationLog, Exchange

        h = home_from(ctx, home)
        if not as_json:
            err.print(f"[dim]loading the {h.get('engine.kind')} engine…[/]", highlight=False)
        engine = load_engine(h.settings["engine"])
        log = ConversationLog.open_home(h) if h.get("server.log") else None
        answerer = Answerer(engine, Knowledge(h), log, context_share=float(h.get("server.context_share")))
        options = RetrievalOptions(
            enabled=not no_retrieval, collections=collection or None, k=k or h.get("server.context_chunks")
        )
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": question}]
        params = SamplingParams(max_tokens=max_tokens, temperature=temperature)
        record = Exchange(
            id=f"ask-{uuid.uuid4().hex}",
            time=time.time(),
            endpoint="ask",
            model=h.get("server.model_id"),
            role=None,
            messages=messages,
            response="",
            finish_reason=None,
            sources=[],
            client="cli",
        )
        prepared = answerer.prepare_chat(messages, params, options)
        if options.enabled and not prepared.sources and not as_json:
            err.print("[yellow]no notes found for this question (is the vault indexed?)[/]", highlight=False)
        record.sources, record.timings["retrieval_ms"] = prepared.sources_json(), round(prepared.retrieval_ms, 2)
        parts, last = [], None
        try:
            for last in engine.stream_chat(prepared.messages, params):
                if "first_token_ms" not in record.timings:
                    record.timings["first_token_ms"] = round((time.time() - record.time) * 1000, 2)
                parts.append(last.text)
                if not as_json:
                    out.print(last.text, end="", markup=False, highlight=False, soft_wrap=True)
        except KeyboardInterrupt:
            record.status, record.response = "cancelled", "".join(parts)
            answerer.record(record)
            raise typer.Exit(130) from None
        tail = prepared.tail()
        record.response, record.finish_reason = "".join(parts) + tail, last.finish_reason
        record.prompt_tokens, record.completion_tokens = last.prompt_tokens, last.completion_tokens
        record.timings["total_ms"] = round((time.time() - record.time) * 1000, 2)
        answerer.record(record)
    if as_json:
        print_json(
            {
                "id": record.id,
                "model": record.model,
                "answer": record.response,
                "sources": record.sources,
                "finish_reason": record.finish_reason,
                "usage": {"prompt_tokens": record.prompt_tokens, "completion_tokens": record.completion_tokens},
                "timings": record.timings,
            }
        )
        return
    out.print(tail if tail else "", markup=False, highlight=False, soft_wrap=True)
