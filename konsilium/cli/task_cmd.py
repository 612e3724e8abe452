"""`konsilium task "…"`: the council plans, calls its tools and workers, and reports with links.

    konsilium task "Collect what my notes say about n8n into a summary note"    (asks y/n before any effect)
    konsilium task "…" --approve            every action approved in advance
    konsilium task "…" --json               stops at the first action to approve and prints it with the task id
    konsilium task approve ID | reject ID | cancel ID | show ID | resume ID

A task whose process died (a killed server) shows as `interrupted`; `konsilium task resume ID` goes on from its
last saved step.

A running konsilium server does the work (`/v1/tasks`, the model is loaded once there); without one the model is
loaded here. Either way the task, its steps and its model calls are kept in the conversation log.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated

import typer

from .output import HomeOption, JsonOption, LocalOption, err, fail, home_from, out, print_json, user_errors

ACTIONS = ("approve", "reject", "cancel", "show", "resume")
POLL_S = 0.25  # how often a running task is looked at


def task(
    ctx: typer.Context,
    words: Annotated[
        list[str],
        typer.Argument(help="The task, or: approve ID, reject ID, cancel ID, show ID, resume ID."),
    ],
    approve: Annotated[bool, typer.Option("--approve", help="Approve every action with effects in advance.")] = False,
    max_steps: Annotated[
        int | None, typer.Option("--max-steps", min=1, max=100, help="Model calls at most (default: agent.max_steps).")
    ] = None,
    local: LocalOption = False,
    home: HomeOption = None,
    as_json: JsonOption = False,
):
    """Let the council do a task with its tools and workers; actions with effects wait for your approval."""
    action = words[0] if len(words) == 2 and words[0] in ACTIONS else None
    goal = " ".join(words).strip()
    if not goal:
        fail("the task is empty: say what the council should do", as_json, code=2)
    with user_errors(as_json):
        h = home_from(ctx, home)
        tasks = _tasks(h, local, as_json)
        if action == "show":
            return _show(tasks.show(words[1]), as_json)
        if action == "cancel":
            return _show(tasks.cancel(words[1]), as_json)
        if action == "resume":
            view = _follow(tasks, tasks.resume(words[1]), as_json)
        elif action in ("approve", "reject"):
            view = _follow(tasks, tasks.approve(words[1], action == "approve"), as_json)
        else:
            view = _follow(tasks, tasks.start(goal, approve, max_steps), as_json)
        while view["status"] == "awaiting_approval":
            if as_json or not sys.stdin.isatty():
                break  # a program decides: `konsilium task approve ID` continues
            pending = view["pending"]
            err.print(f"the council wants to call {pending['tool']}: {pending['why']}", highlight=False, markup=False)
            err.print(f"  arguments: {pending['arguments']}", highlight=False, markup=False)
            view = _follow(
                tasks, tasks.approve(view["id"], typer.confirm("approve?", default=False, err=True)), as_json
            )
        _show(view, as_json)


def _follow(tasks, view: dict, as_json: bool) -> dict:
    """Poll a running task until it stops, telling each step on stderr as it happens; Ctrl-C cancels it."""
    shown = len(view["steps"])
    try:
        while True:
            if not as_json:
                for step in view["steps"][shown:]:
                    err.print(_step_line(step), highlight=False, markup=False)
            shown = len(view["steps"])
            if view["status"] != "running":
                return view
            time.sleep(POLL_S)
            view = tasks.show(view["id"])
    except KeyboardInterrupt:
        tasks.cancel(view["id"])
        err.print(f"cancelled task {view['id']}", highlight=False, markup=False)
        raise typer.Exit(130) from None


def _step_line(step: dict) -> str:
    if step["kind"] == "plan":
        return "plan: " + "; ".join(step["plan"]) if step["plan"] else "plan: (none)"
    if step["kind"] == "model":
        calls = ", ".join(call["name"] for call in step["calls"])
        return f"step {step['n']}: " + (f"calls {calls}" if calls else "writes the report")
    mark = "ok" if step["ok"] else "failed"
    arguments = json.dumps(step["arguments"], ensure_ascii=False)[:120]
    result = " ".join(step["result"].split())[:160]
    return f"  {step['tool']} {arguments} → {mark}: {result}"


def _show(view: dict, as_json: bool) -> None:
    if as_json:
        print_json(view)
        return
    if view["status"] == "awaiting_approval":
        pending = view["pending"]
        out.print(
            f"task {view['id']} waits for approval: {pending['tool']} ({pending['why']})\n"
            f"  arguments: {pending['arguments']}\n"
            f"  konsilium task approve {view['id']}   or   konsilium task reject {view['id']}",
            highlight=False,
            markup=False,
        )
        return
    if view["status"] == "done":
        out.print(view["report"], highlight=False, markup=False)
        return
    out.print(f"task {view['id']} is {view['status']}: {view.get('error') or ''}", highlight=False, markup=False)
    if view["status"] == "interrupted":
        out.print(f"  konsilium task resume {view['id']}", highlight=False, markup=False)
    if view["status"] == "failed":
        raise typer.Exit(1)


def _tasks(home, local: bool, as_json: bool):
    from .ask_remote import server_address

    found = None if local else server_address(home)
    if found is not None:
        if not as_json:
            err.print(f"the server at {found[0]} runs the task", highlight=False, markup=False)
        return RemoteTasks(*found)
    if not as_json:
        err.print(f"loading the {home.config.engine.kind} engine…", highlight=False, markup=False)
    return LocalTasks(home)


class RemoteTasks:
    """`/v1/tasks` of a running server (which runs the task on while this process polls it)."""

    def __init__(self, base: str, headers: dict):
        import httpx2

        self.http = httpx2.Client(base_url=base, headers=headers, timeout=None)

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        reply = self.http.request(method, path, json=body)
        data = reply.json()
        if reply.status_code != 200:
            raise ValueError((data.get("error") or {}).get("message") or f"HTTP {reply.status_code}")
        return data

    def start(self, goal: str, approve: bool, max_steps: int | None) -> dict:
        body = {"input": goal, "approve": approve, "max_steps": max_steps}
        return self._call("POST", "/tasks", {k: v for k, v in body.items() if v is not None})

    def approve(self, task_id: str, approved: bool) -> dict:
        return self._call("POST", f"/tasks/{task_id}/approve", {"approve": approved})

    def cancel(self, task_id: str) -> dict:
        return self._call("POST", f"/tasks/{task_id}/cancel", {})

    def resume(self, task_id: str) -> dict:
        return self._call("POST", f"/tasks/{task_id}/resume", {})

    def show(self, task_id: str) -> dict:
        return self._call("GET", f"/tasks/{task_id}")


class LocalTasks:
    """The task loop in this process, over the configured engine."""

    def __init__(self, home):
        from ..agents import task_runner
        from ..pipeline.assemble import assemble, load_configured_engine

        self.home = home
        self._runner = None
        self._plain = None
        self._make = lambda: task_runner(assemble(home, load_configured_engine(home), warm_adapters=False), home)

    @property
    def runner(self):
        if self._runner is None:
            self._runner = self._make()
        return self._runner

    def _view(self, task) -> dict:
        from ..agents import report

        data = task.to_json()
        data["report"] = report(task) if task.status == "done" else None
        return data

    def _store(self):
        """The runner's store once the model is loaded; else the log alone (showing a task needs no model)."""
        if self._runner is not None:
            return self._runner.store
        if self._plain is None:
            from ..agents import TaskStore
            from ..memory import ConversationLog

            self._plain = TaskStore(ConversationLog.open_home(self.home))
            self._plain.mark_interrupted()  # as the runner does: a task whose process died is not running
        return self._plain

    def start(self, goal: str, approve: bool, max_steps: int | None) -> dict:
        task = self.runner.create(goal, approve=approve, max_steps=max_steps, client="cli")
        return self._go_on(task)

    def approve(self, task_id: str, approved: bool) -> dict:
        return self._go_on(self.runner.approve(task_id, approved))

    def resume(self, task_id: str) -> dict:
        return self._go_on(self.runner.resume(task_id))

    def _go_on(self, task) -> dict:
        """Run the task on in a thread of this process, as a server would; the caller polls `show`."""
        import threading

        if task.status == "running":
            threading.Thread(target=self.runner.run, args=(task.id,), daemon=True, name="task").start()
        return self._view(task)

    def cancel(self, task_id: str) -> dict:
        if self._runner is not None:  # running here: its model call is stopped too
            return self._view(self._runner.cancel(task_id))
        store = self._store()
        task = store.find(task_id)
        if task is None:
            raise ValueError(f"no task {task_id!r}")
        if not task.finished:
            task.status, task.pending, task.error = "cancelled", None, "cancelled by the user"
            store.save(task)
        return self._view(task)

    def show(self, task_id: str) -> dict:
        task = self._store().find(task_id)
        if task is None:
            raise ValueError(f"no task {task_id!r}")
        return self._view(task)
