"""Crash safety with real processes: SIGKILL mid-write loses nothing that `record()` had returned, and a reader
in another process sees what a live writer process committed."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from konsilium.memory import DB_NAME, ConversationLog

# Four threads record as fast as they can; an id is printed only after record() returned for it.
RECORDER = """
import sys, threading, time
from pathlib import Path
from konsilium.memory import ConversationLog, Exchange
log = ConversationLog(Path(sys.argv[1]))
prefix = sys.argv[2]
printing = threading.Lock()
answer = "Длинный ответ про контекст. " * 400  # ~11 KB: a write spans several pages

def work(t):
    i = 0
    while True:
        ex = Exchange(id=f"{prefix}-{t}-{i}", time=time.time(), endpoint="chat.completions", model="konsilium",
                      role=None, messages=[{"role": "user", "content": f"вопрос {i}"}], response=answer + str(i),
                      finish_reason="stop", sources=[{"note": "a.md", "heading": None, "score": 1.0}])
        log.record(ex)
        with printing:
            sys.stdout.write(ex.id + "\\n")
            sys.stdout.flush()
        i += 1

for t in range(4):
    threading.Thread(target=work, args=(t,), daemon=True).start()
threading.Event().wait()
"""


def _kill_mid_way(path: Path, prefix: str, after: int) -> list[str]:
    proc = subprocess.Popen([sys.executable, "-c", RECORDER, str(path), prefix], stdout=subprocess.PIPE, text=True)
    printed = []
    try:
        while len(printed) < after:
            line = proc.stdout.readline()
            assert line, f"the recorder died early (rc {proc.poll()})"
            printed.append(line)
        os.kill(proc.pid, signal.SIGKILL)
        rest = proc.stdout.read()  # ids printed between our last read and the kill count too
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    printed += rest.splitlines(keepends=True)
    return [line.strip() for line in printed if line.endswith("\n")]  # a torn last line was never acknowledged


def test_sigkill_mid_write_loses_no_acknowledged_exchange(tmp_path):
    path = tmp_path / DB_NAME
    rng = random.Random(7)
    acknowledged: list[str] = []
    for round_ in range(4):  # later rounds open a log whose last writer was killed
        acknowledged += _kill_mid_way(path, f"r{round_}", after=rng.randint(15, 120))
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        with ConversationLog(path) as log:
            missing = [i for i in acknowledged if log.get(i) is None]
            assert missing == []
            # Nothing half-written either: every row that is there is whole.
            for ex in log.list(limit=None):
                assert ex.response.startswith("Длинный ответ") and ex.sources[0]["note"] == "a.md"
    assert len(acknowledged) >= 60


READER = """
import json, sys
from pathlib import Path
from konsilium.memory import ConversationLog
with ConversationLog(Path(sys.argv[1])) as log:
    print(json.dumps([e.id for e in log.list(limit=None)]))
"""

HOLDER = """
import sys, time
from pathlib import Path
from konsilium.memory import ConversationLog, Exchange
log = ConversationLog(Path(sys.argv[1]))
def rec(i):
    log.record(Exchange(id=f"held-{i}", time=time.time() + i, endpoint="ask", model="konsilium", role=None,
                        messages=[{"role": "user", "content": "q"}], response="a", finish_reason="stop", sources=[]))
for i in range(3):
    rec(i)
print("ready", flush=True)
sys.stdin.readline()
for i in range(3, 5):
    rec(i)
print("done", flush=True)
sys.stdin.readline()  # keep the log open until told
"""


def test_a_reader_process_sees_what_a_live_writer_process_committed(tmp_path):
    path = tmp_path / DB_NAME

    def read() -> list[str]:
        out = subprocess.run([sys.executable, "-c", READER, str(path)], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    writer = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout.readline().strip() == "ready"
        assert read() == ["held-2", "held-1", "held-0"]
        writer.stdin.write("go\n")
        writer.stdin.flush()
        assert writer.stdout.readline().strip() == "done"
        assert read() == ["held-4", "held-3", "held-2", "held-1", "held-0"]
        assert writer.poll() is None  # the writer kept the log open all along
    finally:
        writer.stdin.close()
        writer.wait(timeout=60)
    assert writer.returncode == 0
