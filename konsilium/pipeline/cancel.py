"""Stopping a turn from outside: the client went away, the time limit passed, or the server is shutting down.

A `Cancellation` is set from any thread (or the event loop); it closes the engine stream the turn is reading, which
wakes a reader blocked waiting for the next token and tells the engine to drop the request (before its prefill if it
has not started). The turn then ends as "cancelled" in the log, with what was said so far and the reason.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger("konsilium.turn")


class TurnCancelled(Exception):
    """A turn stopped before its end; `reason` says why (and is logged with it)."""

    def __init__(self, reason: str, timed_out: bool = False):
        super().__init__(reason)
        self.reason, self.timed_out = reason, timed_out


class Cancellation:
    def __init__(self):
        self.event = threading.Event()  # also handed to the adapter queue: a waiter leaves it when set
        self.reason = ""
        self.timed_out = False
        self._streams: set = set()
        self._lock = threading.Lock()

    @property
    def is_set(self) -> bool:
        return self.event.is_set()

    def set(self, reason: str, timed_out: bool = False) -> None:
        with self._lock:
            if self.event.is_set():
                return
            self.reason, self.timed_out = reason, timed_out
            self.event.set()
            streams = list(self._streams)
        for stream in streams:  # outside the lock: a close may take a moment (an upstream's HTTP stream)
            try:
                stream.close()
            except Exception:  # one stream that fails to close must not keep the others (or a shutdown) going
                log.exception("could not close a cancelled stream")

    def error(self) -> TurnCancelled:
        return TurnCancelled(self.reason, self.timed_out)

    @contextmanager
    def watching(self, stream) -> Iterator[None]:
        """While inside, setting the cancellation closes `stream` (at once if it is already set)."""
        with self._lock:
            self._streams.add(stream)
            already = self.event.is_set()
        try:
            if already:
                stream.close()
            yield
        finally:
            with self._lock:
                self._streams.discard(stream)


class InFlight:
    """Every turn the server is answering, so a shutdown can stop them all at once."""

    def __init__(self):
        self._turns: set[Cancellation] = set()
        self._lock = threading.Lock()
        self.closing = ""  # set when the server shuts down: new turns are refused

    def __len__(self) -> int:
        with self._lock:
            return len(self._turns)

    def add(self, cancel: Cancellation) -> None:
        with self._lock:
            self._turns.add(cancel)
            closing = self.closing
        if closing:
            cancel.set(closing)

    def discard(self, cancel: Cancellation) -> None:
        with self._lock:
            self._turns.discard(cancel)

    def cancel_all(self, reason: str) -> int:
        with self._lock:
            self.closing = reason
            turns = list(self._turns)
        for cancel in turns:
            cancel.set(reason)
        return len(turns)
