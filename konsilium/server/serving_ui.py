"""`/v1/ui/*`: the small JSON endpoints the web UI's pages need beside the OpenAI API (server/ui/).

What the server is (`info`: roles with their adapters, weights, scope and version; memory, log, collections),
the conversation log as a list of conversations (search, continue one; each answer with its reasoning and
sources), a note and its passages for a source's preview with its Obsidian link, the note a wikilink names (as
Obsidian resolves it), the index's status and a re-index with progress, the search playground (BM25, dense and
hybrid side by side), the planner on a posted config.json, and pinning an adapter on the device. Everything
reuses the CLI's functions (memory.log, index, plan) and reads the index only through the ChunkStore protocol
(LanceDB or Qdrant alike); what touches SQLite, a store or an embedder runs in a worker thread. These sit under
`/v1`, so the API key guards them as it guards the rest of the API.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Literal

import anyio
from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from .errors import APIError
from .ui_conversations import digest, earlier_answers

PREVIEW_CHARS = 20_000  # of a note shown beside an answer: enough to read, bounded for a huge note
SEARCH_MODES = ("bm25", "dense", "hybrid")
MAX_CONFIG_BYTES = 1_000_000


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SearchBody(_Body):
    query: str = Field(min_length=1, max_length=2000)
    k: int = Field(5, ge=1, le=50)
    collection: str | None = Field(None, max_length=200)


class IndexBody(_Body):
    collection: str | None = Field(None, max_length=200)


class PinBody(_Body):
    pinned: bool


class PlanSetting(_Body):
    dtype: str = Field("bf16", max_length=20)
    kv_dtype: str = Field("bf16", max_length=20)
    context: int = Field(32768, ge=1, le=100_000_000)
    batch: int = Field(1, ge=1, le=100_000)
    gpu_mem: str | None = Field(None, max_length=40, description="24GB, 80GiB; empty: no fit check")


class PlanBody(_Body):
    config: dict
    settings: list[PlanSetting] = Field(default_factory=lambda: [PlanSetting()], min_length=1, max_length=2)
    lang: Literal["en", "ru"] = "en"


def conversation_summary(exchange) -> dict:
    users = [m for m in exchange.messages or [] if isinstance(m, dict) and m.get("role") == "user"]
    from ..memory.log import content_text

    first = content_text(users[0].get("content")) if users else ""
    return {
        "id": exchange.id,
        "time": exchange.time,
        "model": exchange.model,
        "role": exchange.role,
        "title": first[:120],
        "question": exchange.question[:200],
        "turns": len(users),
        "status": exchange.status,
    }


def latest_turns(exchanges: list) -> list:
    """Newest first, without the exchanges that a newer one continues (its messages are theirs plus the answer):
    a conversation shows once, at its latest turn."""
    continued: set[str] = set()
    kept = []
    for exchange in exchanges:
        messages = list(exchange.messages or [])
        whole = digest([*messages, {"role": "assistant", "content": exchange.response}])
        if whole not in continued:
            kept.append(exchange)
        if len(messages) >= 3 and messages[-2].get("role") == "assistant":
            continued.add(digest(messages[:-1]))
    return kept


class IndexJob:
    """One re-index at a time, in a thread; its progress and its last report are kept for the Vault page."""

    def __init__(self):
        self.lock = threading.Lock()
        self.state: dict = {"state": "idle"}

    def snapshot(self) -> dict:
        with self.lock:
            return dict(self.state)

    def start(self, knowledge, collection: str) -> dict:
        with self.lock:
            if self.state.get("state") == "running":
                raise APIError(409, "an index run is already in progress", "index_running")
            self.state = {"state": "running", "collection": collection, "done": 0, "total": 0, "item": ""}
            self.state["started"] = time.time()
        threading.Thread(target=self._run, args=(knowledge, collection), daemon=True, name="ui-index").start()
        return self.snapshot()

    def _progress(self, done: int, total: int, item: str) -> None:
        with self.lock:
            self.state.update(done=done, total=total, item=item[-120:])

    def _run(self, knowledge, collection: str) -> None:
        from ..index.indexer import Indexer

        try:
            roots = vault_roots(knowledge, collection)
            if not roots:
                raise ValueError("no vault to index: run `konsilium index PATH` once, or set vault.paths")
            embedder = knowledge.embedder(collection) if collection in knowledge.collections() else None
            indexer = Indexer(knowledge.home, collection, embedder=embedder, roots=roots)
            report = indexer.run(roots, self._progress).to_json()
            with self.lock:
                self.state.update(state="done", report=report, finished=time.time())
        except Exception as exc:  # shown on the page; the server keeps serving
            with self.lock:
                self.state.update(state="failed", error=f"{type(exc).__name__}: {exc}", finished=time.time())


def vault_roots(knowledge, collection: str) -> list[Path]:
    """The vault folders a collection was indexed from (else the configured `vault.paths`)."""
    roots = knowledge.retriever(collection).store.vaults() if collection in knowledge.collections() else []
    if not roots:
        roots = [str(Path(p).expanduser()) for p in knowledge.home.config.vault.paths]
    return [Path(root) for root in roots if Path(root).is_dir()]


def ui_router(pipeline) -> APIRouter:
    router = APIRouter()
    job = IndexJob()

    def knowledge():
        if pipeline.knowledge is None:
            raise APIError(404, "this server answers without an index (no vault indexed)", "index_off")
        return pipeline.knowledge

    def conversation_log():
        if pipeline.log is None:
            raise APIError(404, "this server keeps no conversation log (server.log: false)", "log_off")
        return pipeline.log

    def collection_of(name: str | None) -> str:
        known = knowledge()
        name = name or known.default_collection
        if name not in known.collections():
            indexed = ", ".join(known.collections()) or "none yet: run `konsilium index PATH`"
            raise APIError(404, f"unknown collection {name!r}; indexed: {indexed}", "unknown_collection", "collection")
        return name

    async def call(fn, *args):
        try:
            return await anyio.to_thread.run_sync(fn, *args)
        except (ValueError, OSError) as exc:
            raise APIError(400, str(exc), "invalid_value") from exc

    @router.get("/v1/ui/info")
    async def info():
        roles = pipeline.roles

        def gather():
            roles.refresh()
            return {
                "model_id": roles.base_model_id,
                "models": roles.model_ids(),
                "engine": pipeline.engine.info(),
                "memory": pipeline.memory is not None,
                "log": pipeline.log is not None,
                "runtime_loading": roles.runtime_loading,
                "adapter_support": roles.support.value,
                "collections": pipeline.knowledge.collections() if pipeline.knowledge else [],
                "default_collection": pipeline.knowledge.default_collection if pipeline.knowledge else None,
                "roles": [_role_json(role) for role in roles.roles()],
                "adapter_budget": _budget(roles.cache),
            }

        return await call(gather)

    @router.get("/v1/ui/conversations")
    async def conversations(
        search: str | None = Query(None, max_length=500),
        limit: int = Query(200, ge=1, le=5000),
        offset: int = Query(0, ge=0),
    ):
        log = conversation_log()

        def page():
            exchanges = log.list(search or None, limit=limit, offset=offset)
            return {
                "object": "list",
                "data": [conversation_summary(e) for e in latest_turns(exchanges)],
                "total": log.count(search or None),
                "has_more": len(exchanges) == limit,
            }

        return await call(page)

    @router.get("/v1/ui/conversations/{exchange_id}")
    async def conversation(exchange_id: str):
        log = conversation_log()
        exchange = await call(log.get, exchange_id)
        if exchange is None:
            raise APIError(404, f"no exchange {exchange_id!r} in the log", "exchange_not_found", "exchange_id")
        return {
            "id": exchange.id,
            "time": exchange.time,
            "model": exchange.model,
            "role": exchange.role,
            "messages": exchange.messages,
            "response": exchange.response,
            "reasoning": exchange.reasoning or None,  # the answer's `<think>` text, shown folded above it
            "sources": exchange.sources,
            "memories": exchange.memories,
            "status": exchange.status,
            "answers": await call(earlier_answers, log, exchange),  # one per assistant message of `messages`
        }

    @router.get("/v1/ui/note")
    async def note(note: str = Query(min_length=1, max_length=2000), collection: str | None = None):
        name = collection_of(collection)
        return await call(_note_preview, knowledge(), name, note)

    @router.get("/v1/ui/notes/resolve")
    async def resolve(link: str = Query(min_length=1, max_length=2000), collection: str | None = None):
        name = collection_of(collection)
        return await call(_resolve_link, knowledge(), name, link)

    @router.post("/v1/ui/search")
    async def search(body: SearchBody):
        known, name = knowledge(), collection_of(body.collection)

        def run():
            results, took = {}, {}
            for mode in SEARCH_MODES:
                started = time.perf_counter()
                hits = known.retriever(name).search(body.query, body.k, mode)
                took[mode] = round((time.perf_counter() - started) * 1000, 1)
                results[mode] = [hit.to_json() | {"title": hit.title} for hit in hits]
            return {"query": body.query, "collection": name, "modes": results, "ms": took}

        return await call(run)

    @router.get("/v1/ui/index")
    async def index_status():
        known = knowledge()

        def status():
            collections = []
            for name in known.collections():
                store = known.retriever(name).store
                collections.append(
                    {
                        "name": name,
                        "notes": store.count_notes(),
                        "chunks": store.count_chunks(),
                        "embedder": store.embedder_name,
                        "vaults": [str(p) for p in vault_roots(known, name)],
                        "last_run": store.last_changed(),
                    }
                )
            return {"collections": collections, "default": known.default_collection, "job": job.snapshot()}

        return await call(status)

    @router.post("/v1/ui/index")
    async def reindex(body: IndexBody):
        known = knowledge()
        name = body.collection or known.default_collection
        if name != known.default_collection:
            collection_of(name)  # another collection must exist: its vault folders are known from its index
        return job.start(known, name)

    @router.get("/v1/ui/index/job")
    async def index_job():
        return job.snapshot()

    @router.post("/v1/ui/plan")
    async def plan(body: PlanBody):
        return await call(_plan, body)

    @router.post("/v1/ui/adapters/{name}/pin")
    async def pin(name: str, body: PinBody):
        roles = pipeline.roles
        if roles.cache is None or name not in roles.cache:
            raise APIError(404, f"no adapter {name!r} on this server", "adapter_not_found", "name")
        await call(roles.cache.set_pinned, name, body.pinned)
        return {"object": "adapter", "name": name, "pinned": body.pinned}

    return router


def _budget(cache) -> dict | None:
    """What fits where: the adapter cache's byte budgets per tier and its device slots (None: no such cache)."""
    budget = getattr(cache, "budget", None)
    if budget is None:
        return None
    return {"gpu_bytes": budget.get("gpu"), "cpu_bytes": budget.get("cpu"), "slots": getattr(cache, "max_loaded", None)}


def _role_json(role) -> dict:
    return {
        "id": role.id,
        "description": role.description,
        "adapters": dict(role.adapters),
        "label": role.label,
        "scope": role.retrieval.to_dict() if role.retrieval is not None else None,
        "version": role.version,
        "versions": sorted(role.versions),
        "system_prompt": role.system_prompt,
        "topics": list(role.topics),
    }


def _note_preview(knowledge, collection: str, note: str) -> dict:
    """A note of the index: its vault (for the Obsidian link), its passages by heading and the start of its text."""
    store = knowledge.retriever(collection).store
    record = store.find_note(note)
    if record is None:
        raise APIError(404, f"no note {note!r} in collection {collection!r}", "note_not_found", "note")
    vault = Path(record.vault)
    path = (vault / note).resolve()
    text = ""
    if path.is_relative_to(vault.resolve()) and path.is_file():  # never a file outside the vault
        with path.open(encoding="utf-8", errors="replace") as fh:
            text = fh.read(PREVIEW_CHARS)
    return {
        "note": note,
        "title": record.title,
        "collection": collection,
        "vault": str(vault),
        "vault_name": vault.name,
        "passages": [{"heading": c.heading, "text": c.text} for c in store.note_chunks(record.note_key)],
        "text": text,
        "truncated": len(text) >= PREVIEW_CHARS,
    }


def _resolve_link(knowledge, collection: str, link: str) -> dict:
    """The note a wikilink names (`[[target#heading|alias]]` or its bare target) and every note it could name."""
    from ..vault.markdown import parse_link

    parsed = parse_link(link)
    target = parsed.target if parsed else ""
    found = knowledge.retriever(collection).store.resolve_link(target) if target else []
    if not found:
        raise APIError(404, f"no note {target or link!r} in collection {collection!r}", "note_not_found", "link")
    candidates = [{"note": r.note, "note_key": r.note_key, "title": r.title} for r in found]
    return {"link": target, "collection": collection, **candidates[0], "candidates": candidates}


def _plan(body: PlanBody) -> dict:
    from ..plan import Hardware, PlanError, analyze, explain_file, parse_bytes
    from ..plan import plan as plan_memory

    try:
        if len(json.dumps(body.config)) > MAX_CONFIG_BYTES:
            raise PlanError("config.json is larger than 1 MB: is it a model config?")
        shape = analyze(dict(body.config))
        plans = []
        for setting in body.settings:
            hw = Hardware(gpu_mem=parse_bytes(setting.gpu_mem) if setting.gpu_mem else None)
            knobs = setting.model_dump(exclude={"gpu_mem"})
            plans.append(plan_memory(shape, **knobs, hw=hw) | {"setting": setting.model_dump()})
        with tempfile.TemporaryDirectory() as folder:  # explain reads a file: the posted config, as config.json
            path = Path(folder) / "config.json"
            path.write_text(json.dumps(body.config), encoding="utf-8")
            explained = explain_file(path, body.lang)
    except PlanError as exc:
        raise ValueError(str(exc)) from exc
    return {"plans": plans, "explain": explained}
