"""`konsilium ARGS` in this process through the real typer app (a process start costs ~10 s of imports)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from typer.testing import CliRunner

from konsilium.cli.main import app


def run(home: Path, *args: str, check: bool = True) -> SimpleNamespace:
    """`konsilium ARGS` with KONSILIUM_HOME=home, in this process: returncode, stdout and stderr as a process's."""
    result = CliRunner().invoke(app, list(args), env={"KONSILIUM_HOME": str(home)})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    proc = SimpleNamespace(returncode=result.exit_code, stdout=result.stdout, stderr=result.stderr)
    if check and proc.returncode != 0:
        raise AssertionError(f"konsilium {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc
