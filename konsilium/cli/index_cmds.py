"""`konsilium index`, `search` and `stats`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from typer.core import TyperCommand

# The index modules (LanceDB, torch) are imported inside the commands, so `konsilium plan` and `--help`
# start fast.
from ..config import RETRIEVAL_MODES as MODES
from .output import (
    HomeOption,
    JsonOption,
    err,
    fail,
    home_from,
    out,
    print_json,
    progress_bar,
    safe_line,
    user_errors,
)

StoreOption = Annotated[
    str | None, typer.Option("--store", help="lance or qdrant [default: index.store].", show_default=False)
]


def _quiet_model_loading() -> None:
    # transformers draws its own "Loading weights" bar; ours is the one the user should see. Said through the
    # environment (read when transformers is imported), so a command that loads no model never imports it (~5 s).
    import os
    import sys

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()


def index(
    ctx: typer.Context,
    paths: Annotated[list[Path] | None, typer.Argument(help="Vault folders (default: vault.paths in config).")] = None,
    collection: Annotated[str | None, typer.Option(help="Collection (LanceDB table) to write.")] = None,
    rebuild: Annotated[
        bool, typer.Option(help="Index from scratch; the new index replaces the old one when complete.")
    ] = False,
    store: StoreOption = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
):
    """Index Markdown notes: incremental, resumable, with a progress bar.

    `konsilium index migrate --to qdrant|lance` copies a collection between the stores, vectors included."""
    from ..index.indexer import Indexer

    with user_errors(as_json):
        h = home_from(ctx, home)
        roots = list(paths or []) or [Path(p) for p in h.config.vault.paths]
        if not roots:
            fail("no vault given: pass a PATH or set vault.paths in konsilium.yaml", as_json)
        for root in roots:
            if not root.expanduser().is_dir():
                fail(f"{root}: not a directory (give the vault folder)", as_json)
        _quiet_model_loading()
        indexer = Indexer(h, collection, roots=roots, rebuild=rebuild, store=store)
        with progress_bar("indexing", enabled=not as_json) as progress:
            report = indexer.run(roots, progress)
    if as_json:
        print_json(report.to_json())
        return
    out.print(
        f"[bold]{report.notes}[/] notes, [bold]{report.chunks}[/] chunks — added {report.added}, "
        f"updated {report.updated}, deleted {report.deleted}, unchanged {report.unchanged} "
        f"({report.embedded_chunks} chunks embedded, {report.reused_vectors} reused) in {report.seconds:.1f}s"
    )
    for item in report.skipped:
        err.print(f"[yellow]skipped[/] {escape(safe_line(item['path']))}: {escape(item['reason'])}", highlight=False)
    for item in report.warnings:
        err.print(f"[dim]note[/] {escape(safe_line(item['path']))}: {escape(item['warning'])}", highlight=False)


def migrate(
    ctx: typer.Context,
    to: Annotated[str, typer.Option("--to", help="The store to copy into: qdrant or lance.")],
    collection: Annotated[str | None, typer.Option(help="Collection to copy.")] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
):
    """Copy a collection from the other store into `--to`, with its vectors (nothing is re-embedded)."""
    from ..index.migrate import migrate as run_migration

    with user_errors(as_json):
        h = home_from(ctx, home)
        with progress_bar(f"migrating to {to}", enabled=not as_json) as progress:
            result = run_migration(h, to, collection, progress)
    if as_json:
        print_json(result)
        return
    out.print(
        f"{result['collection']}: [bold]{result['notes']}[/] notes, [bold]{result['chunks']}[/] chunks copied "
        f"from {result['from']} to {result['to']} in {result['seconds']:.1f}s"
    )


class IndexCommand(TyperCommand):
    """`konsilium index migrate ...` runs `migrate`: `index` takes folders, so it cannot be a plain group."""

    def make_context(self, info_name, args, parent=None, **extra):
        if args and args[0] == "migrate":
            command = typer.main.get_command_from_info(
                typer.models.CommandInfo(name="migrate", callback=migrate),
                pretty_exceptions_short=True,
                rich_markup_mode="markdown",
            )
            return command.make_context(f"{info_name} migrate", list(args[1:]), parent=parent, **extra)
        return super().make_context(info_name, args, parent=parent, **extra)


def search(
    ctx: typer.Context,
    query: Annotated[str | None, typer.Argument(help="What to look for; omit for an interactive prompt.")] = None,
    k: Annotated[
        int | None, typer.Option("--k", min=1, max=1000, help="How many chunks to return [default: retrieval.k].")
    ] = None,
    mode: Annotated[str | None, typer.Option(help="hybrid, dense or bm25 [default: retrieval.mode].")] = None,
    collection: Annotated[str | None, typer.Option(help="Collection to search.")] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
):
    """Search the indexed notes (hybrid BM25 + vectors + links by default)."""
    if mode is not None and mode not in MODES:
        fail(f"--mode {mode!r}: allowed values are {', '.join(MODES)}", as_json, code=2)
    with user_errors(as_json):
        h = home_from(ctx, home)
        retrieval = h.config.retrieval
        k, mode = k or retrieval.k, mode or retrieval.mode
        from ..grounding import Knowledge
        from ..index.indexer import stored_meta

        name = collection or h.config.index.collection
        if not stored_meta(h, name):  # before loading any model
            fail("the index is empty: run `konsilium index PATH` first", as_json)
        _quiet_model_loading()
        # Knowledge follows an `index --rebuild` (a new generation) for an interactive search left open.
        served = None if mode == "bm25" else (lambda embedder: _served_if_running(h, embedder))
        knowledge = Knowledge(h, wrap_embedder=served)
        if knowledge.retriever(name).store.count_chunks() == 0:
            fail("the index is empty: run `konsilium index PATH` first", as_json)
        if query is not None:
            _show(knowledge.retriever(name).search(query, k, mode), as_json)
            return
        _interactive(lambda: knowledge.retriever(name), k, mode, as_json)


def _served_if_running(home, embedder):
    """A running konsilium server embeds the question with the same model, already loaded."""
    from .ask_remote import ServedEmbedder, server_address

    found = server_address(home)
    return ServedEmbedder(embedder, *found) if found else embedder


def _interactive(live_retriever, k: int, mode: str, as_json: bool) -> None:
    """Questions until an empty line, each to the collection's live retriever."""
    err.print("[dim]konsilium search — type a question, empty line or Ctrl-D to quit[/]")
    while True:
        try:
            query = input("search> " if not as_json else "")
        except (EOFError, KeyboardInterrupt):
            break
        if not query.strip():
            break
        _show(live_retriever().search(query, k, mode), as_json)


def _show(hits, as_json: bool) -> None:
    if as_json:
        print_json([h.to_json() for h in hits])
        return
    if not hits:
        out.print("[dim]no results[/]")
        return
    for rank, hit in enumerate(hits, 1):
        where = f"[[{hit.note.removesuffix('.md')}" + (f"#{hit.heading}" if hit.heading else "") + "]]"
        snippet = " ".join(hit.text.split())[:240]
        # Note text is data, not markup, and its control characters must not reach the terminal.
        out.print(f"[bold]{rank:>2}.[/] [cyan]{escape(safe_line(where))}[/] [dim]{hit.score:.3f}[/]", highlight=False)
        out.print(f"    {escape(safe_line(snippet))}", highlight=False)


def stats(
    ctx: typer.Context,
    collection: Annotated[str | None, typer.Option(help="Collection to describe.")] = None,
    page_chars: Annotated[int, typer.Option(help="Characters in one page, for bytes per page.")] = 2000,
    home: HomeOption = None,
    as_json: JsonOption = False,
):
    """Notes, chunks and bytes on disk per part, with bytes per chunk and per page."""
    from ..index.indexer import open_store

    with user_errors(as_json):
        h = home_from(ctx, home)
        _quiet_model_loading()
        store, _ = open_store(h, collection)
        if getattr(store, "client", None) is not None:  # Qdrant: counts only; the byte measurements read Lance files
            data = store.stats()
            if as_json:
                print_json(data)
            else:
                out.print(f"collection {data['collection']} (qdrant) — {data['notes']} notes, {data['chunks']} chunks")
            return
        # The same measurement and projection as `plan storage --from-index`: one computation, one answer.
        from ..plan.lance_files import measured_index, store_bytes
        from ..plan.storage import PAGE_CHARS, storage_plan

        data = measured_index(store)
        data["bytes"].update(store_bytes(store))  # index sizes and old versions, read from the files
    chunks = data["chunks"]
    million = storage_plan(1_000_000, data)["bytes"]["on_disk"] if chunks else 0
    data["page_chars"] = page_chars
    data["pages"] = round(data["text_chars"] / page_chars, 2)
    # This index once old versions are cleaned up (they go at the next index run).
    data["bytes_per_chunk"] = round(data["bytes"]["on_disk_latest_version"] / chunks, 1) if chunks else 0
    data["bytes_per_million_pages"] = round(million * page_chars / PAGE_CHARS)
    data["bytes_per_page"] = data["bytes_per_million_pages"] / 1e6
    data["million_pages_note"] = (
        "projected as `konsilium plan storage --pages 1000000 --from-index` does: this index's files per chunk "
        "(latest version), plus a vector index at that size"
    )
    if as_json:
        print_json(data)
        return
    table = Table(title=f"collection {data['collection']} — {data['notes']} notes, {data['chunks']} chunks")
    table.add_column("part")
    table.add_column("bytes", justify="right")
    for part, size in data["bytes"].items():
        table.add_row(part, f"{size:,}")
    table.add_row("per chunk (on disk)", f"{data['bytes_per_chunk']:,.0f}")
    table.add_row(f"per page ({page_chars} chars)", f"{data['bytes_per_page']:,.0f}")
    table.add_row("a million pages", f"{data['bytes_per_million_pages'] / 1e9:,.2f} GB")
    out.print(table)
