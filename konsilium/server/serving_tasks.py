"""`/v1/tasks`: the council's task loop for n8n and other clients (start, poll, approve, cancel).

    POST /v1/tasks                {"input": "…", "model"?, "approve"?: false, "max_steps"?, "wait"?: false}
    GET  /v1/tasks                the latest tasks
    GET  /v1/tasks/{id}           status (running, awaiting_approval, done, failed, cancelled), plan, steps,
                                  pending action, result and the report with [[wikilinks]]
    POST /v1/tasks/{id}/approve   {"approve": true} runs the pending action, false declines it; the task goes on
    POST /v1/tasks/{id}/cancel    {}
    POST /v1/tasks/{id}/resume    {"wait"?: false} an `interrupted` task (its process died) goes on from its last
                                  saved step

A task runs in a thread of its own: a start answers at once with status `running` (poll it), or with `wait: true`
once the task is done or waits for approval. `approve: true` at the start approves every action in advance. A
running task counts against `server.max_pending_requests` like a request: past it, a start, approval or resume is
a 429 (the task is kept, not run: approve or resume it again later).

A chat completion may also use the council's tools: `konsilium: {"tools": "builtin"}` runs the conversation as a
task with the read-only tools (search, read, memories, workers without `confirm`) and answers with its report. It
is opt-in per request so that a client's own tools (n8n's) are never mixed with ours: the two cannot be combined.
"""

from __future__ import annotations

import threading
import weakref

import anyio
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from ..errors import RequestError, UpstreamError
from .errors import APIError
from .protocol import AssistantMessage, ChatCompletionChoice, ChatCompletionResponse
from .serving_base import ServingLimits, dump, usage

_RUNNERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # pipeline -> its TaskRunner
_RUNNERS_LOCK = threading.Lock()


def runner_for(pipeline):
    """The pipeline's task runner, made once (RequestError when the log is off: tasks are kept there)."""
    with _RUNNERS_LOCK:
        if pipeline not in _RUNNERS:
            from ..agents import task_runner

            _RUNNERS[pipeline] = task_runner(pipeline)
        return _RUNNERS[pipeline]


class TaskBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: str = Field(min_length=1)
    model: str | None = None
    approve: bool = False
    max_steps: int | None = Field(None, ge=1, le=100)
    max_seconds: float | None = Field(None, gt=0)
    wait: bool = False


class ApproveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    approve: bool = True
    wait: bool = False


class ResumeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    wait: bool = False


def tasks_router(pipeline, limits: ServingLimits | None = None) -> APIRouter:
    router = APIRouter()
    limits = limits or ServingLimits.from_config()

    def runner():
        return runner_for(pipeline)

    async def go_on(prepare, wait: bool, conflict: bool = True) -> dict:
        """`prepare()` (in a thread) gives the task, then run on: to its next stop (wait), or in the background.
        A run holds an in-flight slot, taken before `prepare` (a full server refuses before anything changes) and
        held until the run stops. `conflict`: `prepare`'s RequestError is a 409 (the task's state forbids it)."""
        tasks = runner()
        cancel = limits.admit("start, approve or resume the task again")
        try:
            task = await anyio.to_thread.run_sync(prepare)
        except RequestError as exc:
            limits.in_flight.discard(cancel)
            if conflict:
                raise APIError(409, str(exc), exc.code, "task_id") from exc
            raise
        except BaseException:
            limits.in_flight.discard(cancel)
            raise
        if task.status != "running":
            limits.in_flight.discard(cancel)
            return view(task)

        def work():
            try:
                return tasks.run(task.id, cancel)
            finally:
                limits.in_flight.discard(cancel)

        if wait:
            return view(await anyio.to_thread.run_sync(work))
        threading.Thread(target=work, daemon=True, name=f"task-{task.id}").start()
        return view(task)

    def existing(task_id: str):
        task = runner().get(task_id)
        if task is None:
            raise APIError(404, f"no task {task_id!r}", "task_not_found", "task_id")
        return task

    @router.post("/v1/tasks")
    async def start(body: TaskBody):
        tasks = runner()
        if body.model is not None:
            pipeline.roles.resolve(body.model)  # an unknown model id is a 404 now, not a failed task later

        def create():
            return tasks.create(body.input, body.model, body.approve, body.max_steps, body.max_seconds, "api")

        return await go_on(create, body.wait, conflict=False)

    @router.get("/v1/tasks")
    async def listing():
        tasks = await anyio.to_thread.run_sync(runner().store.list)
        return {"object": "list", "data": [view(task) for task in tasks]}

    @router.get("/v1/tasks/{task_id}")
    async def show(task_id: str):
        return view(await anyio.to_thread.run_sync(existing, task_id))

    @router.post("/v1/tasks/{task_id}/approve")
    async def approve(task_id: str, body: ApproveBody | None = None):
        body = body or ApproveBody()
        task = await anyio.to_thread.run_sync(existing, task_id)
        return await go_on(lambda: runner().approve(task.id, body.approve), body.wait)

    @router.post("/v1/tasks/{task_id}/resume")
    async def resume(task_id: str, body: ResumeBody | None = None):
        body = body or ResumeBody()
        task = await anyio.to_thread.run_sync(existing, task_id)
        return await go_on(lambda: runner().resume(task.id), body.wait)

    @router.post("/v1/tasks/{task_id}/cancel")
    async def cancel(task_id: str):
        task = await anyio.to_thread.run_sync(existing, task_id)
        return view(await anyio.to_thread.run_sync(runner().cancel, task.id))

    return router


def view(task) -> dict:
    from ..agents import report

    data = task.to_json()
    data["report"] = report(task) if task.status == "done" else None
    return data


class TaskChatResponse(ChatCompletionResponse):
    task: dict  # konsilium: the task that made the answer (id, steps, used, notes)


async def builtin_tools_answer(serving, request, http_request):
    """A chat completion answered by the task loop with the council's read-only tools (`konsilium.tools`)."""
    from fastapi.responses import Response

    options = dict(request.konsilium)
    if options.pop("tools") != "builtin":
        raise RequestError('konsilium.tools must be "builtin" (the council\'s own tools)', param="konsilium.tools")
    if request.tools:
        raise RequestError(
            "konsilium.tools and tools cannot be combined: the server runs its own tools, the client runs tools",
            param="konsilium.tools",
        )
    if request.stream or options.get("dual") or request.response_format is not None:
        raise RequestError(
            "konsilium.tools answers whole, in prose: send it without stream, dual and response_format",
            param="konsilium.tools",
        )
    request.konsilium = options
    serving.refuse_unsupported(request)
    messages = [message.as_turn_message() for message in request.messages]
    goal = next((m["content"] for m in reversed(messages) if m["role"] == "user" and m.get("content")), "")
    serving.pipeline.roles.resolve(request.model)  # an unknown model: 404 before any work
    full = runner_for(serving.pipeline)
    from ..agents import TaskRunner

    tasks = TaskRunner(full.pipeline, full.registry.read_only(), full.store, full.settings, full.model)

    def work():
        task = tasks.create(goal, request.model, client=request.user or "chat", conversation=messages)
        return tasks.run(task.id, cancel)

    cancel = serving.admit()  # the task's model calls count against the server's limit like the request they answer
    try:
        task = await anyio.to_thread.run_sync(work)
    finally:
        serving.release(cancel)
    if task.status != "done":
        raise UpstreamError(f"the council's task {task.id} {task.status}: {task.error or 'no answer'}")
    counts = [serving.pipeline.log.get(s["exchange"]) for s in task.steps if s.get("exchange")]
    response = TaskChatResponse(
        id=f"chatcmpl-{task.id}",
        model=request.model,
        choices=[
            ChatCompletionChoice(index=0, message=AssistantMessage(content=view(task)["report"]), finish_reason="stop")
        ],
        usage=usage(sum(e.prompt_tokens for e in counts if e), sum(e.completion_tokens for e in counts if e)),
        sources=[{"note": target} for target in task.to_json()["notes"]] or None,
        task={key: value for key, value in view(task).items() if key in ("id", "status", "steps", "used", "notes")},
    )
    return Response(dump(response), media_type="application/json")
