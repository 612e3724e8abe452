"""`konsilium history` (list the conversation log, newest first) and `konsilium history show ID`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from ..memory.log import RATINGS, ConversationLog, Exchange, content_text, log_path
from .output import HomeOption, JsonOption, fail, home_from, out, print_json, safe, safe_line, user_errors

history_app = typer.Typer(
    help="Every conversation kept in the log: list them (newest first) or show one in full.",
    invoke_without_command=True,
    pretty_exceptions_enable=False,
)


def _open_log(ctx: typer.Context, home) -> ConversationLog | None:
    """The home's log, or None when nothing was ever recorded (reading must not create it)."""
    path = log_path(home_from(ctx, home))
    return ConversationLog(path) if path.exists() else None


RATING_NAMES = {value: name for name, value in RATINGS.items()}


def _iso(unix: float) -> str:
    return datetime.fromtimestamp(unix).astimezone().isoformat(timespec="milliseconds")


def to_json(ex: Exchange) -> dict:
    return {
        "id": ex.id,
        "time": _iso(ex.time),
        "unix_time": ex.time,
        "endpoint": ex.endpoint,
        "model": ex.model,
        "role": ex.role,
        "client": ex.client,
        "messages": ex.messages,
        "response": ex.response,
        **({"reasoning": ex.reasoning} if ex.reasoning else {}),  # thinking mode: the model's <think> text
        "finish_reason": ex.finish_reason,
        "sources": ex.sources,
        "usage": {
            "prompt_tokens": ex.prompt_tokens,
            "completion_tokens": ex.completion_tokens,
            "total_tokens": ex.prompt_tokens + ex.completion_tokens,
        },
        "timings": ex.timings,
        "status": ex.status,
        "error": ex.error,
        "rating": RATING_NAMES[ex.rating],
    }


def _first_line(text: str, width: int = 60) -> str:
    # Logged text comes from any client: its control characters are shown, never sent to the terminal.
    line = next((safe_line(part).strip() for part in (text or "").split("\n") if part.strip()), "")
    return line if len(line) <= width else line[: width - 1] + "…"


def _short_id(exchange_id: str) -> str:
    # "chatcmpl-" + 8 characters: still a unique prefix in practice, and `history show` takes prefixes.
    dash = exchange_id.find("-")
    keep = dash + 9 if 0 <= dash < 16 else 12
    return exchange_id[:keep]


def _who(ex: Exchange) -> str:
    return safe_line(f"{ex.model}/{ex.role}" if ex.role else ex.model)


@history_app.callback()
def history(
    ctx: typer.Context,
    search: Annotated[
        str | None, typer.Option("--search", help="Only exchanges whose messages or answer hold every word.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many to list.")] = 50,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Skip this many newest ones first.")] = 0,
    model: Annotated[str | None, typer.Option("--model", help="Only exchanges with this model id.")] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
):
    """List recorded conversations, newest first (`history show ID` prints one in full)."""
    if home is not None:  # `konsilium history --home X show ID`: the subcommand reads it from ctx.obj
        ctx.obj = {**(ctx.obj or {}), "home": home}
    if ctx.invoked_subcommand is not None:
        return
    with user_errors(as_json):
        log = _open_log(ctx, home)
        if log is None:
            exchanges, total = [], 0
        else:
            with log:
                exchanges = log.list(search=search, limit=limit, offset=offset, model=model)
                total = log.count(search=search, model=model)
    if as_json:
        print_json([to_json(ex) for ex in exchanges])
        return
    if not exchanges:
        if total or search or model:
            out.print("[dim]no conversations match[/]")
        else:
            out.print("[dim]no conversations recorded yet — they appear here once `konsilium serve` answers[/]")
        return
    _table(exchanges, total, offset)


def _table(exchanges: list[Exchange], total: int, offset: int) -> None:
    # Two lines a row (id over model, question over answer), the text cut to what the terminal leaves after
    # the fixed columns: readable even at 80 columns, where rich would squeeze every column to "…".
    ids = [_short_id(ex.id) for ex in exchanges]
    whos = [_who(ex)[:24] for ex in exchanges]
    tokens = [f"{ex.prompt_tokens}+{ex.completion_tokens}" for ex in exchanges]
    fixed = max(map(len, ids + whos)) + 16 + max(map(len, tokens + ["tokens"]))
    text_width = max(20, out.width - fixed - 3 * 3)  # 3: padding and rule between columns
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("id / model", no_wrap=True)
    table.add_column("time", no_wrap=True)
    table.add_column("asked / answered", no_wrap=True, overflow="ellipsis", max_width=text_width)
    table.add_column("tokens", justify="right", no_wrap=True)
    for ex, short, who, used in zip(exchanges, ids, whos, tokens, strict=True):
        answer = Text(_first_line(ex.response, text_width - 2) or "-", style="dim")
        if ex.status != "ok":
            answer = Text.assemble((f"{safe_line(ex.status)} ", "yellow"), answer)
        answer.truncate(text_width - 2, overflow="ellipsis")
        table.add_row(
            Text.assemble((safe_line(short), "cyan"), "\n", (who, "dim")),
            Text(datetime.fromtimestamp(ex.time).strftime("%Y-%m-%d %H:%M")),
            Text.assemble(_first_line(ex.question, text_width) or "-", "\n→ ", answer),
            Text(used),
        )
    out.print(table)
    shown_to = offset + len(exchanges)
    if shown_to < total or offset:
        out.print(f"[dim]{offset + 1}–{shown_to} of {total}; --limit and --offset page through[/]")


@history_app.command("show")
def show(
    ctx: typer.Context,
    exchange_id: Annotated[str, typer.Argument(metavar="ID", help="The exchange id, or a unique start of it.")],
    home: HomeOption = None,
    as_json: JsonOption = False,
):
    """Print one exchange in full: messages, answer, sources, tokens and timings."""
    with user_errors(as_json):
        ex = _exchange(ctx, home, exchange_id, as_json)
    if as_json:
        print_json(to_json(ex))
        return
    _print_exchange(ex)


@history_app.command("rate")
def rate(
    ctx: typer.Context,
    exchange_id: Annotated[str, typer.Argument(metavar="ID", help="The exchange id, or a unique start of it.")],
    rating: Annotated[str, typer.Argument(metavar="RATING", help="good, bad or none (clears the mark).")],
    home: HomeOption = None,
    as_json: JsonOption = False,
):
    """Mark an exchange good or bad: `konsilium dataset build --log --rated good` trains on the good ones."""
    if rating not in RATINGS:
        fail(f"rating {rating!r}: use one of {', '.join(RATINGS)}", as_json, code=2)
    with user_errors(as_json):
        ex = _exchange(ctx, home, exchange_id, as_json, then=lambda log, ex: log.rate(ex.id, RATINGS[rating]))
    if as_json:
        print_json({"id": ex.id, "rating": rating})
        return
    out.print(f"rated {safe_line(ex.id)}: {rating}", highlight=False)


def _exchange(ctx: typer.Context, home, exchange_id: str, as_json: bool, then=None) -> Exchange:
    """The exchange with this id or unique id prefix (else exit 1 saying so); `then(log, exchange)` runs while the
    log is open."""
    log = _open_log(ctx, home)
    ex = None
    if log is not None:
        with log:
            ex = log.get(exchange_id) or _by_prefix(log, exchange_id, as_json)
            if ex is not None and then is not None:
                then(log, ex)
    if ex is None:
        fail(f"no conversation with id {exchange_id!r} (`konsilium history` lists them)", as_json)
    return ex


def _by_prefix(log: ConversationLog, prefix: str, as_json: bool) -> Exchange | None:
    ids = log.ids_with_prefix(prefix, limit=6)
    if len(ids) > 1:
        more = ", ..." if len(ids) > 5 else ""
        fail(f"{prefix!r} is the start of several ids ({', '.join(ids[:5])}{more}); give more of it", as_json)
    return log.get(ids[0]) if ids else None


def _print_exchange(ex: Exchange) -> None:
    def field(label: str, value) -> None:
        out.print(Text.assemble((f"{label:>13}: ", "bold"), safe(value)))

    field("id", ex.id)
    field("time", _iso(ex.time))
    field("endpoint", ex.endpoint)
    field("model", _who(ex))
    if ex.client:
        field("client", ex.client)
    field("status", ex.status + (f" ({ex.error})" if ex.error else ""))
    field("finish", ex.finish_reason or "-")
    if ex.rating:
        field("rating", RATING_NAMES[ex.rating])
    field("tokens", f"{ex.prompt_tokens} prompt + {ex.completion_tokens} completion")
    if ex.timings:
        field("timings", ", ".join(f"{k} {v}" for k, v in ex.timings.items()))
    for message in ex.messages:
        out.rule(Text(safe_line(message.get("role", "?")), style="bold"), align="left")
        out.print(Text(safe(content_text(message.get("content")))))
    if ex.reasoning:
        out.rule(Text("reasoning", style="bold"), align="left")
        out.print(Text(safe(ex.reasoning), style="dim"))
    out.rule(Text("answer", style="bold green"), align="left")
    out.print(Text(safe(ex.response)))
    if ex.sources:
        out.rule(Text("sources", style="bold"), align="left")
        for source in ex.sources:
            where = str(source.get("note", "?")) + (f"#{source['heading']}" if source.get("heading") else "")
            score = source.get("score")
            shown = f"  [[{safe_line(where)}]]" + (f"  {score:.3f}" if isinstance(score, int | float) else "")
            out.print(Text(shown))
