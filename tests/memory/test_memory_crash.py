"""A crash while learning loses nothing and doubles nothing: the log is the source of truth, and each exchange's
memory operations commit together with the cursor past it (a real `kill -9` mid-pass)."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

from konsilium.config import MemorySettings
from konsilium.memory import ConversationLog, Exchange
from konsilium.memory.service import MemoryService

THINGS = (
    "violin bicycle kayak telescope aquarium sewing-machine chess-set drone piano tent snowboard espresso-machine "
    "typewriter microscope canoe harp saxophone skateboard 3d-printer hammock accordion trampoline banjo sailboat"
).split()

LEARN_SLOWLY = """
import sys, time
from pathlib import Path
from konsilium.memory import ConversationLog
from konsilium.memory.service import MemoryService
service = MemoryService(ConversationLog(Path(sys.argv[1])))
service.catch_up(progress=lambda done, total, item: time.sleep(0.05))
"""


def cursor(path) -> int:
    with sqlite3.connect(path) as db:
        row = db.execute("SELECT value FROM memory_state WHERE name = 'extracted_through'").fetchone()
    return int(row[0]) if row else 0


def texts(path) -> list[str]:
    with ConversationLog(path) as log:
        return sorted(m.text for m in MemoryService(log).store.list(None, limit=None))


def test_killed_mid_pass_the_next_pass_ends_as_an_uninterrupted_one(tmp_path):
    path, reference = tmp_path / "conversations.sqlite3", tmp_path / "reference.sqlite3"
    with ConversationLog(path) as log:
        for i, thing in enumerate(THINGS):
            said = f"I own a {thing.replace('-', ' ')}." if i % 3 else f"My {thing.replace('-', ' ')} is {i} years old."
            log.record(
                Exchange(
                    f"chatcmpl-{i:03d}",
                    1_700_000_000 + i,
                    "chat.completions",
                    "konsilium",
                    None,
                    [{"role": "user", "content": said}],
                    "Noted.",
                    "stop",
                    [],
                )
            )
    shutil.copy(path, reference)
    with ConversationLog(reference) as log:
        MemoryService(log, MemorySettings()).catch_up()
    expected = texts(reference)
    assert len(expected) >= len(THINGS) // 2

    proc = subprocess.Popen(
        [sys.executable, "-c", LEARN_SLOWLY, str(path)], env=os.environ | {"PYTHONPATH": os.getcwd()}
    )
    deadline = time.monotonic() + 120
    while cursor(path) < 5 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = cursor(path)
    assert 5 <= killed_at < len(THINGS)  # killed mid-pass

    with ConversationLog(path) as log:
        report = MemoryService(log, MemorySettings()).catch_up()
    assert report.exchanges == len(THINGS) - killed_at  # resumed after the last exchange committed
    assert texts(path) == expected  # nothing lost, nothing learned twice
    assert cursor(path) == cursor(reference)
