"""The council's task loop through a real server (`/v1/tasks`) with a second real konsilium server as its worker.

The council's engine is the fake (tests/fake_engine.py) with a script of tool calls; the worker is another live
server on a fake engine that echoes the question it got. The vault is real files; the index is a stand-in that
finds notes by their words (indexing is tested elsewhere). Under test: a whole task (search → read → ask a worker
→ report with links), approval (pause, approve, reject), cancel, the step bound, a worker that is slow or gone, a
worker's concurrency limit, write_note's confinement to the inbox, and `konsilium task` on the command line.
"""

from __future__ import annotations

import json
import threading

import httpx2 as httpx
import pytest
import yaml
from cli_runner import run
from fake_engine import FakeEngine, tool_call
from live_server import running_server

from konsilium.agents import ToolRegistry, VaultTools, Worker
from konsilium.config import WorkerSettings, open_home
from konsilium.grounding.knowledge import Passage
from konsilium.memory import ConversationLog
from konsilium.pipeline import TurnPipeline
from konsilium.roles.runtime import RoleService
from konsilium.server import create_app

NOTES = {
    "projects/n8n setup.md": "# n8n setup\n\nn8n runs in docker on port 5678.\n\n## Backups\n\nThe workflows are "
    "exported every night.\n",
    "health/Sleep.md": "# Sleep\n\nEight hours, no screens after ten.\n",
}


class WordIndex:
    """The index's search over the vault's files: notes holding a word of the query, as passages."""

    default_collection = "vault"
    min_relevance = 0.0

    def __init__(self, home, vault):
        self.home, self.vault = home, vault

    def collections(self) -> list[str]:
        return ["vault"]

    def search(self, query, k, *args, **kwargs) -> list[Passage]:
        words = {w.casefold() for w in query.split()}
        hits = []
        for path in sorted(self.vault.rglob("*.md")):
            text = path.read_text(encoding="utf-8")
            if words & {w.casefold().strip(".,#") for w in text.split()}:
                rel = path.relative_to(self.vault).as_posix()
                hits.append(Passage("vault", rel, path.stem, "", text, 0.9, 0.9))
        return hits[:k]


def write_home(root, vault, workers: list[dict], port: int = 8000):
    root.mkdir(parents=True, exist_ok=True)
    config = {"vault": {"paths": [str(vault)]}, "server": {"port": port}, "workers": workers}
    (root / "konsilium.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return open_home(root)


@pytest.fixture(scope="module")
def worker():
    """The second konsilium: answers `[base] notes=0 system=no | <the question>`."""
    engine = FakeEngine(context_length=4096)
    with running_server(create_app(engine, model_id="helper-model")) as url:
        yield engine, f"{url}/v1"


@pytest.fixture(scope="module")
def slow_worker():
    engine = FakeEngine(context_length=4096, chunk_delay_s=0.05)  # ~0.3 s for a short answer
    with running_server(create_app(engine, model_id="slow-model")) as url:
        yield engine, f"{url}/v1"


@pytest.fixture(scope="module")
def council(tmp_path_factory, worker, slow_worker):
    root = tmp_path_factory.mktemp("council")
    vault = root / "vault"
    for rel, text in NOTES.items():
        (vault / rel).parent.mkdir(parents=True, exist_ok=True)
        (vault / rel).write_text(text, encoding="utf-8")
    workers = [
        {"name": "helper", "base_url": worker[1], "model": "helper-model", "good_for": ["docker"]},
        {"name": "careful", "base_url": worker[1], "model": "helper-model", "confirm": True},
        {"name": "slow", "base_url": slow_worker[1], "model": "slow-model", "timeout_s": 0.1},
        {"name": "gone", "base_url": "http://127.0.0.1:1/v1", "model": "x", "timeout_s": 5},  # port 1: nobody listens
    ]
    home = write_home(root / "home", vault, workers)
    engine = FakeEngine(context_length=16384)
    log = ConversationLog(root / "home" / "memory" / "conversations.sqlite3")
    pipeline = TurnPipeline(engine, RoleService(engine, base_model_id="konsilium"), WordIndex(home, vault), log)
    with running_server(create_app(engine, pipeline=pipeline)) as url:
        http = httpx.Client(base_url=f"{url}/v1", timeout=120)  # a loaded machine is slow, not wrong
        yield SimpleCouncil(http, engine, log, vault, home, url, workers)
    log.close()


class SimpleCouncil:
    def __init__(self, http, engine, log, vault, home, url, workers):
        self.http, self.engine, self.log, self.vault, self.home, self.url = http, engine, log, vault, home, url
        self.workers = workers

    def start(self, goal: str, script: list[str], **options) -> dict:
        self.engine.script.clear()
        self.engine.script.extend(script)
        reply = self.http.post("/tasks", json={"input": goal, "wait": True, **options})
        assert reply.status_code == 200, reply.text
        return reply.json()

    def approve(self, task_id: str, approve: bool = True) -> dict:
        reply = self.http.post(f"/tasks/{task_id}/approve", json={"approve": approve, "wait": True})
        assert reply.status_code == 200, reply.text
        return reply.json()


def tools_of(task: dict) -> list[tuple[str, bool]]:
    return [(step["tool"], step["ok"]) for step in task["steps"] if step["kind"] == "tool"]


def test_a_task_searches_reads_asks_the_worker_and_reports_with_links(council, worker):
    script = [
        tool_call("search_vault", query="docker"),
        tool_call("read_note", wikilink="[[n8n setup#Backups]]"),
        tool_call("ask_helper", question="How do I back up n8n workflows?"),
        "Export the workflows nightly, as [[projects/n8n setup]] says.",
    ]
    task = council.start("How are my n8n workflows backed up?", script)
    assert task["status"] == "done" and task["id"].startswith("task_")
    assert task["plan"] and [s["kind"] for s in task["steps"]][:2] == ["plan", "model"]
    assert tools_of(task) == [("search_vault", True), ("read_note", True), ("ask_helper", True)]
    search, read, ask = (s for s in task["steps"] if s["kind"] == "tool")
    assert "[[projects/n8n setup]]" in search["result"]
    assert "exported every night" in read["result"] and "port 5678" not in read["result"]  # only #Backups
    assert read["links"] == ["projects/n8n setup#Backups"]
    # The worker (a real second server) got the question and its answer came back as the result.
    assert worker[0].last.messages[-1]["content"] == "How do I back up n8n workflows?"
    assert ask["result"] == "[base] notes=0 system=no | How do I back up n8n workflows?"
    assert task["result"].startswith("Export the workflows nightly")
    assert task["used"] == ["search_vault", "read_note", "ask_helper"]
    assert (
        "[[projects/n8n setup#Backups]]" in task["report"]
        and "Used: search_vault, read_note, ask_helper" in (task["report"])
    )
    # Each model call is an exchange in the log; the last one carries the worker's answer as a tool message.
    exchanges = [council.log.get(s["exchange"]) for s in task["steps"] if s["kind"] in ("plan", "model")]
    assert all(ex.endpoint == "task" and ex.timings["task"] == task["id"] for ex in exchanges)
    assert exchanges[1].output == "tool_calls" and exchanges[1].tool_calls[0]["function"]["name"] == "search_vault"
    assert any(m["role"] == "tool" and "How do I back up" in m["content"] for m in exchanges[-1].messages)
    # The first call was required to call a tool (grammar-constrained on engines that can).
    goal = "How are my n8n workflows backed up?"
    first = next(r for r in council.engine.received if r.tools and r.messages[-1]["content"] == goal)
    assert first.params.constraint is not None and first.params.constraint.forces_calls
    shown = council.http.get(f"/tasks/{task['id']}").json()
    assert shown["status"] == "done" and shown["steps"] == task["steps"]


def test_writing_a_note_waits_for_approval_and_never_overwrites(council):
    goal = "Save a summary of my n8n notes."
    call = tool_call("write_note", title="n8n/../../summary", text="n8n runs in docker.")
    task = council.start(goal, [call])
    assert task["status"] == "awaiting_approval"
    assert task["pending"]["tool"] == "write_note" and task["pending"]["arguments"]["title"] == "n8n/../../summary"
    inbox = council.vault / "Inbox"
    assert not inbox.exists()  # nothing written before the user says yes
    council.engine.script.extend(["Saved as [[Inbox/n8n summary]]."])
    done = council.approve(task["id"])
    assert done["status"] == "done" and [p.name for p in inbox.iterdir()] == ["n8n .. .. summary.md"]
    assert (inbox / "n8n .. .. summary.md").read_text(encoding="utf-8") == "n8n runs in docker.\n"
    assert done["notes"] == ["Inbox/n8n .. .. summary"] and done["steps"][-2].get("approved")
    assert [s["kind"] for s in done["steps"]] == ["plan", "model", "tool", "model"]  # planned once, not again
    # The same title again (pre-approved): a new note beside it, the first one untouched.
    again = council.start(goal, [tool_call("write_note", title="n8n/../../summary", text="other"), "ok"], approve=True)
    assert again["status"] == "done"
    assert sorted(p.name for p in inbox.iterdir()) == ["n8n .. .. summary (2).md", "n8n .. .. summary.md"]
    assert (inbox / "n8n .. .. summary.md").read_text(encoding="utf-8") == "n8n runs in docker.\n"


def test_a_rejected_action_is_not_run_and_the_model_is_told(council, worker):
    asked = len(worker[0].received)
    task = council.start("Ask the careful worker.", [tool_call("ask_careful", question="anything")])
    assert task["status"] == "awaiting_approval" and task["pending"]["why"] == "asks an outside server"
    council.engine.script.extend(["Understood, I did not ask."])
    done = council.approve(task["id"], approve=False)
    assert done["status"] == "done" and len(worker[0].received) == asked  # the worker was never called
    declined = [s for s in done["steps"] if s["kind"] == "tool"][-1]
    assert declined["declined"] and not declined["ok"] and "declined" in declined["result"]
    assert "declined" in council.engine.last.messages[-1]["content"]
    again = council.http.post(f"/tasks/{task['id']}/approve", json={"approve": True})
    assert again.status_code == 409  # nothing waits any more


def test_a_task_can_be_cancelled_and_unknown_ids_are_404(council):
    task = council.start("Write a note.", [tool_call("write_note", title="x", text="y")])
    assert task["status"] == "awaiting_approval"
    cancelled = council.http.post(f"/tasks/{task['id']}/cancel", json={}).json()
    assert cancelled["status"] == "cancelled" and cancelled["pending"] is None
    assert council.http.get(f"/tasks/{task['id']}").json()["status"] == "cancelled"
    assert task["id"] in [listed["id"] for listed in council.http.get("/tasks").json()["data"]]
    assert council.http.post(f"/tasks/{task['id']}/approve", json={}).status_code == 409
    assert not (council.vault / "Inbox" / "x.md").exists()
    missing = council.http.get("/tasks/task_nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "task_not_found"
    assert council.http.post("/tasks", json={"input": ""}).status_code == 400


def test_the_step_and_time_bounds_end_a_task_with_a_report_from_what_was_found(council):
    searches = [tool_call("search_vault", query="sleep")] * 5
    task = council.start("Keep searching.", searches, max_steps=2)
    assert task["status"] == "done"
    models = [s for s in task["steps"] if s["kind"] == "model"]
    assert len(models) == 3 and models[-1]["limit"] == "steps" and not models[-1]["calls"]  # 2 + the report
    assert "limit of 2 steps" in task["result"]  # the fake echoes the request for the final report
    assert council.engine.received[-1].tools is None  # the report is asked for without tools
    assert task["notes"] == ["health/Sleep"]
    # Out of time before the first call: the report at once, from nothing found.
    # (a bound no run can stay under: a millisecond had been enough for the plan step on a fast machine)
    hurried = council.start("Keep searching.", searches, max_seconds=1e-9)
    models = [s for s in hurried["steps"] if s["kind"] == "model"]
    assert hurried["status"] == "done" and len(models) == 1 and models[0]["limit"] == "time"


def test_a_slow_or_unreachable_worker_is_a_clear_error_in_its_step(council):
    both = tool_call("ask_slow", question="q") + tool_call("ask_gone", question="q")
    task = council.start("Ask both.", [both, "Neither answered."])
    assert task["status"] == "done" and task["result"] == "Neither answered."
    slow, gone = (s for s in task["steps"] if s["kind"] == "tool")
    assert not slow["ok"] and "did not answer within 0.1 s" in slow["result"]
    assert not gone["ok"] and "cannot be reached" in gone["result"]
    assert task["used"] == []  # failed calls are not listed as used


def test_a_worker_takes_at_most_max_concurrent_calls_at_once(slow_worker):
    settings = WorkerSettings(name="single", base_url=slow_worker[1], model="slow-model", max_concurrent=1)
    single = Worker(settings)
    results = [None, None]

    def ask(i):
        results[i] = single.ask({"question": f"q{i}"})

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(r.ok for r in results) and single.most_at_once == 1
    assert single.ask({"question": ""}).text.startswith("error: ")


def test_write_note_stays_in_the_inbox_and_never_overwrites(tmp_path):
    vault = tmp_path / "vault"
    vault.mkdir()
    home = write_home(tmp_path / "home", vault, [])
    tools = ToolRegistry(VaultTools(home).tools())
    empty = tools.run("write_note", {"title": "  ", "text": "t"})
    assert not empty.ok and "title must be a non-empty string" in empty.text
    for title in ("../../outside", "/etc/passwd", "..", ".hidden", "a|b#c^[[d]]", "C:\\x"):
        result = tools.run("write_note", {"title": title, "text": "t"})
        assert result.ok, result.text
        written = vault / (result.links[0] + ".md")
        assert written.parent == vault / "Inbox" and written.is_file()
    assert sorted(p.name for p in (vault / "Inbox").iterdir()) == [
        "C x.md",
        "Note.md",
        "a b c d.md",
        "etc passwd.md",
        "hidden.md",
        "outside.md",
    ]
    (vault / "Inbox" / "Kept.md").write_text("mine", encoding="utf-8")
    assert tools.run("write_note", {"title": "Kept", "text": "new"}).links == ["Inbox/Kept (2)"]
    assert (vault / "Inbox" / "Kept.md").read_text(encoding="utf-8") == "mine"
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (vault / "Inbox").rename(vault / "Old")
    (vault / "Inbox").symlink_to(outside)  # an inbox that leads out of the vault is refused
    refused = tools.run("write_note", {"title": "x", "text": "t"})
    assert not refused.ok and "not inside the vault" in refused.text and not list(outside.iterdir())


def test_konsilium_task_on_the_command_line_stops_for_approval_then_continues(council, tmp_path):
    port = int(council.url.rsplit(":", 1)[1])
    write_home(council.home.root, council.vault, council.workers, port=port)  # the CLI finds the server there
    council.engine.script.clear()
    council.engine.script.extend([tool_call("write_note", title="From the CLI", text="hello")])
    started = run(council.home.root, "task", "Write", "a", "note", "--json")
    task = json.loads(started.stdout)
    assert task["status"] == "awaiting_approval" and task["pending"]["tool"] == "write_note"
    council.engine.script.extend(["Wrote [[Inbox/From the CLI]]."])
    done = json.loads(run(council.home.root, "task", "approve", task["id"][:12], "--json").stdout)
    assert done["status"] == "done" and (council.vault / "Inbox" / "From the CLI.md").is_file()
    shown = run(council.home.root, "task", "show", task["id"])
    assert "Wrote [[Inbox/From the CLI]]." in shown.stdout and "Used: write_note" in shown.stdout
    missing = run(council.home.root, "task", "show", "task_nope", check=False)
    assert missing.returncode == 1 and "no task" in missing.stderr


def test_cancelling_a_running_task_stops_its_model_call(council):
    from live_server import wait_for

    council.engine.gate = threading.Event()  # the council's answer stalls after its first piece
    try:
        council.engine.script.clear()
        started = council.http.post("/tasks", json={"input": "Think slowly."}).json()
        assert started["status"] == "running"
        assert wait_for(lambda: council.engine.open_streams == 1)
        cancelled = council.http.post(f"/tasks/{started['id']}/cancel", json={}).json()
        assert cancelled["status"] == "cancelled"
        council.engine.gate.set()
        assert wait_for(lambda: council.engine.open_streams == 0)
        shown = council.http.get(f"/tasks/{started['id']}").json()
        assert shown["status"] == "cancelled" and shown["result"] is None
    finally:
        council.engine.gate = None


def test_the_readme_workers_example_is_valid_configuration():
    from pathlib import Path

    from konsilium.config import parse_settings

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    block = next(b for b in readme.split("```yaml\n")[1:] if b.startswith("agent:")).split("```")[0]
    settings = parse_settings(yaml.safe_load(block))
    assert settings.workers[0].name == "coder" and settings.agent.max_steps == 8


def test_a_chat_completion_may_opt_in_to_the_councils_read_only_tools(council):
    import openai

    client = openai.OpenAI(base_url=f"{council.url}/v1", api_key="x", max_retries=0, timeout=120)
    council.engine.script.clear()
    council.engine.script.extend([tool_call("search_vault", query="sleep"), "Eight hours, says [[health/Sleep]]."])
    ask = [{"role": "user", "content": "How long should I sleep?"}]
    answer = client.chat.completions.create(
        model="konsilium", messages=ask, extra_body={"konsilium": {"tools": "builtin"}}
    )
    content = answer.choices[0].message.content
    assert content.startswith("Eight hours, says [[health/Sleep]].") and "Used: search_vault" in content
    assert answer.model_extra["task"]["used"] == ["search_vault"] and answer.model_extra["sources"] == [
        {"note": "health/Sleep"}
    ]
    offered = {tool["function"]["name"] for tool in council.engine.last.tools}
    assert "search_vault" in offered and "write_note" not in offered and "ask_careful" not in offered  # no effects
    # Never mixed with the client's own tools, and only on request.
    tools = [{"type": "function", "function": {"name": "mine", "parameters": {"type": "object", "properties": {}}}}]
    with pytest.raises(openai.BadRequestError, match="cannot be combined"):
        client.chat.completions.create(
            model="konsilium", messages=ask, tools=tools, extra_body={"konsilium": {"tools": "builtin"}}
        )
    with pytest.raises(openai.BadRequestError, match="builtin"):
        client.chat.completions.create(model="konsilium", messages=ask, extra_body={"konsilium": {"tools": "all"}})
    plain = client.chat.completions.create(model="konsilium", messages=ask)
    assert council.engine.last.tools is None and "task" not in (plain.model_extra or {})
