"""Tasks kept in the conversation log's file (table `tasks`, migration m006): everything a task loop needs to be
watched, approved or continued from another process: goal, plan, steps, the conversation so far, the pending
action and the result. Each model call of a task is also an exchange of its own (endpoint `task`).

A task names the process that runs it (`options.runner`: pid and host). One left `running` by a process that is
gone (killed, crashed) is marked `interrupted` when a process next opens the tasks (`mark_interrupted`) or reads
that task: it can be resumed from its last saved step instead of staying `running` forever."""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from dataclasses import asdict, dataclass, field

STATUSES = ("running", "awaiting_approval", "interrupted", "done", "failed", "cancelled")
FINISHED = ("done", "failed", "cancelled")
_COLUMNS = (
    "id",
    "created",
    "updated",
    "goal",
    "model",
    "status",
    "plan",
    "steps",
    "messages",
    "pending",
    "result",
    "error",
    "options",
)
_JSON = ("plan", "steps", "messages", "pending", "options")


@dataclass
class Task:
    id: str
    goal: str
    model: str
    status: str = "running"
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    plan: list[str] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)
    messages: list[dict] = field(default_factory=list)
    pending: dict | None = None  # {"call": {id, name, arguments}, "tool", "why"}: waits for approve/reject
    result: str | None = None
    error: str | None = None
    options: dict = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def to_json(self, with_messages: bool = False) -> dict:
        data = asdict(self)
        if not with_messages:
            data.pop("messages")
        data["object"] = "task"
        data["used"] = used_tools(self.steps)
        data["notes"] = notes_read(self.steps)
        return data


def this_process() -> dict:
    """Who runs a task: kept in its options, so that another process can tell whether it is still running."""
    return {"pid": os.getpid(), "host": socket.gethostname()}


def process_gone(runner: dict | None) -> bool:
    """Whether the process in `runner` is no longer there (on this host; elsewhere we cannot tell: no)."""
    if not runner:
        return True  # from before runners were recorded: nothing runs it now
    if runner.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(runner["pid"]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's process has that pid: it exists
        return False
    return False


def new_task_id() -> str:
    return f"task_{uuid.uuid4().hex[:24]}"


def used_tools(steps: list[dict]) -> list[str]:
    """The tools and workers a task called, in first-use order."""
    return list(dict.fromkeys(step["tool"] for step in steps if step.get("kind") == "tool" and step.get("ok")))


def notes_read(steps: list[dict]) -> list[str]:
    """The wikilink targets of the notes a task found or read, in first-use order."""
    links: list[str] = []
    for step in steps:
        if step.get("kind") == "tool" and step.get("ok"):
            links.extend(step.get("links") or [])
    return list(dict.fromkeys(links))


class TaskStore:
    """Tasks in the conversation log (`memory.ConversationLog`), one row each, written whole on every change."""

    def __init__(self, conversation_log):
        self.log = conversation_log

    def save(self, task: Task) -> None:
        task.updated = time.time()
        row = {name: getattr(task, name) for name in _COLUMNS}
        for name in _JSON:
            row[name] = json.dumps(row[name], ensure_ascii=False) if row[name] is not None else None
        names, marks = ", ".join(row), ", ".join(f":{name}" for name in row)
        updates = ", ".join(f"{name} = excluded.{name}" for name in row if name != "id")
        sql = f"INSERT INTO tasks ({names}) VALUES ({marks}) ON CONFLICT (id) DO UPDATE SET {updates}"
        with self.log.transaction(f"save task {task.id}") as db:
            db.execute(sql, row)

    def get(self, task_id: str) -> Task | None:
        rows = self.log.query(f"SELECT {', '.join(_COLUMNS)} FROM tasks WHERE id = ?", (task_id,))
        return self._settled(_task(rows[0])) if rows else None

    def find(self, prefix: str) -> Task | None:
        """The task whose id is `prefix` or the only one starting with it (ids are long to type)."""
        task = self.get(prefix)
        if task is not None:
            return task
        sql = "SELECT id FROM tasks WHERE substr(id, 1, length(?1)) = ?1 LIMIT 2"
        rows = self.log.query(sql, (prefix,))
        return self.get(rows[0][0]) if len(rows) == 1 else None

    def mark_interrupted(self) -> list[Task]:
        """Tasks left `running` by a process that is gone, marked `interrupted` (resumable); they are returned."""
        rows = self.log.query(f"SELECT {', '.join(_COLUMNS)} FROM tasks WHERE status = 'running'")
        return [task for task in (self._settled(_task(row)) for row in rows) if task.status == "interrupted"]

    def _settled(self, task: Task) -> Task:
        """The task as it stands: `running` only while its process is there (one that died later than this
        process started is caught when its task is read)."""
        runner = task.options.get("runner")
        if task.status == "running" and process_gone(runner):
            who = f"process {runner['pid']}" if runner else "its process"
            task.status = "interrupted"
            task.error = f"{who} stopped while the task ran; resume it to go on from its last saved step"
            self.save(task)
        return task

    def list(self, limit: int = 20) -> list[Task]:
        rows = self.log.query(f"SELECT {', '.join(_COLUMNS)} FROM tasks ORDER BY created DESC LIMIT ?", (limit,))
        return [self._settled(_task(row)) for row in rows]


def _task(row: tuple) -> Task:
    values = dict(zip(_COLUMNS, row, strict=True))
    for name in _JSON:
        values[name] = json.loads(values[name]) if values[name] is not None else None
    values["options"] = values["options"] or {}
    return Task(**values)
