"""`konsilium ARGS` in this process through the real typer app (a process start costs ~10 s of imports)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from click.testing import Result
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


_SCRIPT = Path(sys.executable).parent / "konsilium"
KONSILIUM = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "konsilium.cli.main"]


def run_with_home(home: Path, *args: str, code: int = 0) -> Result:
    """`konsilium --home HOME ARGS` in this process: its exit code checked; stdout and stderr apart."""
    result = CliRunner().invoke(app, ["--home", str(home), *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == code, f"konsilium {' '.join(args)} exited {result.exit_code}: {result.stderr}"
    return result


def run_process(home: Path, *args: str, code: int = 0, command: list[str] = KONSILIUM) -> subprocess.CompletedProcess:
    """The installed `konsilium --home HOME ARGS` in a subprocess (or `command`), its exit code checked."""
    proc = subprocess.run([*command, "--home", str(home), *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == code, f"konsilium {' '.join(args)} exited {proc.returncode}: {proc.stderr}"
    return proc
