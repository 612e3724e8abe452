"""`/v1/memories`: the user's memories over HTTP (list, search, get, history, add, patch, delete = forget).

The shapes follow OpenAI's list / object / deleted conventions; every call that embeds or touches SQLite runs in
a worker thread.
"""

from __future__ import annotations

from typing import Literal

import anyio
from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from ..memory.store import MemoryNotFound
from .errors import APIError

MAX_TEXT = 2000


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MemoryCreate(_Body):
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    about: str = Field("user", min_length=1, max_length=200)
    kind: str = Field("fact", min_length=1, max_length=40)
    pinned: bool = False


class MemoryPatch(_Body):
    text: str | None = Field(None, min_length=1, max_length=MAX_TEXT)
    pinned: bool | None = None


class MemorySearch(_Body):
    query: str = Field(min_length=1, max_length=MAX_TEXT)
    k: int = Field(10, ge=1, le=100)
    conversations: bool = Field(False, description="search past exchanges (kind 'conversation') instead")


def memories_router(pipeline) -> APIRouter:
    router = APIRouter()

    def service():
        if pipeline.memory is None:
            raise APIError(404, "memory is off on this server (memory.enabled, or server.log: false)", "memory_off")
        return pipeline.memory

    async def call(fn, *args):
        try:
            return await anyio.to_thread.run_sync(fn, *args)
        except MemoryNotFound as exc:
            raise APIError(404, str(exc), code="memory_not_found", param="memory_id") from exc
        except ValueError as exc:
            raise APIError(400, str(exc), code="invalid_value") from exc

    @router.get("/v1/memories")
    async def list_memories(
        status: Literal["current", "superseded", "forgotten", "all"] = "current",
        pinned: bool | None = None,
        limit: int = Query(100, ge=1, le=1000),
        offset: int = Query(0, ge=0),
    ):
        store = service().store
        wanted = None if status == "all" else status
        memories = await call(lambda: store.list(wanted, pinned=pinned, limit=limit, offset=offset))
        total = await call(store.count, wanted)
        return {"object": "list", "data": [m.to_json() for m in memories], "total": total}

    @router.post("/v1/memories/search")
    async def search_memories(body: MemorySearch):
        memory = service()
        search = memory.search_conversations if body.conversations else memory.search
        hits = await call(search, body.query, body.k)
        return {"object": "list", "data": [hit.memory.to_json() | {"score": round(hit.score, 4)} for hit in hits]}

    @router.get("/v1/memories/{memory_id}")
    async def get_memory(memory_id: str):
        return (await call(service().store.get, memory_id)).to_json()

    @router.get("/v1/memories/{memory_id}/history")
    async def memory_history(memory_id: str):
        events = await call(service().store.history, memory_id)
        return {"object": "list", "data": [event.to_json() for event in events]}

    @router.post("/v1/memories")
    async def add_memory(body: MemoryCreate):
        memory = await call(service().add, body.text, body.about, body.kind, body.pinned)
        return memory.to_json()

    @router.patch("/v1/memories/{memory_id}")
    async def patch_memory(memory_id: str, body: MemoryPatch):
        memories = service()
        memory = await call(memories.store.get, memory_id)
        if body.text is not None:
            memory = await call(memories.edit, memory.id, body.text)
        if body.pinned is not None:
            memory = await call(memories.store.set_pinned, memory.id, body.pinned)
        return memory.to_json()

    @router.delete("/v1/memories/{memory_id}")
    async def forget_memory(memory_id: str):
        forgotten = await call(service().forget, memory_id)
        return {
            "id": forgotten[0].id if forgotten else memory_id,
            "object": "memory.deleted",
            "deleted": True,
            "forgotten": [m.id for m in forgotten],
        }

    return router
