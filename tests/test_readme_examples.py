"""The README's chat examples run as written against what `make run` gives: a real server (uvicorn, the same
assembly as `konsilium serve`) over a home whose only index is the default collection, as `make run` builds it.

The generator is the fake engine (tests/fake_engine.py); the index, the log and the roles are real. Roles come from
the README's own konsilium.yaml example (without its adapters, which the fake engine cannot apply). curl lines are
expanded by bash itself (variables, quoting) and sent as curl sends them; python blocks are executed as they stand.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import httpx2
import pytest
import yaml
from fake_engine import FakeEngine
from live_server import running_server

README = Path(__file__).resolve().parents[1] / "README.md"
README_URL = "http://127.0.0.1:8000/v1"  # the address the README's examples use (`make run`'s default)

NOTES = {
    "hardware/видеокарта.md": "# Видеокарта\n\nУ меня RTX 4090 с 24 ГБ видеопамяти: на ней идёт локальная модель.\n",
    "sport/марафон.md": "# Марафон\n\nТренировки перед марафоном: длинные пробежки по воскресеньям, отдых и сон.\n",
}


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", text, flags=re.S | re.M)


def curl_examples(text: str) -> list[SimpleNamespace]:
    """Every `curl ... -d BODY` of the README's bash blocks, with its arguments as bash passes them."""
    found = []
    for block in blocks(text, "bash"):
        lines = block.replace("\\\n", " ").splitlines()
        assignments = [line for line in lines if re.match(r"^[A-Za-z_]\w*=", line)]
        for line in lines:
            if not line.startswith("curl ") or " -d " not in line:
                continue
            script = "\n".join([*assignments, "printf '%s\\0' " + line.removeprefix("curl ")])
            out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout
            found.append(SimpleNamespace(line=line, args=out.split("\0")[:-1]))
    return found


def as_request(args: list[str]) -> SimpleNamespace:
    """What curl sends for these arguments (only the options the README uses)."""
    url, headers, body, i = None, {}, None, 0
    while i < len(args):
        arg = args[i]
        if arg in ("-H", "--header"):
            name, _, value = args[i + 1].partition(":")
            headers[name.strip().lower()] = value.strip()
            i += 2
        elif arg in ("-d", "--data"):
            body = args[i + 1]
            i += 2
        elif arg == "-s":
            i += 1
        elif arg.startswith("-"):
            raise AssertionError(f"the test does not know curl's {arg}: teach as_request")
        else:
            url, i = arg, i + 1
    headers.setdefault("content-type", "application/x-www-form-urlencoded")  # curl's default for -d
    return SimpleNamespace(path=urlsplit(url if "://" in url else f"http://{url}").path, headers=headers, body=body)


@pytest.fixture(scope="module")
def readme() -> str:
    return README.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def server(readme, tmp_path_factory):
    """`make run` on a two-note vault: the default collection indexed, roles from the README's yaml, served."""
    from konsilium.config import open_home
    from konsilium.index.indexer import Indexer
    from konsilium.pipeline.assemble import assemble
    from konsilium.server import create_app
    from konsilium.server.settings import ServerSettings

    root = tmp_path_factory.mktemp("readme")
    vault = root / "vault"
    for name, text in NOTES.items():
        (vault / name).parent.mkdir(parents=True, exist_ok=True)
        (vault / name).write_text(text, encoding="utf-8")
    example = next(yaml.safe_load(block) for block in blocks(readme, "yaml") if "roles:" in block)
    roles = {name: {k: v for k, v in role.items() if k != "adapters"} for name, role in example["roles"].items()}
    (root / "home").mkdir()
    (root / "home" / "konsilium.yaml").write_text(yaml.safe_dump({"roles": roles}), encoding="utf-8")
    home = open_home(root / "home")
    Indexer(home, roots=[vault]).run([vault])  # what `make run` does: the default collection, embedder `auto`
    engine = FakeEngine(context_length=8192)
    app = create_app(engine, pipeline=assemble(home, engine, warm_adapters=False), settings=ServerSettings())
    with running_server(app) as url:
        yield url


def test_the_readme_has_the_chat_examples_this_test_runs(readme):
    assert sum("/v1/chat/completions" in example.line for example in curl_examples(readme)) >= 4
    assert any("/v1/responses" in example.line for example in curl_examples(readme))
    assert any("chat.completions.create" in block for block in blocks(readme, "python"))


def test_every_curl_chat_example_runs_as_written(readme, server):
    for example in curl_examples(readme):
        request = as_request(example.args)
        if request.path not in ("/v1/chat/completions", "/v1/responses"):
            continue
        response = httpx2.post(server + request.path, content=request.body, headers=request.headers, timeout=120)
        assert response.status_code == 200, f"{example.line}\n-> {response.status_code} {response.text}"
        body = json.loads(request.body)
        answer = response.json()
        if request.path == "/v1/responses":
            assert answer["object"] == "response" and answer["status"] == "completed", example.line
            assert "[base]" in answer["output"][0]["content"][0]["text"] and answer["sources"], example.line
            continue
        assert answer["model"] == body["model"] and answer["choices"], example.line
        if body.get("dual"):
            assert [choice["role"]["label"] for choice in answer["choices"]][0] == "neutral", example.line


def test_every_post_example_sends_json(readme):
    # The server takes POST bodies only as application/json (what stops cross-site form posts): curl's default
    # content-type would get a 400.
    for example in curl_examples(readme):
        request = as_request(example.args)
        assert request.headers["content-type"] == "application/json", example.line
        json.loads(request.body)


def test_every_python_chat_example_runs_as_written(readme, server):
    for block in blocks(readme, "python"):
        if "chat.completions.create" not in block:
            continue
        assert README_URL in block, "the example talks to another address than `make run` serves"
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(block.replace(README_URL, f"{server}/v1"), str(README), "exec"), {})
        assert "[base]" in printed.getvalue()  # the fake engine answered
        assert "видеокарта.md" in printed.getvalue()  # the sources it printed: grounded in the indexed note
