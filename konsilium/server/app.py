"""`create_app(engine, ...)`: the OpenAI-compatible API on one engine.

Endpoints: `GET /v1/models` (the base model, every role, `auto`), `POST /v1/chat/completions` (grounded in the
vault when a `Knowledge` is given), `POST /v1/completions`, `POST /v1/embeddings`, and for adapters vLLM's
`POST /v1/load_lora_adapter`, `POST /v1/unload_lora_adapter` plus `GET /v1/adapters` (where each one lives).
Every error a client sees is OpenAI-shaped JSON with a 4xx/5xx status; tracebacks go to the server log only.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..engines import Engine, UpstreamError
from ..grounding import Answerer, Knowledge
from ..roles.runtime import RoleService
from .errors import APIError, error_response
from .middleware import APIKeyMiddleware, BodySizeLimitMiddleware
from .protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    LoadLoraAdapterRequest,
    ModelCard,
    ModelList,
    UnloadLoraAdapterRequest,
)
from .serving_adapters import AdapterAdmin
from .serving_chat import OpenAIServingChat
from .serving_completions import OpenAIServingCompletion
from .serving_embeddings import OpenAIServingEmbedding
from .settings import ServerSettings

log = logging.getLogger("konsilium.server")
# Each open stream waits for its next chunk in a worker thread; anyio's default of 40 would cap concurrent
# streams at 40 (measured: the 41st waits), so allow many waiting threads. They only block on queues.
WORKER_THREADS = 256


@asynccontextmanager
async def _lifespan(app: FastAPI):
    anyio.to_thread.current_default_thread_limiter().total_tokens = WORKER_THREADS
    yield


def create_app(
    engine: Engine,
    model_id: str | None = None,
    *,
    knowledge: Knowledge | None = None,
    conversation_log=None,
    settings: ServerSettings | None = None,
    roles: RoleService | None = None,
) -> FastAPI:
    settings = settings or ServerSettings()
    model_id = model_id or settings.model_id
    app = FastAPI(title="konsilium", docs_url=None, redoc_url=None, openapi_url=None, lifespan=_lifespan)
    answerer = Answerer(
        engine,
        knowledge,
        conversation_log,
        retrieval_default=settings.retrieval,
        context_chunks=settings.context_chunks,
        context_share=settings.context_share,
    )
    app.state.engine, app.state.model_id, app.state.answerer = engine, model_id, answerer
    roles = roles or RoleService(engine, base_model_id=model_id)
    app.state.roles = roles
    chat = OpenAIServingChat(answerer, model_id, roles)
    completions = OpenAIServingCompletion(answerer, model_id, roles)
    embeddings = OpenAIServingEmbedding(knowledge, model_id)
    adapters = AdapterAdmin(roles)
    _install_error_handlers(app)

    @app.get("/v1/models", response_model=ModelList)
    async def list_models() -> ModelList:
        return ModelList(data=[ModelCard(id=name) for name in roles.model_ids()])

    @app.get("/v1/adapters")
    async def list_adapters():
        return await adapters.status()

    @app.post("/v1/load_lora_adapter")
    async def load_lora_adapter(request: LoadLoraAdapterRequest):
        return await adapters.load(request)

    @app.post("/v1/unload_lora_adapter")
    async def unload_lora_adapter(request: UnloadLoraAdapterRequest):
        return await adapters.unload(request)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: ChatCompletionRequest):
        return await chat.create(request)

    @app.post("/v1/completions")
    async def create_completion(request: CompletionRequest):
        return await completions.create(request)

    @app.post("/v1/embeddings")
    async def create_embeddings(request: EmbeddingRequest):
        return await embeddings.create(request)

    # The outermost middleware runs first: the key is checked before any byte of the body is read.
    app.add_middleware(BodySizeLimitMiddleware, limit=settings.max_body_bytes)
    app.add_middleware(APIKeyMiddleware, keys=settings.api_keys)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError):
        return error_response(exc.status, exc.message, code=exc.code, param=exc.param)

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
        return error_response(exc.status_code, message, code=getattr(exc, "code", None))

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
    return _location(errors[0]) or None if errors else None


def _describe(errors: list[dict]) -> str:
    parts = []
    for error in errors[:5]:
        where = _location(error)
        parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg", "invalid")))
    return "Invalid request: " + "; ".join(parts)
