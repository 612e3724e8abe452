"""`konsilium serve` as a real process (the log survives kill -9) and `konsilium ask` (answers cite notes)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import httpx2
import openai
import pytest
from live_server import free_port
from typer.testing import CliRunner

from konsilium.cli.main import app
from konsilium.memory import ConversationLog, log_path

KONSILIUM = [sys.executable, "-m", "konsilium.cli.main"]


def run(home, *args, check=True, env=None):
    env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [*KONSILIUM, "--home", str(home), *args], capture_output=True, text=True, env=env, timeout=600
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"konsilium {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def test_serving_on_a_public_address_without_a_key_is_refused_before_loading_anything(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "KONSILIUM_API_KEY"}
    started = time.monotonic()
    proc = subprocess.run(
        [*KONSILIUM, "--home", str(tmp_path), "serve", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 1 and "KONSILIUM_API_KEY" in proc.stderr and "Traceback" not in proc.stderr
    assert time.monotonic() - started < 60


@pytest.mark.real_model
def test_kill_9_of_the_server_loses_no_acknowledged_exchange(tmp_path):
    server, client = start_serving(tmp_path)
    try:
        acknowledged = {}
        for i in range(3):
            question = [{"role": "user", "content": f"Say a number bigger than {i}."}]
            answer = client.chat.completions.create(model="konsilium", messages=question, max_tokens=3, temperature=0)
            acknowledged[answer.id] = answer.choices[0].message.content
        chunks = list(
            client.chat.completions.create(
                model="konsilium", messages=[{"role": "user", "content": "Hello"}], max_tokens=3, stream=True
            )
        )
        acknowledged[chunks[0].id] = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        server.send_signal(signal.SIGKILL)  # no shutdown hook runs
        server.wait(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
    with ConversationLog(log_path(_home(tmp_path))) as log:
        for exchange_id, content in acknowledged.items():
            kept = log.get(exchange_id)
            assert kept is not None and kept.status == "ok" and kept.response == content
    listed = json.loads(run(tmp_path, "history", "--json").stdout)
    assert set(acknowledged) <= {item["id"] for item in listed}


@pytest.fixture
def slow_upstream():
    """An OpenAI-compatible server that answers one word per 50 ms for a long time: what `konsilium serve` fronts
    in the shutdown tests (they are about the serving process, not the model, so no model is loaded)."""
    from fake_engine import FakeEngine
    from live_server import running_server

    from konsilium.server import create_app

    engine = FakeEngine(context_length=8192, filler_words=2000, chunk_delay_s=0.05)
    with running_server(create_app(engine, model_id="upstream")) as url:
        yield f"{url}/v1"


@pytest.mark.parametrize(
    ("stop", "exit_codes"),
    [
        (signal.SIGINT, (0, 130)),  # 130: the shell convention for ^C
        # SIGTERM (systemd, docker stop, kill): after the same graceful shutdown uvicorn re-raises the signal, so
        # the process ends by it, which is what supervisors read as a clean stop
        (signal.SIGTERM, (-signal.SIGTERM,)),
    ],
    ids=["ctrl-c", "sigterm"],
)
def test_ctrl_c_or_sigterm_stops_answers_in_progress_logs_them_and_exits_at_once(
    tmp_path, slow_upstream, stop, exit_codes
):
    engine = {"kind": "openai-upstream", "upstream_url": slow_upstream, "model": "upstream", "context_length": 8192}
    vault = tmp_path / "vault"  # watched (index.watch), so that the watcher's stop is part of the shutdown
    vault.mkdir()
    config = {"engine": engine, "vault": {"paths": [str(vault)]}, "index": {"watch": True}}
    (tmp_path / "konsilium.yaml").write_text(json.dumps(config), encoding="utf-8")
    server, client = start_serving(tmp_path)
    try:
        long = [{"role": "user", "content": "Write a very long story about a dragon."}]
        stream = client.chat.completions.create(model="konsilium", messages=long, max_tokens=2000, stream=True)
        chunks = iter(stream)
        first, _ = next(chunks), next(chunks)  # the role's opening, then the first words
        server.send_signal(stop)
        stopped = time.monotonic()
        with pytest.raises(openai.APIError, match="shutting down"):
            list(chunks)  # the open stream ends with an in-band error, not a hang
        _, stderr = server.communicate(timeout=30)
        assert time.monotonic() - stopped < 15
    finally:
        if server.poll() is None:
            server.kill()
    assert server.returncode in exit_codes and "Traceback" not in stderr, (server.returncode, stderr)
    assert "stopping 1 answer(s) in progress" in stderr
    assert "stopped watching the vault" in stderr
    with ConversationLog(log_path(_home(tmp_path))) as log:
        kept = log.get(first.id)
    assert kept.status == "cancelled" and kept.error == "the server is shutting down"
    assert kept.response and kept.prompt_tokens > 0 and kept.completion_tokens > 0  # what was said, counted


def start_serving(home) -> tuple[subprocess.Popen, openai.OpenAI]:
    """`konsilium serve` as a real process on a free port, once it answers; and a client for it."""
    port = free_port()
    server = subprocess.Popen(
        [*KONSILIUM, "--home", str(home), "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_serving(server, port)
    except BaseException:
        server.kill()
        raise
    return server, openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0, timeout=120)


def wait_until_serving(server: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + 300
    while True:
        try:
            if httpx2.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        assert server.poll() is None, server.stderr.read()
        assert time.monotonic() < deadline, "the server did not come up"
        time.sleep(0.3)


def _home(root):
    from konsilium.config import open_home

    return open_home(root)


@pytest.mark.real_model
def test_ask_answers_from_the_notes_streams_and_is_logged(steps_home):
    """`konsilium ask` in this process (the session's model and index are reused), on the real model."""
    question = ["ask", "Какая у меня видеокарта?", "--local"]  # this process's model, even if a server runs here
    result = json.loads(cli(steps_home, *question, "--json", "--max-tokens", "6", "--k", "1"))
    assert set(result) >= {"id", "answer", "sources", "finish_reason", "usage"}
    assert [s["note"] for s in result["sources"]] == ["steps/25_под_мою_видеокарта_как.md"]
    assert re.search(r"^\[\^1\]: \[\[steps/25_под_мою_видеокарта_как(#[^\]]+)?\]\]$", result["answer"], flags=re.M)
    shown = json.loads(cli(steps_home, "history", "show", result["id"], "--json"))
    assert shown["response"] == result["answer"] and shown["endpoint"] == "ask"
    plain = cli(steps_home, *question, "--max-tokens", "4", "--no-retrieval")
    assert plain.strip() and "[^1]" not in plain
    empty = CliRunner().invoke(app, ["--home", str(steps_home), "ask", "  "])
    assert empty.exit_code == 2 and "empty" in empty.stderr


def cli(home, *args) -> str:
    """Run `konsilium --home HOME ARGS...` in this process; its stdout, after checking it succeeded."""
    result = CliRunner().invoke(app, ["--home", str(home), *args])
    assert result.exit_code == 0, f"konsilium {' '.join(args)} failed ({result.exit_code}): {result.output}"
    return result.stdout


def test_ask_uses_the_running_server_instead_of_loading_the_model_again(tmp_path):
    from fake_engine import FakeEngine
    from live_server import running_server

    from konsilium.server import create_app

    engine = FakeEngine()
    log = ConversationLog(tmp_path / "server-log.sqlite3")
    with running_server(create_app(engine, conversation_log=log)) as url:
        home = tmp_path / "home"
        home.mkdir()
        (home / "konsilium.yaml").write_text(f"server: {{port: {url.rsplit(':', 1)[1]}}}\n", encoding="utf-8")
        answer = json.loads(cli(home, "ask", "Какая у меня видеокарта?", "--json", "--no-retrieval"))
        assert answer["server"].startswith(url) and answer["answer"].startswith("[base]")
        assert "Какая у меня видеокарта?" in answer["answer"] and answer["finish_reason"] == "stop"
        assert answer["memories"] == []  # same keys as a local answer (this server keeps no memories)
        assert log.get(answer["id"]).client == "cli"  # the server answered and kept it
        shown = cli(home, "ask", "Hello there", "--no-retrieval")
        assert "Hello there" in shown and engine.last.messages[-1]["content"] == "Hello there"
