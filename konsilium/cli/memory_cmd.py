"""`konsilium memory list|search|show|add|forget|pin|unpin|history|update|export`: what konsilium remembers.

Memories live in the conversation log's file (memory/conversations.sqlite3); the server learns them after each
answer, `memory update` catches up by hand (e.g. after `ask --local` or when the server was off).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from .output import HomeOption, JsonOption, fail, home_from, out, print_json, progress_bar, safe_line, user_errors

memory_app = typer.Typer(help="What konsilium remembers from your conversations.", no_args_is_help=True)
IdArgument = Annotated[str, typer.Argument(help="A memory id (or a unique prefix of one, 6+ characters).")]


def _service(ctx: typer.Context, home):
    from ..memory import ConversationLog, log_path
    from ..memory.service import MemoryService

    h = home_from(ctx, home)
    return MemoryService(ConversationLog(log_path(h)), h.config.memory)


def _day(unix: float) -> str:
    return datetime.fromtimestamp(unix).astimezone().strftime("%Y-%m-%d %H:%M") if unix else ""


def _table(memories, scores=None) -> Table:
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("id", "said", "about", "kind", "memory"):
        table.add_column(column, overflow="fold" if column == "memory" else "ellipsis")
    if scores is not None:
        table.add_column("score", justify="right")
    for i, m in enumerate(memories):
        text = ("📌 " if m.pinned else "") + safe_line(m.text or f"({m.status})")
        row = [m.id, _day(m.created), Text(safe_line(m.about)), Text(safe_line(m.kind)), Text(text)]
        if scores is not None:
            row.append(f"{scores[i]:.2f}")
        table.add_row(*row)
    return table


@memory_app.command("list")
def list_memories(
    ctx: typer.Context,
    status: Annotated[str, typer.Option(help="current, superseded, forgotten or all.")] = "current",
    pinned: Annotated[bool, typer.Option("--pinned", help="Only pinned memories (the core profile).")] = False,
    limit: Annotated[int, typer.Option(min=1)] = 100,
    home: HomeOption = None,
    as_json: JsonOption = False,
):
    """Memories, newest first."""
    if status not in ("current", "superseded", "forgotten", "all"):
        fail("--status must be current, superseded, forgotten or all", as_json, code=2)
    with user_errors(as_json):
        store = _service(ctx, home).store
        wanted = None if status == "all" else status
        memories = store.list(wanted, pinned=True if pinned else None, limit=limit)
        total = store.count(wanted)
    if as_json:
        print_json({"memories": [m.to_json() for m in memories], "total": total})
        return
    if not memories:
        out.print("No memories yet: they are learned from what you tell konsilium in chat (or `memory add`).")
        return
    out.print(_table(memories))
    out.print(f"{len(memories)} of {total} {status} memories")


@memory_app.command("search")
def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="What to look for (any language).")],
    k: Annotated[int, typer.Option("--k", min=1, max=100)] = 10,
    conversations: Annotated[
        bool, typer.Option("--conversations", help="Search past exchanges instead ('what did we decide about X').")
    ] = False,
    home: HomeOption = None,
    as_json: JsonOption = False,
):
    """Current memories by relevance to QUERY (meaning across languages, plus shared words)."""
    with user_errors(as_json):
        service = _service(ctx, home)
        hits = service.search_conversations(query, k) if conversations else service.search(query, k)
    if as_json:
        key = "conversations" if conversations else "memories"
        print_json({key: [h.memory.to_json() | {"score": round(h.score, 4)} for h in hits]})
        return
    if not hits:
        out.print("No past conversations." if conversations else "No current memories.")
        return
    out.print(_table([h.memory for h in hits], [h.score for h in hits]))


@memory_app.command("show")
def show(ctx: typer.Context, memory_id: IdArgument, home: HomeOption = None, as_json: JsonOption = False):
    """One memory with its history."""
    with user_errors(as_json):
        store = _service(ctx, home).store
        memory = _get(store, memory_id, as_json)
        events = store.history(memory.id)
    if as_json:
        print_json(memory.to_json() | {"history": [e.to_json() for e in events]})
        return
    out.print(_table([memory]))
    _print_history(events)


@memory_app.command("history")
def history(ctx: typer.Context, memory_id: IdArgument, home: HomeOption = None, as_json: JsonOption = False):
    """How a memory came to be: added, updated (superseded), repeated, pinned, forgotten."""
    with user_errors(as_json):
        store = _service(ctx, home).store
        events = store.history(_get(store, memory_id, as_json).id)
    if as_json:
        print_json({"history": [e.to_json() for e in events]})
        return
    _print_history(events)


def _print_history(events) -> None:
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("when", "memory", "event", "text", "why"):
        table.add_column(column, overflow="fold")
    for e in events:
        text = e.new_text if e.event != "UPDATE" else f"{e.old_text} → {e.new_text}"
        table.add_row(_day(e.time), e.memory_id, e.event, Text(safe_line(text or "")), Text(safe_line(e.detail or "")))
    out.print(table)


@memory_app.command("add")
def add(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="The memory, as a self-contained statement.")],
    about: Annotated[str, typer.Option(help='Whom it is about ("user", or e.g. "sister Ira").')] = "user",
    kind: Annotated[str, typer.Option(help="identity, work, home, device, schedule, health, preference, …")] = "fact",
    pin: Annotated[bool, typer.Option("--pin", help="Pin it: part of the core profile in every prompt.")] = False,
    home: HomeOption = None,
    as_json: JsonOption = False,
):
    """Add a memory by hand."""
    with user_errors(as_json):
        memory = _service(ctx, home).add(text, about, kind, pin)
    if as_json:
        print_json(memory.to_json())
        return
    out.print(f"remembered {memory.id}" + (" (pinned)" if memory.pinned else ""))


@memory_app.command("forget")
def forget(
    ctx: typer.Context,
    memory_id: Annotated[str | None, typer.Argument(help="The memory to forget.")] = None,
    query: Annotated[str | None, typer.Option("--query", help="Forget the memories this text names.")] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
):
    """Forget a memory (and the older versions it replaced): its words are erased, it is never offered again,
    and reading the old conversation again does not bring it back."""
    if (memory_id is None) == (query is None):
        fail("give a memory id or --query TEXT (one of them)", as_json, code=2)
    with user_errors(as_json):
        service = _service(ctx, home)
        if memory_id is not None:
            _get(service.store, memory_id, as_json)
            forgotten = service.forget(memory_id)
        else:
            forgotten = service.forget_matching(query)
    if as_json:
        print_json({"forgotten": [m.id for m in forgotten]})
        return
    if not forgotten:
        out.print("Nothing matched: no memory forgotten.")
        return
    noun = "memory" if len(forgotten) == 1 else "memories"
    out.print(f"forgot {len(forgotten)} {noun}: {', '.join(m.id for m in forgotten)}")


def _pin(ctx, memory_id: str, pinned: bool, home, as_json: bool) -> None:
    with user_errors(as_json):
        store = _service(ctx, home).store
        memory = store.set_pinned(_get(store, memory_id, as_json).id, pinned)
    if as_json:
        print_json(memory.to_json())
        return
    out.print(f"{'pinned' if pinned else 'unpinned'} {memory.id}")


@memory_app.command("pin")
def pin(ctx: typer.Context, memory_id: IdArgument, home: HomeOption = None, as_json: JsonOption = False):
    """Pin a memory: it goes into every prompt (within memory.pinned_tokens)."""
    _pin(ctx, memory_id, True, home, as_json)


@memory_app.command("unpin")
def unpin(ctx: typer.Context, memory_id: IdArgument, home: HomeOption = None, as_json: JsonOption = False):
    """Unpin a memory: offered only when relevant to the question."""
    _pin(ctx, memory_id, False, home, as_json)


@memory_app.command("update")
def update(
    ctx: typer.Context,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Read the whole log again (forgotten memories stay forgotten).")
    ] = False,
    home: HomeOption = None,
    as_json: JsonOption = False,
):
    """Learn from the exchanges logged since the last pass (the server does this by itself after each answer)."""
    with user_errors(as_json):
        service = _service(ctx, home)
        if rebuild:
            service.store.reset_cursor()
        pending = service.store.log.count() if rebuild else None
        with progress_bar("learning", enabled=not as_json and bool(pending)) as progress:
            report = service.catch_up(progress=progress)
    if as_json:
        print_json(report.to_json())
        return
    changes = ", ".join(f"{n} {event}" for event, n in sorted(report.operations.items())) or "no change"
    out.print(f"read {report.exchanges} exchange(s): {changes}")


@memory_app.command("export")
def export(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(help="Where to write one Markdown note per memory (e.g. in your vault).")],
    home: HomeOption = None,
    as_json: JsonOption = False,
):
    """Write every current memory as a Markdown note (front matter: id, about, kind, pinned, date). The folder is
    remembered: a memory forgotten later has its note deleted there too."""
    with user_errors(as_json):
        written = _service(ctx, home).export(folder)
    if as_json:
        print_json({"folder": str(folder), "written": [str(p) for p in written]})
        return
    out.print(f"wrote {len(written)} note(s) to {folder}")


def _get(store, memory_id: str, as_json: bool):
    from ..memory.store import MemoryNotFound

    try:
        return store.get(memory_id)
    except MemoryNotFound as exc:
        fail(str(exc), as_json)
