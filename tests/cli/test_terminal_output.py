"""What the CLI prints from stored or retrieved text reaches the terminal as text: control characters are shown,
never executed; brackets in help survive; piped output is not cut at 80 columns."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from konsilium.cli.main import app
from konsilium.cli.output import safe
from konsilium.memory.log import ConversationLog, Exchange

KONSILIUM = [sys.executable, "-m", "konsilium.cli.main"]
RETITLE, CLEAR = "\x1b]2;owned\x07", "\x1b[2J"
HOSTILE = f"Hi{RETITLE}there{CLEAR}\rover\x9b31m and \u202egnp.exe"


def run(home: Path, *args: str, columns: int = 80) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": str(columns)}
    proc = subprocess.run(
        [*KONSILIUM, *args, "--home", str(home)], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def run_here(home: Path, *args: str, columns: int = 80) -> Result:
    """The same through the real typer app in this process (a process start costs seconds of imports)."""
    result = CliRunner().invoke(app, [*args, "--home", str(home)], env={"COLUMNS": str(columns)})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.stderr
    return result


def assert_inert(text: str) -> None:
    for raw in ("\x1b", "\x07", "\r", "\x9b", "\u202e"):
        assert raw not in text, f"{raw!r} reached the terminal"


def test_safe_shows_controls_and_keeps_newlines_and_tabs():
    assert safe(f"a\tb\nc{CLEAR}") == "a\tb\nc\\x1b[2J"
    assert safe("\x00\x7f\x9b\u202e") == "\\x00\\x7f\\x9b\\u202e"
    assert safe("Привет [[note]]") == "Привет [[note]]"


@pytest.fixture
def logged_home(tmp_path):
    home = tmp_path / "home"
    with ConversationLog(home / "memory" / "conversations.sqlite3") as log:
        log.record(
            Exchange(
                id="chatcmpl-hostile1",
                time=1_700_000_000.0,
                endpoint="chat.completions",
                model=f"konsilium{CLEAR}",
                role=None,
                messages=[{"role": "user", "content": HOSTILE}],
                response=f"Answer {HOSTILE} " + "word " * 30 + "see [[folder/a long note name that crosses column 80]]",
                finish_reason="stop",
                sources=[{"note": f"evil{RETITLE}.md", "heading": None, "score": 0.5}],
            )
        )
    return home


def test_history_list_and_show_neutralize_escape_sequences(logged_home):
    listed = run_here(logged_home, "history", columns=200).stdout
    assert_inert(listed)
    assert "\\x1b]2;owned\\x07" in listed
    shown = run_here(logged_home, "history", "show", "chatcmpl-hostile1").stdout
    assert_inert(shown)
    assert "Hi\\x1b]2;owned\\x07there\\x1b[2J\\x0dover\\x9b31m" in shown
    assert "[[evil\\x1b]2;owned\\x07.md]]" in shown
    # --json keeps the stored text exactly (JSON escapes it; scripts get what was said).
    raw = json.loads(run_here(logged_home, "history", "show", "chatcmpl-hostile1", "--json").stdout)
    assert raw["messages"][0]["content"] == HOSTILE


def test_piped_output_does_not_wrap_wikilinks(logged_home):
    shown = run(logged_home, "history", "show", "chatcmpl-hostile1", columns=80).stdout
    assert "[[folder/a long note name that crosses column 80]]" in shown


def test_help_shows_brackets_as_written(tmp_path):
    assert "[default: retrieval.k]" in run(tmp_path / "home", "search", "--help", columns=200).stdout
    # Any command mounted on konsilium's app gets the same help rendering (the mode is inherited).
    probe = """
from typer.testing import CliRunner
from konsilium.cli.main import app

@app.command()
def cite():
    \"\"\"Answers end with [[wikilink]] sources and [^1]: [[path#heading]] footnotes.\"\"\"

print(CliRunner().invoke(app, ["cite", "--help"], terminal_width=200).stdout)
"""
    shown = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60).stdout
    assert "Answers end with [[wikilink]] sources and [^1]: [[path#heading]] footnotes." in shown


def test_progress_lines_every_tenth_or_few_seconds_with_time_left():
    import io

    from konsilium.cli.output import ProgressLines

    def lines_for(seconds_a_note: float) -> list[str]:
        now = [0.0]
        stream = io.StringIO()
        progress = ProgressLines("indexing", every_s=15.0, stream=stream, clock=lambda: now[0])
        for done in range(0, 901):
            now[0] = done * seconds_a_note
            progress(done, 900, f"note{done}.md")
        return stream.getvalue().splitlines()

    quick = lines_for(0.05)  # 45 s in all: a line a tenth
    assert quick[0] == "indexing: 90/900 notes (10%), about 40 s left"
    assert len(quick) == 10 and quick[-1] == "indexing: 900/900 notes (100%)"
    slow = lines_for(2.0)  # 30 minutes: a line every 15 s as well, so a log shows it is alive
    assert slow[0] == "indexing: 8/900 notes (0%), about 30 min left"
    assert "indexing: 122/900 notes (13%), about 26 min left" in slow
    assert slow[-1] == "indexing: 900/900 notes (100%)" and len(slow) < 140


def test_training_progress_lines_keep_the_loss_and_speed_in_a_log():
    import io

    from konsilium.cli.output import ProgressLines

    stream, now = io.StringIO(), [0.0]
    progress = ProgressLines("training sport", unit="steps", stream=stream, clock=lambda: now[0], status=True)
    for step in range(1, 11):
        now[0] = step * 3.0
        progress(step, 10, f"loss {3 - step / 10:.3f} · 120 tok/s")
    lines = stream.getvalue().splitlines()
    assert lines[0] == "training sport: 1/10 steps (10%), about 27 s left · loss 2.900 · 120 tok/s"
    assert lines[-1] == "training sport: 10/10 steps (100%) · loss 2.000 · 120 tok/s"
