"""`konsilium ask "QUESTION"`: the server's grounded answer from the command line, streamed, and logged."""

from __future__ import annotations

import contextlib
import sys
from typing import Annotated

import typer

from .ask_remote import ask_server, running_server
from .output import HomeOption, JsonOption, LocalOption, err, fail, home_from, out, print_json, user_errors


def ask(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="The question; '-' reads it from stdin.")],
    collection: Annotated[
        list[str] | None, typer.Option("--collection", "-c", help="Search these collections (repeatable).")
    ] = None,
    no_retrieval: Annotated[bool, typer.Option("--no-retrieval", help="Answer without searching the notes.")] = False,
    k: Annotated[int | None, typer.Option("--k", min=1, max=50, help="Passages offered to the model.")] = None,
    max_tokens: Annotated[
        int | None,
        typer.Option("--max-tokens", min=1, help="Longest answer in tokens (default: server.default_max_tokens)."),
    ] = None,
    temperature: Annotated[float, typer.Option("--temperature", min=0, max=2, help="0 is greedy.")] = 0.0,
    system: Annotated[str | None, typer.Option("--system", help="A system prompt of your own.")] = None,
    role: Annotated[
        str | None,
        typer.Option(
            "--role",
            "-r",
            help="Answer as this role (see `konsilium roles list`), one of its versions (ROLE@N), or 'auto'.",
        ),
    ] = None,
    local: LocalOption = False,
    home: HomeOption = None,
    as_json: JsonOption = False,
):
    """Ask your notes: the answer streams to stdout and ends with wikilink sources (a running server answers)."""
    if question == "-":
        question = sys.stdin.read()
    if not question.strip():
        fail("the question is empty", as_json, code=2)
    with user_errors(as_json):
        from ..engines import SamplingParams
        from ..pipeline import ReasoningDelta, TextDelta, TurnEnd, TurnRequest
        from ..pipeline.assemble import assemble, load_configured_engine

        h = home_from(ctx, home)
        chosen = {"collections": collection, "k": k}
        retrieval = False if no_retrieval else {name: v for name, v in chosen.items() if v} or None
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": question}]
        client = None if local else running_server(h)
        if client is not None:
            if not as_json:
                err.print(f"asking the server at {client.base_url}…", highlight=False, markup=False)
            model = role or h.config.server.model_id
            answer = ask_server(client, model, messages, retrieval, max_tokens, temperature, show=not as_json)
            if as_json:
                print_json(answer)
            return
        if not as_json:
            err.print(f"loading the {h.config.engine.kind} engine…", highlight=False, markup=False)
        pipeline = assemble(h, load_configured_engine(h), warm_adapters=False)
        request = TurnRequest(
            endpoint="ask",
            model=role or h.config.server.model_id,
            params=SamplingParams(max_tokens=max_tokens, temperature=temperature),
            messages=messages,
            retrieval=retrieval,
            client="cli",
        )
        turn = pipeline.prepare(request, _resolve_role(pipeline, request))
        if turn.show_sources and not turn.sources and not as_json:
            err.print("[yellow]no relevant notes for this question: answering without them[/]", highlight=False)
        stream = pipeline.stream(turn)
        end = None
        try:
            if turn.opening and not as_json:
                out.print(turn.opening, end="", markup=False, highlight=False, soft_wrap=True)
            for event in stream:
                if isinstance(event, TextDelta):
                    if not as_json:
                        out.print(event.text, end="", markup=False, highlight=False, soft_wrap=True)
                elif isinstance(event, ReasoningDelta):  # the model thinking aloud: shown apart, dimmed
                    if not as_json:
                        err.print(event.text, end="", style="dim", markup=False, highlight=False, soft_wrap=True)
                elif isinstance(event, TurnEnd):
                    end = event
        except KeyboardInterrupt:
            stream.close()  # logged as cancelled, with what was said
            raise typer.Exit(130) from None
        finally:
            stream.close()
    record = turn.record
    if as_json:
        print_json(
            {
                "id": record.id,
                "model": record.model,
                "answer": record.response,
                "sources": record.sources,
                "memories": turn.memories_json(),
                "finish_reason": record.finish_reason,
                "role": turn.resolution.role_id,
                "usage": {"prompt_tokens": record.prompt_tokens, "completion_tokens": record.completion_tokens},
                "timings": record.timings,
            }
        )
    else:
        out.print(end.text if end else "", markup=False, highlight=False, soft_wrap=True)
    _learn(pipeline)


def _learn(pipeline) -> None:
    """After the answer is out: what the question told about the user becomes memories (as the server does)."""
    if pipeline.memory is not None:
        with contextlib.suppress(Exception):  # memories are learned again by the next pass if this one fails
            pipeline.memory.catch_up()


def _resolve_role(pipeline, request):
    """`--role` (the base model when not given); an unknown role is one clear line naming the known ones, an unknown
    version of a role one naming its versions."""
    from ..errors import ModelNotFoundError
    from ..roles.registry import UnknownVersionError

    try:
        return pipeline.resolve(request)
    except UnknownVersionError:
        raise  # its message lists the role's versions
    except ModelNotFoundError:
        known = ", ".join(role.id for role in pipeline.roles.roles()) or "none yet (konsilium roles add)"  # not `auto`
        raise ValueError(f"unknown role {request.model!r}; roles: {known}") from None
