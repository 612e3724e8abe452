"""OpenAI-shaped errors: `{"error": {"message", "type", "param", "code"}}` with the right status, never a traceback."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from .protocol import ErrorDetail, ErrorResponse

TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "invalid_request_error"}


class APIError(Exception):
    """Raised anywhere in request handling; the app turns it into an OpenAI error response."""

    def __init__(
        self, status: int, message: str, code: str | None = None, param: str | None = None, headers: dict | None = None
    ):
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param
        self.headers = headers or {}

    def detail(self) -> ErrorDetail:
        return ErrorDetail(message=self.message, type=error_type(self.status), param=self.param, code=self.code)


def error_type(status: int) -> str:
    return TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")


def error_response(
    status: int, message: str, code: str | None = None, param: str | None = None, headers: dict | None = None
) -> JSONResponse:
    body = ErrorResponse(error=ErrorDetail(message=message, type=error_type(status), param=param, code=code))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)
