"""Tasks whose server dies, and tasks against the server's limit on work in progress.

A real `konsilium serve` process runs tasks over an openai-upstream engine; its upstream is a konsilium on the fake
engine in a process of its own (tests/upstream_process.py), slow enough that the tasks are mid-call when the server
is killed (SIGKILL). The next server and `konsilium task` show them `interrupted`; resumed over a quick upstream,
they finish.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import httpx2
import openai
import pytest
import yaml
from cli_runner import run
from fake_engine import FakeEngine
from live_server import free_port, running_server, wait_for
from upstream_process import MODEL, upstream_process

from konsilium.config import ServerSection
from konsilium.memory import ConversationLog
from konsilium.server import create_app
from konsilium.server.settings import ServerSettings

REPO = Path(__file__).parents[2]
KONSILIUM = [sys.executable, "-m", "konsilium.cli.main"]


def configure(home: Path, upstream_port: int) -> None:
    engine = {"kind": "openai-upstream", "model": MODEL, "upstream_url": f"http://127.0.0.1:{upstream_port}/v1"}
    (home / "konsilium.yaml").write_text(yaml.safe_dump({"engine": engine}), encoding="utf-8")


def serve(home: Path) -> tuple[subprocess.Popen, httpx2.Client]:
    """`konsilium serve` as a process of its own (this checkout's code), once it answers."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    server = subprocess.Popen(
        [*KONSILIUM, "--home", str(home), "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    http = httpx2.Client(base_url=f"http://127.0.0.1:{port}/v1", timeout=120)

    def up() -> bool:
        assert server.poll() is None, "the server stopped"
        try:
            return http.get("/models").status_code == 200
        except httpx2.TransportError:
            return False

    assert wait_for(up, 120), "the server did not come up"
    return server, http


def test_tasks_of_a_killed_server_are_interrupted_and_resume_from_their_last_step(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    slow_port, quick_port = free_port(), free_port()
    # The upstream answers the two plans at once, then takes two minutes over every later call.
    with upstream_process(slow_port, "--first-delay", "120", "--delay-from", "3"), upstream_process(quick_port):
        configure(home, slow_port)
        server, http = serve(home)
        try:
            ids = [http.post("/tasks", json={"input": f"look up thing {i}"}).json()["id"] for i in (1, 2)]
            assert wait_for(lambda: all(http.get(f"/tasks/{i}").json()["steps"] for i in ids), 60)  # planned
            plans = [http.get(f"/tasks/{i}").json()["steps"] for i in ids]
            assert all(http.get(f"/tasks/{i}").json()["status"] == "running" for i in ids)
        finally:
            server.kill()  # mid-call: each task waits on the slow upstream's first word after its plan
            server.wait(timeout=30)
        killed = server.pid

        configure(home, quick_port)  # the next server (and this CLI) reach an upstream that answers
        server, http = serve(home)
        try:
            shown = http.get(f"/tasks/{ids[0]}").json()
            assert shown["status"] == "interrupted"
            assert f"process {killed} stopped while the task ran" in shown["error"]
            cli = json.loads(run(home, "task", "show", ids[1], "--local", "--json").stdout)
            assert cli["status"] == "interrupted"
            assert f"konsilium task resume {ids[1]}" in run(home, "task", "show", ids[1], "--local").stdout

            resumed = http.post(f"/tasks/{ids[0]}/resume", json={"wait": True}).json()
            assert resumed["status"] == "done" and resumed["report"], resumed
            assert resumed["steps"][0] == plans[0][0] and len(plans[0]) == 1  # the saved plan, not made again
            assert [step["kind"] for step in resumed["steps"]].count("plan") == 1
            again = http.post(f"/tasks/{ids[0]}/resume", json={})
            assert again.status_code == 409 and "only an interrupted task resumes" in again.json()["error"]["message"]

            # A task of `konsilium task --local` whose process is killed while this server runs: caught when read.
            configure(home, slow_port)
            local = subprocess.Popen(
                [*KONSILIUM, "--home", str(home), "task", "look up thing 3", "--local", "--json"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env={**os.environ, "PYTHONPATH": str(REPO)},
            )
            try:
                assert wait_for(lambda: len(http.get("/tasks").json()["data"]) == 3, 120)
                third = http.get("/tasks").json()["data"][0]
                assert third["goal"] == "look up thing 3" and third["status"] == "running"
            finally:
                local.kill()
                local.wait(timeout=30)
            configure(home, quick_port)
            assert http.get(f"/tasks/{third['id']}").json()["status"] == "interrupted"
        finally:
            server.kill()
            server.wait(timeout=30)

        finished = json.loads(run(home, "task", "resume", ids[1], "--local", "--json").stdout)
        assert finished["status"] == "done" and finished["report"]


def test_running_tasks_count_against_the_servers_limit(tmp_path):
    gate = threading.Event()
    engine = FakeEngine(context_length=16384, gate=gate)  # every answer waits at its second word until opened
    log = ConversationLog(tmp_path / "log.sqlite3")
    settings = ServerSettings(ServerSection(max_pending_requests=1))
    try:
        with running_server(create_app(engine, conversation_log=log, settings=settings)) as url:
            http = httpx2.Client(base_url=f"{url}/v1", timeout=60)
            first = http.post("/tasks", json={"input": "look something up"}).json()
            assert first["status"] == "running"
            refused = http.post("/tasks", json={"input": "and another thing"})
            assert refused.status_code == 429 and refused.headers["retry-after"]
            assert "requests and tasks" in refused.json()["error"]["message"]
            client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
            with pytest.raises(openai.RateLimitError):  # the running task holds the only place
                client.chat.completions.create(model="konsilium", messages=[{"role": "user", "content": "hi"}])
            gate.set()
            assert wait_for(lambda: http.get(f"/tasks/{first['id']}").json()["status"] == "done", 60)
            assert http.post("/tasks", json={"input": "now there is room", "wait": True}).json()["status"] == "done"
    finally:
        gate.set()
        log.close()
