"""The task loop: the council plans, calls tools and workers, reads their results, and reports.

    plan (one JSON answer: the steps) → [model call with the tools → its tool calls run → results fed back]* →
    the final answer (prose, with the [[wikilinks]] of the notes it used)

Bounded: at most `max_steps` model calls and `max_seconds` of running; when either runs out, one last call without
tools asks for the report from what was gathered. Safe with a small model: the first call must call a tool
without effects (grammar-constrained where the engine can; string arguments have a maxLength so they end in time),
a call to a tool that does not exist or with bad arguments is an error result the model reads, and nothing with
effects runs without approval: such a call (write_note, a worker marked `confirm: true`) pauses the task as
`awaiting_approval` until `approve(id, True/False)`, unless the task was started pre-approved. Read-only calls of
one answer run at once, side by side.

Every model call goes through the turn pipeline (endpoint `task`, logged as an exchange with its tool calls);
the task itself (plan, steps, messages, pending action, result) is saved after every change (`store.TaskStore`),
so `konsilium task approve ID` in another process continues where the server stopped, and a task whose process
died (`interrupted`) resumes from its last saved step (`resume`). A task stopped by anything but its user (a
server shutting down) is `interrupted` too.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ..engines import ConstraintSupport, SamplingParams
from ..engines.protocol import Constraint, constraint_support_of
from ..errors import RequestError
from ..pipeline import TurnRequest
from ..pipeline.cancel import Cancellation, TurnCancelled
from ..structured.request import ToolUse
from .store import Task, TaskStore, new_task_id, notes_read, this_process, used_tools
from .tools import ToolRegistry, ToolResult

log = logging.getLogger("konsilium.tasks")
RESULT_CHARS = 4000  # of a tool's result kept in a step (the model gets it whole)
PLAN_SCHEMA = {
    "type": "object",
    "properties": {
        "steps": {"type": "array", "items": {"type": "string", "maxLength": 160}, "minItems": 1, "maxItems": 6}
    },
    "required": ["steps"],
}
SYSTEM = (
    "You are the council, carrying out a task for the user with tools. Find what you need: search the notes, read "
    "the notes that matter, ask a worker when it is better at it. Call one or more tools in each answer. When you "
    "have enough, answer without a tool call: the final report, in prose, naming the notes you used as [[wikilinks]]."
)
PLAN_PROMPT = 'Plan how to do this task with the tools {tools}. Answer with JSON: {{"steps": [short steps]}}.'
FINAL_PROMPT = "No more tool calls ({why}). Write the final report now from what you found, with [[wikilinks]]."
USER_CANCEL = "the task was cancelled"


class TaskRunner:
    """Runs tasks over one pipeline and tool registry; safe to use from several threads (one thread per task)."""

    def __init__(self, pipeline, registry: ToolRegistry, store: TaskStore, settings, model: str | None = None):
        self.pipeline, self.registry, self.store, self.settings = pipeline, registry, store, settings
        self.model = model or pipeline.roles.base_model_id
        self._running: dict[str, Cancellation] = {}
        self._lock = threading.Lock()

    # --- what callers do ------------------------------------------------------------------------------------

    def create(
        self,
        goal: str,
        model: str | None = None,
        approve: bool = False,
        max_steps: int | None = None,
        max_seconds: float | None = None,
        client: str | None = None,
        conversation: list[dict] | None = None,
    ) -> Task:
        """A new task (saved, not yet run); `conversation`: the chat it continues (its last user message: the goal)."""
        if not isinstance(goal, str) or not goal.strip():
            raise RequestError("the task is empty: say what the council should do", param="input")
        if max_steps is not None and not 1 <= max_steps <= 100:
            raise RequestError("max_steps must be between 1 and 100", param="max_steps")
        options = {
            "max_steps": max_steps or self.settings.max_steps,
            "max_seconds": float(max_seconds or self.settings.max_seconds),
            "approve": bool(approve),
            "client": client,
            "model_calls": 0,
            "spent_s": 0.0,
            "runner": this_process(),
        }
        task = Task(id=new_task_id(), goal=goal.strip(), model=model or self.model, options=options)
        task.messages = [{"role": "system", "content": SYSTEM}, *(conversation or [{"role": "user", "content": goal}])]
        self.store.save(task)
        return task

    def get(self, task_id: str) -> Task | None:
        return self.store.find(task_id)

    def approve(self, task_id: str, approved: bool) -> Task:
        """Decide the pending action: run it (approved) or tell the model the user declined; then run on."""
        task = self._existing(task_id)
        if task.status != "awaiting_approval" or not task.pending:
            raise RequestError(f"task {task.id} is {task.status}: nothing waits for approval", code="not_pending")
        with self._claim(task.id):
            pending = task.pending
            task.pending, task.status = None, "running"
            call = pending["call"]
            if approved:
                self._run_calls(task, [call], approved=True)
            else:
                result = ToolResult.error("the user declined this action; do not try it again")
                self._add_result(task, call, result, declined=True)
            self._queue(task, pending.get("later") or [])
            self.store.save(task)
        return task

    def cancel(self, task_id: str) -> Task:
        task = self._existing(task_id)
        if task.finished:
            return task
        with self._lock:
            running = self._running.get(task.id)
        if running is not None:
            running.set(USER_CANCEL)
        task.status, task.pending, task.error = "cancelled", None, "cancelled by the user"
        self.store.save(task)
        return task

    def resume(self, task_id: str) -> Task:
        """An interrupted task made `running` again in this process, from its last saved step (the caller runs it);
        RequestError when it is not interrupted or its saved state cannot go on."""
        task = self._existing(task_id)
        if task.status != "interrupted":
            raise RequestError(
                f"task {task.id} is {task.status}: only an interrupted task resumes", code="not_resumable"
            )
        unanswered = _unanswered_calls(task.messages)
        if unanswered:
            raise RequestError(
                f"task {task.id} cannot resume: its last saved step asked for {', '.join(unanswered)} and whether "
                "that ran is not recorded; start a new task",
                code="not_resumable",
            )
        task.status, task.error = "running", None
        task.options["runner"] = this_process()
        self.store.save(task)
        return task

    def run(self, task_id: str, cancel: Cancellation | None = None) -> Task:
        """Run the task until it is done, failed, cancelled or waits for approval; the task as it then stands.
        `cancel`: the caller's (a server's in-flight slot, which its shutdown sets)."""
        task = self._existing(task_id)
        if task.finished or task.status in ("awaiting_approval", "interrupted"):
            return task
        with self._claim(task.id, cancel) as cancel:
            started = time.monotonic()
            task.options["runner"] = this_process()
            try:
                self._loop(task, cancel, started)
            except TurnCancelled:
                task.status, task.error = "cancelled", cancel.reason or "cancelled"
            except Exception as exc:  # a broken engine or log: the task says why instead of hanging
                log.exception("task %s failed", task.id)
                task.status, task.error = "failed", str(exc) or type(exc).__name__
            if cancel.is_set and task.status != "cancelled":
                task.status, task.pending = "cancelled", None
            if cancel.is_set and cancel.reason != USER_CANCEL:  # stopped by a shutdown, not its user: resumable
                task.status, task.error = "interrupted", cancel.reason
            task.options["spent_s"] = round(task.options.get("spent_s", 0.0) + time.monotonic() - started, 3)
            self.store.save(task)
        return task

    # --- the loop -----------------------------------------------------------------------------------------------

    def _loop(self, task: Task, cancel: Cancellation, started: float) -> None:
        options = task.options
        if not any(step["kind"] == "plan" for step in task.steps):  # once: not again after an approval
            self._plan(task, cancel)
        while True:
            if cancel.is_set:
                raise cancel.error()
            spent = options.get("spent_s", 0.0) + time.monotonic() - started
            if options["model_calls"] >= options["max_steps"]:
                return self._final(task, cancel, f"the limit of {options['max_steps']} steps is reached", "steps")
            if spent >= options["max_seconds"]:
                return self._final(task, cancel, f"the limit of {options['max_seconds']:g} s is reached", "time")
            answer = self._call_model(task, cancel, tools=True)
            if not answer.tool_calls:
                task.result, task.status = (answer.content or "").strip(), "done"
                return
            calls = [call.to_json() for call in answer.tool_calls]
            now = [c for c in calls if not self._needs_approval(task, c)]
            later = [c for c in calls if self._needs_approval(task, c)]
            self._run_calls(task, now)
            self._queue(task, later)
            self.store.save(task)
            if task.status == "awaiting_approval":
                return

    def _plan(self, task: Task, cancel: Cancellation) -> None:
        names = ", ".join(self.registry.tools)
        messages = [
            {"role": "system", "content": PLAN_PROMPT.format(tools=names)},
            {"role": "user", "content": task.goal},
        ]
        can_constrain = constraint_support_of(self.pipeline.engine) is not ConstraintSupport.NONE
        constraint = Constraint(json_schema=PLAN_SCHEMA) if can_constrain else None
        result, record = self._generate(task, messages, cancel, constraint=constraint)
        task.plan = _plan_steps(result.content or "")
        task.steps.append({"n": len(task.steps) + 1, "kind": "plan", "plan": task.plan, "exchange": record.id})
        self.store.save(task)

    def _call_model(self, task: Task, cancel: Cancellation, tools: bool):
        specs = self.registry.specs() if tools else []
        first = task.options["model_calls"] == 0
        can_constrain = constraint_support_of(self.pipeline.engine) is not ConstraintSupport.NONE
        force = tools and first and can_constrain  # a small model must start by looking something up:
        lookups = tuple(self.registry.read_only().specs())  # a call to a tool without effects
        tool_use = ToolUse(tuple(specs), "required" if force else "auto", True) if specs else None
        constraint = Constraint(tools=lookups, parallel=True) if force and lookups else None
        result, record = self._generate(task, task.messages, cancel, tool_use=tool_use, constraint=constraint)
        task.options["model_calls"] += 1
        calls = [call.to_json() for call in result.tool_calls]
        task.steps.append(
            {
                "n": len(task.steps) + 1,
                "kind": "model",
                "exchange": record.id,
                "text": result.content,
                "calls": [{"name": c["function"]["name"], "arguments": c["function"]["arguments"]} for c in calls],
            }
        )
        message = {"role": "assistant", "content": result.content}
        if calls:
            message["tool_calls"] = calls
        task.messages.append(message)
        return result

    def _generate(self, task, messages, cancel, tool_use=None, constraint=None):
        params = SamplingParams(max_tokens=None, temperature=0.0, constraint=constraint)
        request = TurnRequest(
            endpoint="task",
            model=task.model,
            params=params,
            messages=[dict(m) for m in messages],
            retrieval=False,  # the council searches with its tools; the notes it finds come back as results
            memory=False,
            client=task.options.get("client") or "task",
            tool_use=tool_use,
        )
        turn = self.pipeline.prepare(request)
        turn.record.timings["task"] = task.id
        result = self.pipeline.generate(turn, cancel)[0]
        return result, turn.record

    def _final(self, task: Task, cancel: Cancellation, why: str, limit: str) -> None:
        task.messages.append({"role": "user", "content": FINAL_PROMPT.format(why=why)})
        answer = self._call_model(task, cancel, tools=False)
        task.steps[-1]["limit"] = limit
        task.result, task.status = (answer.content or "").strip(), "done"

    # --- tool calls ---------------------------------------------------------------------------------------------

    def _needs_approval(self, task: Task, call: dict) -> bool:
        tool = self.registry.get(call["function"]["name"])
        return tool is not None and tool.effect is not None and not task.options.get("approve")

    def _queue(self, task: Task, calls: list[dict]) -> None:
        """Effectful calls wait for approval one at a time; the first one becomes the pending action."""
        if not calls:
            return
        first, rest = calls[0], calls[1:]
        tool = self.registry.get(first["function"]["name"])
        task.pending = {
            "call": first,
            "tool": first["function"]["name"],
            "arguments": _arguments(first),
            "why": tool.effect if tool is not None else "has effects",
            "later": rest,
        }
        task.status = "awaiting_approval"

    def _run_calls(self, task: Task, calls: list[dict], approved: bool = False) -> None:
        """Run calls side by side (they are read-only, or approved), each one's result fed back in call order."""
        if not calls:
            return
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=min(8, len(calls))) as pool:
            results = list(
                pool.map(lambda c: self.registry.run(c["function"]["name"], c["function"]["arguments"]), calls)
            )
        elapsed = round((time.perf_counter() - started) * 1000, 2)
        for call, result in zip(calls, results, strict=True):
            self._add_result(task, call, result, ms=elapsed, approved=approved)

    def _add_result(self, task: Task, call: dict, result: ToolResult, ms=None, approved=False, declined=False):
        step = {
            "n": len(task.steps) + 1,
            "kind": "tool",
            "tool": call["function"]["name"],
            "arguments": _arguments(call),
            "call_id": call["id"],
            "ok": result.ok,
            "result": result.text[:RESULT_CHARS],
            "links": result.links,
        }
        if ms is not None:
            step["ms"] = ms
        if approved:
            step["approved"] = True
        if declined:
            step["declined"] = True
        task.steps.append(step)
        task.messages.append({"role": "tool", "tool_call_id": call["id"], "content": result.text})

    # --- bookkeeping --------------------------------------------------------------------------------------------

    def _existing(self, task_id: str) -> Task:
        task = self.store.find(task_id)
        if task is None:
            raise TaskNotFound(f"no task {task_id!r}")
        return task

    class _Claim:
        def __init__(self, runner, task_id, cancel=None):
            self.runner, self.task_id, self.cancel = runner, task_id, cancel or Cancellation()

        def __enter__(self) -> Cancellation:
            with self.runner._lock:
                if self.task_id in self.runner._running:
                    raise RequestError(f"task {self.task_id} is already running", code="task_running")
                self.runner._running[self.task_id] = self.cancel
            return self.cancel

        def __exit__(self, *exc) -> None:
            with self.runner._lock:
                self.runner._running.pop(self.task_id, None)

    def _claim(self, task_id: str, cancel: Cancellation | None = None) -> _Claim:
        return TaskRunner._Claim(self, task_id, cancel)


class TaskNotFound(ValueError):
    """No task has that id (or id prefix)."""


def report(task: Task) -> str:
    """The final report as a user reads it: the answer, then what was used and the notes read."""
    lines = [task.result or task.error or f"(task {task.status})"]
    used, notes = used_tools(task.steps), notes_read(task.steps)
    if used or notes:
        lines += ["", "---"]
    if used:
        lines.append("Used: " + ", ".join(used))
    if notes:
        lines.append("Notes: " + " · ".join(f"[[{target}]]" for target in notes))
    return "\n".join(lines)


def _arguments(call: dict):
    text = call["function"]["arguments"]
    try:
        return json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return text


def _unanswered_calls(messages: list[dict]) -> list[str]:
    """The tool calls of the last assistant message that have no result after it (none in a state saved whole)."""
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].get("role") == "assistant":
            answered = {m.get("tool_call_id") for m in messages[index + 1 :] if m.get("role") == "tool"}
            calls = messages[index].get("tool_calls") or []
            return [c["function"]["name"] for c in calls if c.get("id") not in answered]
    return []


def _plan_steps(text: str) -> list[str]:
    """The plan's steps from the model's JSON (or, from a model that could not be constrained, its lines)."""
    try:
        value = json.loads(text)
        steps = value.get("steps") if isinstance(value, dict) else None
        if isinstance(steps, list):
            return [str(step).strip() for step in steps if str(step).strip()][:20]
    except ValueError:
        pass
    return [line.strip(" -*0123456789.") for line in text.splitlines() if line.strip(" -*0123456789.")][:20]
