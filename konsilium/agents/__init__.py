"""The council acting: built-in tools (vault, notes, memories, an inbox), workers (other OpenAI-compatible servers
offered as `ask_<name>` tools) and the task loop behind `konsilium task` and `/v1/tasks`."""

from __future__ import annotations

from .loop import TaskNotFound, TaskRunner, report
from .store import Task, TaskStore
from .tools import Tool, ToolRegistry, ToolResult, VaultTools
from .workers import Worker, workers_of

__all__ = [
    "Task",
    "TaskNotFound",
    "TaskRunner",
    "TaskStore",
    "Tool",
    "ToolRegistry",
    "ToolResult",
    "VaultTools",
    "Worker",
    "report",
    "task_runner",
    "workers_of",
]


def task_runner(pipeline, home=None) -> TaskRunner:
    """A runner over `pipeline` with the home's tools and workers (home: the knowledge's, else the defaults)."""
    from ..config import Home, Settings
    from ..errors import RequestError

    if pipeline.log is None:
        raise RequestError("tasks are kept in the conversation log, which is off (server.log: false)", code="no_log")
    if home is None:
        knowledge = pipeline.knowledge
        home = knowledge.home if knowledge is not None else Home(root=None, config=Settings())
    registry = ToolRegistry(VaultTools(home, pipeline.knowledge, pipeline.memory).tools())
    for worker in workers_of(home.config):
        registry.add(worker.tool())
    store = TaskStore(pipeline.log)
    store.mark_interrupted()  # tasks whose process died are no longer shown as running
    return TaskRunner(pipeline, registry, store, home.config.agent)
