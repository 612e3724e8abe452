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
    role: Annotated[
        str | None, typer.Option("--role", "-r", help="Answer as this role (see `konsilium roles list`), or 'auto'.")
    ] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
):
    """Ask your notes: the answer streams to stdout and ends with [[wikilink]] sources."""
    if question == "-":
        question = sys.stdin.read()
    if not question.strip():
        fail("the question is empty", as_json, code=2)
    with user_errors(as_json):
        from ..engines import SamplingParams
        from ..grounding import Answerer, Knowledge, RetrievalOptions
        from ..memory import ConversationLog, Exchange
        from ..roles.guard import disclaimer, with_role_prompt
        from .serve_cmd import load_configured_engine

        h = home_from(ctx, home)
        if not as_json:
            err.print(f"[dim]loading the {h.get('engine.kind')} engine…[/]", highlight=False)
        engine = load_configured_engine(h)
        log = ConversationLog.open_home(h) if h.get("server.log") else None
        knowledge = Knowledge(h)
        answerer = Answerer(engine, knowledge, log, context_share=float(h.get("server.context_share")))
        roles, resolution = _resolve_role(h, engine, knowledge, role, question)
        options = RetrievalOptions(
            enabled=not no_retrieval, collections=collection or None, k=k or h.get("server.context_chunks")
        ).within(resolution.role.retrieval if resolution.role else None)
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": question}]
        params = SamplingParams(max_tokens=max_tokens, temperature=temperature, adapter=resolution.adapter)
        opening = disclaimer(resolution.role)
        record = Exchange(
            id=f"ask-{uuid.uuid4().hex}",
            time=time.time(),
            endpoint="ask",
            model=role or h.get("server.model_id"),
            role=resolution.role_id,
            messages=messages,
            response="",
            finish_reason=None,
            sources=[],
            client="cli",
        )
        prepared = answerer.prepare_chat(with_role_prompt(messages, resolution.role), params, options)
        if options.enabled and not prepared.sources and not as_json:
            err.print("[yellow]no notes found for this question (is the vault indexed?)[/]", highlight=False)
        record.sources, record.timings["retrieval_ms"] = prepared.sources_json(), round(prepared.retrieval_ms, 2)
        parts, last = [opening], None
        if opening and not as_json:
            out.print(opening, end="", markup=False, highlight=False, soft_wrap=True)
        try:
            with roles.using(resolution):
                for last in resolution.engine.stream_chat(prepared.messages, params):
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
                "role": resolution.role_id,
                "usage": {"prompt_tokens": record.prompt_tokens, "completion_tokens": record.completion_tokens},
                "timings": record.timings,
            }
        )
        return
    out.print(tail if tail else "", markup=False, highlight=False, soft_wrap=True)


def _resolve_role(home, engine, knowledge, role: str | None, question: str):
    """(RoleService, Resolution) for `--role` (the base model when not given); an unknown role is a clear error."""
    from ..roles.registry import RoleRegistry
    from ..roles.runtime import RoleService, UnknownModelError

    model_id = home.get("server.model_id")
    roles = RoleService(
        engine,
        RoleRegistry.open(home),
        base_model_id=model_id,
        cache_settings=home.settings["adapter_cache"],
        embed=lambda texts: knowledge.embedder().embed(texts),
    )
    try:
        return roles, roles.resolve(role or model_id, question)
    except UnknownModelError:
        known = ", ".join(roles.model_ids()[1:]) or "none yet (konsilium roles add)"
        raise ValueError(f"unknown role {role!r}; roles: {known}") from None
