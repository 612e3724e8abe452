"""`create_app(engine)`: the OpenAI-compatible API on one engine (`GET /v1/models`, `POST /v1/chat/completions`).

Every error a client sees is OpenAI-shaped JSON with a 4xx/5xx status; tracebacks go to the server log only.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..engines import Engine
from .errors import APIError, error_response
from .protocol import ChatCompletionRequest, ModelCard, ModelList
from .serving_chat import OpenAIServingChat

log = logging.getLogger("konsilium.server")


def create_app(engine: Engine, model_id: str = "konsilium") -> FastAPI:
    app = FastAPI(title="konsilium", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.engine, app.state.model_id = engine, model_id
    chat = OpenAIServingChat(engine, model_id)
    _install_error_handlers(app)

    @app.get("/v1/models", response_model=ModelList)
    async def list_models() -> ModelList:
        return ModelList(data=[ModelCard(id=model_id)])

    @app.post("/v1/chat/completions")
    async def chat_completions(request: ChatCompletionRequest):
        return await chat.create(request)

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
        return error_response(exc.status_code, message)

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
