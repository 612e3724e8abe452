"""`konsilium import chatgpt|claude FILE`: chat exports -> nexus-ai-chat-importer notes in the vault."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from konsilium.vault.importers import ImportInputError, ImportResult, import_chatgpt, import_claude

from .output import safe_line

import_app = typer.Typer(
    help="Import chat exports (ChatGPT, Claude) into the vault as nexus-ai-chat-importer notes. "
    "Re-importing is safe: conversations are matched by id, changed ones are updated in place.",
    no_args_is_help=True,
)

_FILE = typer.Argument(..., help="The export's conversations.json.", show_default=False)
_VAULT = typer.Option(
    ...,
    "--vault",
    envvar="KONSILIUM_VAULT",
    help="The Obsidian vault (default: $KONSILIUM_VAULT).",
    show_default=False,
)
_JSON = typer.Option(False, "--json", help="Print the result as one JSON object.")


def _run(importer: Callable[..., ImportResult], file: Path, vault: Path, folder: str, as_json: bool) -> None:
    err = Console(stderr=True)
    try:
        if as_json:
            result = importer(file, vault, folder)
        else:
            with Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                console=err,
                transient=True,
            ) as progress:
                task = progress.add_task("Writing notes", total=None)

                def on_progress(done: int, total: int) -> None:
                    progress.update(task, completed=done, total=total)

                result = importer(file, vault, folder, on_progress=on_progress)
    except ImportInputError as exc:
        typer.echo(f"Error: {safe_line(exc)}", err=True)
        raise typer.Exit(1) from None
    except OSError as exc:
        typer.echo(f"Error: cannot write to the vault: {safe_line(exc)}", err=True)
        raise typer.Exit(1) from None

    if as_json:
        typer.echo(json.dumps(result.to_dict(), ensure_ascii=False))
        return
    typer.echo(
        f"{result.provider}: {result.conversations} conversations into {vault / folder} — "
        f"{len(result.created_conversations)} new, {len(result.updated_conversations)} updated, "
        f"{len(result.unchanged_conversations)} unchanged"
    )
    typer.echo(
        f"notes: {result.notes_written} written, {result.updated} updated, "
        f"{result.unchanged} unchanged, {result.removed} removed"
    )
    if result.skipped:
        typer.echo(f"skipped {len(result.skipped)}:")
        for item in result.skipped:
            title = f" ({item['title']})" if item.get("title") else ""
            # Ids and titles come from the export file: show their control characters, never run them.
            typer.echo(f"  {safe_line(item['id'])}{safe_line(title)}: {safe_line(item['reason'])}")


@import_app.command("chatgpt")
def chatgpt(
    file: Path = _FILE,
    vault: Path = _VAULT,
    folder: str = typer.Option("0_chatgpt", "--folder", help="Folder inside the vault."),
    as_json: bool = _JSON,
) -> None:
    """Import ChatGPT's conversations.json (current branch of each conversation)."""
    _run(import_chatgpt, file, vault, folder, as_json)


@import_app.command("claude")
def claude(
    file: Path = _FILE,
    vault: Path = _VAULT,
    folder: str = typer.Option("0_claude", "--folder", help="Folder inside the vault."),
    as_json: bool = _JSON,
) -> None:
    """Import Claude's conversations.json."""
    _run(import_claude, file, vault, folder, as_json)
