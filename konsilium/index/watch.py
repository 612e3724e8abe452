"""`konsilium serve --watch` (or `index.watch: true`): re-index notes as Obsidian saves them.

One background thread waits for file events (watchfiles: inotify / FSEvents, no polling), lets a burst of saves
settle for `index.watch_debounce_s`, then runs the ordinary incremental `Indexer` — same hashing, same batched
commits, same crash safety, same lock as `konsilium index`. Runs never overlap (one thread); a run that fails
(the lock is held by a `konsilium index`, a note vanished mid-read) is logged and retried, never raised into the
server. Readers follow each committed version by themselves (LanceStore reads the latest version).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from ..config import Home
from ..errors import IndexError_, StoreError

log = logging.getLogger("konsilium.watch")
RETRY_S = 5.0  # how soon a failed or blocked run is tried again when no new event arrives


def is_note_event(path: str, roots: list[Path]) -> bool:
    """Saves of notes and folder moves count; Obsidian's own files (`.obsidian/workspace.json`), dot-folders and
    editor temp files do not."""
    where = Path(path)
    root = next((r for r in roots if where.is_relative_to(r)), None)
    if root is None or any(part.startswith(".") for part in where.relative_to(root).parts):
        return False
    return where.suffix.lower() in (".md", "")


def start_watching(
    home: Home,
    roots: list[Path] | None = None,
    collection: str | None = None,
    embedder=None,
    debounce_s: float | None = None,
    on_run: Callable[[object], None] | None = None,
    knowledge=None,
) -> Callable[[], None]:
    """Index `roots` (default: `vault.paths`) once now and again after every burst of note saves, in a daemon
    thread; returns the function that stops it. `embedder` (or the one of `knowledge`, the server's, once the
    collection exists): shared instead of loading a second copy. `on_run` gets each run's IndexReport (or the
    exception), for logs and tests."""
    roots = [Path(r).expanduser().resolve() for r in (roots or home.config.vault.paths)]
    if not roots:
        raise IndexError_("--watch needs a vault: set vault.paths in konsilium.yaml")
    for root in roots:
        if not root.is_dir():
            raise IndexError_(f"{root}: not a directory (give the vault folder)")
    debounce = home.config.index.watch_debounce_s if debounce_s is None else debounce_s
    name = collection or home.config.index.collection
    if embedder is None and knowledge is not None and name in knowledge.collections():
        embedder = knowledge.embedder(name)
    stop_event = threading.Event()
    thread = threading.Thread(
        target=_watch_loop,
        args=(home, roots, collection, embedder, debounce, stop_event, on_run),
        name="konsilium-watch",
        daemon=True,
    )
    thread.start()

    def stop() -> None:
        stop_event.set()
        thread.join(timeout=30)  # a run in progress commits its batch first

    return stop


def _watch_loop(home, roots, collection, embedder, debounce_s, stop_event, on_run) -> None:
    from watchfiles import watch

    pending = True  # catch up with what changed while the server was not running
    watcher = watch(
        *roots,
        watch_filter=lambda _change, path: is_note_event(path, roots),
        debounce=int(debounce_s * 1000),
        step=50,
        stop_event=stop_event,
        rust_timeout=int(RETRY_S * 1000),
        yield_on_timeout=True,
        raise_interrupt=False,
    )
    watching = False
    while not stop_event.is_set():
        if pending:
            pending = not _run_once(home, roots, collection, embedder, on_run)
        changes = next(watcher, None)  # the first call starts watching (watchfiles' generator is lazy)
        if changes is None:  # the watcher ended: stop was asked
            return
        # A note saved during the start-up catch-up run, before watching began, raised no event: look once more.
        pending = pending or bool(changes) or not watching
        watching = True


def _run_once(home, roots, collection, embedder, on_run) -> bool:
    """One incremental run; returns whether it completed (else it is retried)."""
    from .indexer import Indexer

    try:
        try:
            indexer = Indexer(home, collection, embedder=embedder, roots=roots)
        except StoreError:  # the collection was rebuilt with another embedder than the one we were given
            indexer = Indexer(home, collection, roots=roots)
        report = indexer.run(roots)
    except IndexError_ as exc:  # another writer holds the index: try again shortly
        log.warning("watch: %s", exc)
        _tell(on_run, exc)
        return False
    except Exception as exc:  # noqa: BLE001 - a failed run must never take the server down
        log.exception("watch: indexing failed; retrying after the next change")
        _tell(on_run, exc)
        return True
    if report.added or report.updated or report.deleted:
        log.info(
            "watch: indexed %d added, %d updated, %d deleted note(s) in %.1fs",
            report.added,
            report.updated,
            report.deleted,
            report.seconds,
        )
    _tell(on_run, report)
    return True


def _tell(on_run, what) -> None:
    if on_run is not None:
        try:
            on_run(what)
        except Exception:  # noqa: BLE001 - a callback's bug is not the watcher's
            log.exception("watch: on_run callback failed")
