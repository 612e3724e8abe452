"""Shared CLI plumbing: the home option, JSON output, clear errors, progress bars."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ..config import ConfigError, Home, open_home
from ..errors import (
    EmbedderError,
    EngineUnavailableError,
    IndexError_,
    QuestionFileError,
    RoleUnavailableError,
    StoreError,
    UpstreamError,
)
from ..memory.log import MemoryStoreError

err = Console(stderr=True, soft_wrap=True)  # one error, one line: scripts grep it
out = Console()

HomeOption = Annotated[
    Path | None,
    typer.Option("--home", help="State directory (default: $KONSILIUM_HOME or ~/.konsilium).", show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]

# Errors we expect from bad input: shown as one clear line, never as a traceback.
USER_ERRORS = (
    ConfigError,
    IndexError_,
    StoreError,
    EmbedderError,
    QuestionFileError,
    MemoryStoreError,
    UpstreamError,
    EngineUnavailableError,
    RoleUnavailableError,
    ValueError,
    OSError,
)


def print_json(data) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    sys.stdout.flush()


def fail(message: str, as_json: bool = False, code: int = 1):
    if as_json:
        print_json({"error": {"message": message}})
    # The message is text, not markup: `konsilium[vllm]` or `[[note]]` must reach the terminal as written.
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)


@contextmanager
def user_errors(as_json: bool = False) -> Iterator[None]:
    try:
        yield
    except USER_ERRORS as exc:
        fail(str(exc), as_json)


def home_from(ctx: typer.Context, home: Path | None) -> Home:
    root = home or (ctx.obj or {}).get("home")
    return open_home(root)


@contextmanager
def progress_bar(label: str, enabled: bool = True):
    """A progress callback (done, total, item) drawn on stderr; silent when disabled or not a terminal."""
    if not enabled:
        yield lambda done, total, item: None
        return
    bar = Progress(
        TextColumn(f"[bold]{label}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.description}", style="dim"),
        console=err,
        transient=True,
    )
    task = bar.add_task("", total=None)

    def update(done: int, total: int, item: str) -> None:
        bar.update(task, completed=done, total=total, description=item[-50:])

    with bar:
        yield update
