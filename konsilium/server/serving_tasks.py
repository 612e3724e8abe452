"""`/v1/tasks`: the council's task loop for n8n and other clients (start, poll, approve, cancel).

    POST /v1/tasks                {"input": "…", "model"?, "approve"?: false, "max_steps"?, "wait"?: false}
    GET  /v1/tasks                the latest tasks
    GET  /v1/tasks/{id}           status (running, awaiting_approval, done, failed, cancelled), plan, steps,
                                  pending action, result and the report with [[wikilinks]]
    POST /v1/tasks/{id}/approve   {"approve": true} runs the pending action, false declines it; the task goes on
    POST /v1/tasks/{id}/cancel       {}

A task runs in a thread of its own: a start answers at once with status `running` (poll it), or with `wait: true`
once the task is done or waits for approval. `approve: true` at the start approves every action in advance.
"""

from __future__ import annotations

import threading

import anyio
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from ..errors import RequestError
from .errors import APIError


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


def tasks_router(pipeline) -> APIRouter:
    router = APIRouter()
    state: dict = {}
    lock = threading.Lock()

    def runner():
        with lock:
            if "runner" not in state:
                from ..agents import task_runner

                state["runner"] = task_runner(pipeline)  # RequestError when the log is off
            return state["runner"]

    def view(task) -> dict:
        from ..agents import report

        data = task.to_json()
        data["report"] = report(task) if task.status == "done" else None
        return data

    async def go_on(task, wait: bool) -> dict:
        """Run the task on: to its next stop (wait), or in the background."""
        tasks = runner()
        if wait:
            return view(await anyio.to_thread.run_sync(tasks.run, task.id))
        threading.Thread(target=tasks.run, args=(task.id,), daemon=True, name=f"task-{task.id}").start()
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
        task = await anyio.to_thread.run_sync(
            lambda: tasks.create(body.input, body.model, body.approve, body.max_steps, body.max_seconds, "api")
        )
        return await go_on(task, body.wait)

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
        try:
            task = await anyio.to_thread.run_sync(runner().approve, task.id, body.approve)
        except RequestError as exc:
            raise APIError(409, str(exc), exc.code, "task_id") from exc
        if task.status == "running":
            return await go_on(task, body.wait)
        return view(task)

    @router.post("/v1/tasks/{task_id}/cancel")
    async def cancel(task_id: str):
        task = await anyio.to_thread.run_sync(existing, task_id)
        return view(await anyio.to_thread.run_sync(runner().cancel, task.id))

    return router
