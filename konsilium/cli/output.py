"""Shared CLI plumbing: the home option, JSON output, clear errors, progress bars, safe text."""

from __future__ import annotations

import json
import re
import sys
import time
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
# Piped output is read by programs and pagers: no hard wraps at 80 columns that split a [[wikilink]].
out.soft_wrap = not out.is_terminal

# Terminal control characters in stored or retrieved text (a logged message, a note, a file name) would be
# executed by the user's terminal: ESC sequences retitle or clear it, CR overwrites a line, bidi overrides
# reorder what is shown. Everything but newline and tab is shown as a visible escape instead.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(text) -> str:
    """`text` with terminal control characters shown as `\\x1b`-style escapes (newline and tab kept)."""
    return _CONTROL.sub(_visible, "" if text is None else str(text))


def safe_line(text) -> str:
    """`safe(text)` on one line: for table cells and one-line messages."""
    return safe(text).replace("\n", " ").replace("\t", " ")


HomeOption = Annotated[
    Path | None,
    typer.Option("--home", help="State directory (default: $KONSILIUM_HOME or ~/.konsilium).", show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
LocalOption = Annotated[
    bool, typer.Option("--local", help="Load the model here even when a konsilium server is running.")
]

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
    err.print(f"[bold red]error:[/] {escape(safe_line(message))}", highlight=False)
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
def progress_bar(label: str, enabled: bool = True, unit: str = "notes", status: bool = False):
    """A progress callback (done, total, item) on stderr: a bar on a terminal, else a plain line every few
    seconds or 10% (a log file or CI shows that a long run is alive); nothing when disabled. `status`: the item is
    a state worth keeping in those lines too (training's loss and tokens/s), not just the file at hand."""
    if not enabled:
        yield lambda done, total, item: None
        return
    if not err.is_terminal:
        yield ProgressLines(label, unit, status=status)
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
        bar.update(task, completed=done, total=total, description=safe_line(item[-50:]))

    with bar:
        yield update


class ProgressLines:
    """Progress as lines for a stderr that is no terminal: `indexing: 120/900 notes (13%), about 2 min left`."""

    def __init__(
        self,
        label: str,
        unit: str = "notes",
        every_s: float = 15.0,
        stream=None,
        clock=time.monotonic,
        status: bool = False,
    ):
        self.label, self.unit, self.every_s, self.status = label, unit, every_s, status
        self.stream, self.clock = stream or sys.stderr, clock
        self.started = clock()
        self.last_time = self.started
        self.last_tenth = 0

    def __call__(self, done: int, total: int, item: str = "") -> None:
        if not total:
            return
        now = self.clock()
        tenth = done * 10 // total
        finished = done >= total
        if not finished and tenth <= self.last_tenth and now - self.last_time < self.every_s:
            return
        if finished and self.last_tenth >= 10:
            return  # the end was already said
        self.last_time, self.last_tenth = now, max(tenth, self.last_tenth)
        line = f"{self.label}: {done}/{total} {self.unit} ({done * 100 // total}%)"
        elapsed = now - self.started
        if not finished and done and elapsed >= 1:
            line += f", about {_duration(elapsed * (total - done) / done)} left"
        if self.status and item:
            line += f" · {safe_line(item)}"
        self.stream.write(line + "\n")
        self.stream.flush()


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"
