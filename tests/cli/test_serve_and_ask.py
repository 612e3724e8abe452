"""`konsilium serve` and `konsilium ask` as real processes: the log survives kill -9, answers cite notes."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import httpx2
import openai
from shared_data import SAMPLE_VAULT, needs

from konsilium.memory import ConversationLog, log_path

KONSILIUM = [sys.executable, "-m", "konsilium.cli.main"]
STEPS = SAMPLE_VAULT / "0_chatgpt" / "AI" / "2025-06-29 - 1LTM_4"


def run(home, *args, check=True, env=None):
    env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [*KONSILIUM, "--home", str(home), *args], capture_output=True, text=True, env=env, timeout=600
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"konsilium {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


def test_kill_9_of_the_server_loses_no_acknowledged_exchange(tmp_path):
    port = free_port()
    server = subprocess.Popen(
        [*KONSILIUM, "--home", str(tmp_path), "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx2.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            assert server.poll() is None, server.stderr.read()
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.3)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0, timeout=120)
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


def _home(root):
    from konsilium.config import open_home

    return open_home(root)


@needs(SAMPLE_VAULT)
def test_ask_answers_from_the_notes_streams_and_is_logged(tmp_path):
    vault = tmp_path / "vault"
    vault.mkdir()
    shutil.copy2(STEPS / "25_под_мою_видеокарта_как.md", vault)
    shutil.copy2(STEPS / "08_поищи_это_про_n8n.md", vault)
    home = tmp_path / "home"
    run(home, "index", str(vault), "--json")
    result = json.loads(run(home, "ask", "Какая у меня видеокарта?", "--json", "--max-tokens", "6", "--k", "1").stdout)
    assert set(result) >= {"id", "answer", "sources", "finish_reason", "usage"}
    assert [s["note"] for s in result["sources"]] == ["25_под_мою_видеокарта_как.md"]
    assert re.search(r"^\[\^1\]: \[\[25_под_мою_видеокарта_как(#[^\]]+)?\]\]$", result["answer"], flags=re.M)
    shown = json.loads(run(home, "history", "show", result["id"], "--json").stdout)
    assert shown["response"] == result["answer"] and shown["endpoint"] == "ask"
    plain = run(home, "ask", "Какая у меня видеокарта?", "--max-tokens", "4", "--no-retrieval")
    assert plain.stdout.strip() and "[^1]" not in plain.stdout
    empty = run(home, "ask", "  ", check=False)
    assert empty.returncode == 2 and "empty" in empty.stderr
