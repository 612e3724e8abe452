"""`create_app(engine, ...)`: the OpenAI-compatible API on one engine.

Endpoints: `GET /v1/models` (the base model, every role, `auto`), `POST /v1/chat/completions` (grounded in the
vault when a `Knowledge` is given), `POST /v1/responses` (the same turn in the Responses API's shapes),
`POST /v1/completions`, `POST /v1/embeddings`, and for adapters vLLM's
`POST /v1/load_lora_adapter`, `POST /v1/unload_lora_adapter` plus `GET /v1/adapters` (where each one lives),
`/v1/memories` (serving_memories.py), `/v1/tasks`, the council's task loop (serving_tasks.py). The web UI is
served at `/` (server/ui/), its own endpoints at `/v1/ui/*` (serving_ui.py).
Every error a client sees is OpenAI-shaped JSON with a 4xx/5xx status; tracebacks go to the server log only.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..engines import Engine
from ..errors import ModelNotFoundError, RequestError, RoleUnavailableError, ServerBusyError, UpstreamError
from ..grounding import Knowledge
from ..pipeline import TurnPipeline
from ..roles.runtime import RoleService
from .errors import APIError, error_response
from .middleware import APIKeyMiddleware, BodySizeLimitMiddleware, HostCheckMiddleware, JSONBodyMiddleware
from .protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    LoadLoraAdapterRequest,
    ModelList,
    ResponsesRequest,
    UnloadLoraAdapterRequest,
)
from .serving_base import ServingLimits
from .serving_chat import OpenAIServingChat
from .serving_completions import OpenAIServingCompletion
from .serving_embeddings import OpenAIServingEmbedding
from .serving_exchanges import exchanges_router
from .serving_memories import memories_router
from .serving_models import AdapterNotFound, OpenAIServingModels
from .serving_responses import OpenAIServingResponses
from .serving_tasks import tasks_router
from .serving_ui import ui_router
from .settings import ServerSettings
from .ui import mount_ui

log = logging.getLogger("konsilium.server")
# Each open stream waits for its next chunk in a worker thread; anyio's default of 40 would cap concurrent
# streams at 40 (measured: the 41st waits), so allow many waiting threads. They only block on queues.
WORKER_THREADS = 256
FASTAPI_PARSE_ERROR = "There was an error parsing the body"  # FastAPI's words when json.loads raises anything else
UNPARSABLE_BODY = (
    "We could not parse the JSON body of your request: it must be UTF-8 JSON, without numbers of thousands of "
    "digits or nesting thousands of levels deep."
)
RETRY_AFTER_S = 2  # a busy server frees a slot within seconds: answers are streamed or short


@asynccontextmanager
async def _lifespan(app: FastAPI):
    anyio.to_thread.current_default_thread_limiter().total_tokens = WORKER_THREADS
    memory = app.state.pipeline.memory
    if memory is not None:
        memory.start()  # learns from exchanges logged since the last run, then from each new one
    try:
        yield
    finally:
        if memory is not None:
            memory.stop()


def create_app(
    engine: Engine,
    model_id: str | None = None,
    *,
    knowledge: Knowledge | None = None,
    conversation_log=None,
    settings: ServerSettings | None = None,
    roles: RoleService | None = None,
    pipeline: TurnPipeline | None = None,
) -> FastAPI:
    """The app over one engine: give its parts (knowledge, log, roles) or a `pipeline` already assembled."""
    settings = settings or ServerSettings()
    model_id = model_id or settings.model_id
    app = FastAPI(title="konsilium", docs_url=None, redoc_url=None, openapi_url=None, lifespan=_lifespan)
    if pipeline is None:
        roles = roles or RoleService(engine, base_model_id=model_id)
        pipeline = TurnPipeline(engine, roles, knowledge, conversation_log, settings.grounding)
    knowledge, roles = pipeline.knowledge, pipeline.roles
    app.state.engine, app.state.model_id, app.state.roles, app.state.pipeline = engine, model_id, roles, pipeline
    limits = ServingLimits.from_config(settings.section)
    app.state.in_flight = limits.in_flight  # `konsilium serve` stops every answer in progress when it shuts down
    chat = OpenAIServingChat(pipeline, limits)
    completions = OpenAIServingCompletion(pipeline, limits)
    responses = OpenAIServingResponses(pipeline, limits)
    embeddings = OpenAIServingEmbedding(knowledge, model_id)
    models = OpenAIServingModels(roles)
    _install_error_handlers(app)

    @app.get("/v1/models", response_model=ModelList)
    async def list_models() -> ModelList:
        return await models.list()

    @app.get("/v1/adapters")
    async def list_adapters():
        return await models.adapters()

    @app.post("/v1/load_lora_adapter")
    async def load_lora_adapter(request: LoadLoraAdapterRequest):
        return await models.load(request)

    @app.post("/v1/unload_lora_adapter")
    async def unload_lora_adapter(request: UnloadLoraAdapterRequest):
        return await models.unload(request)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: ChatCompletionRequest, raw: Request):
        return await chat.create(request, raw)

    @app.post("/v1/responses")
    async def create_response(request: ResponsesRequest, raw: Request):
        return await responses.create(request, raw)

    @app.post("/v1/completions")
    async def create_completion(request: CompletionRequest, raw: Request):
        return await completions.create(request, raw)

    @app.post("/v1/embeddings")
    async def create_embeddings(request: EmbeddingRequest):
        return await embeddings.create(request)

    app.include_router(memories_router(pipeline))
    app.include_router(exchanges_router(pipeline))
    app.include_router(tasks_router(pipeline, limits))
    app.include_router(ui_router(pipeline))
    mount_ui(app)

    # The outermost middleware runs first: the Host name, then the key, before any byte of the body is read.
    app.add_middleware(BodySizeLimitMiddleware, limit=settings.max_body_bytes)
    app.add_middleware(JSONBodyMiddleware)
    app.add_middleware(APIKeyMiddleware, keys=settings.api_keys)
    app.add_middleware(HostCheckMiddleware, allowed=settings.allowed_hosts)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError):
        return error_response(exc.status, exc.message, code=exc.code, param=exc.param, headers=exc.headers)

    @app.exception_handler(ServerBusyError)
    async def server_busy(request: Request, exc: ServerBusyError):
        return error_response(429, str(exc), code="server_busy", headers={"retry-after": str(RETRY_AFTER_S)})

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        if any(error.get("type") == "json_invalid" for error in errors):
            return error_response(400, "We could not parse the JSON body of your request.", code="invalid_json")
        return error_response(400, _describe(errors), code="invalid_value", param=_param(errors))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404:
            message = f"Unknown endpoint: {request.method} {request.url.path}"
        if exc.status_code == 400 and message == FASTAPI_PARSE_ERROR:  # bytes that are not UTF-8, nesting, huge ints
            return error_response(400, UNPARSABLE_BODY, code="invalid_json")
        return error_response(exc.status_code, message, code=getattr(exc, "code", None))

    @app.exception_handler(RequestError)
    async def request_error(request: Request, exc: RequestError):
        return error_response(400, str(exc), code=exc.code, param=exc.param)

    @app.exception_handler(ModelNotFoundError)
    async def model_not_found(request: Request, exc: ModelNotFoundError):
        if isinstance(exc, AdapterNotFound):
            return error_response(404, str(exc), code="adapter_not_found", param="lora_name")
        return error_response(404, str(exc), code="model_not_found", param="model")

    @app.exception_handler(RoleUnavailableError)
    async def role_unavailable(request: Request, exc: RoleUnavailableError):
        return error_response(503, str(exc), code="role_unavailable", param="model")

    @app.exception_handler(UpstreamError)
    async def upstream_error(request: Request, exc: UpstreamError):
        # The generator behind us failed (down, timed out, 5xx): a gateway error, with its one-line reason.
        return error_response(502, str(exc), code="upstream_error")

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "The server had an error while processing your request.", code="internal_error")


def _location(error: dict) -> str:
    return ".".join(str(part) for part in error.get("loc", ()) if part != "body")


def _param(errors: list[dict]) -> str | None:
    if not errors:
        return None  # a whole-body check names the field in its context (protocol.reject_surrogates)
    return _location(errors[0]) or (errors[0].get("ctx") or {}).get("param") or None


def _describe(errors: list[dict]) -> str:
    parts = []
    for error in errors[:5]:
        where = _location(error)
        parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg", "invalid")))
    return "Invalid request: " + "; ".join(parts)
