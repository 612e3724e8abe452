"""Errors that mean "bad input or state, tell the user in one line" — kept free of heavy imports so the CLI
can recognize them without loading LanceDB or torch."""


class IndexError_(RuntimeError):
    """A run that cannot start (bad path, locked index): raised before anything is written."""


class StoreError(RuntimeError):
    """The store cannot serve this request as configured (wrong embedder, bad collection name)."""


class EmbedderError(RuntimeError):
    """The configured embedder cannot be loaded."""


class QuestionFileError(ValueError):
    """A malformed evaluation question file."""


class UpstreamError(RuntimeError):
    """An OpenAI-compatible upstream server is unreachable or failed; one line naming its URL and HTTP status."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class EngineUnavailableError(RuntimeError):
    """The configured engine's framework is not installed here (e.g. vLLM on a machine without it)."""


class RoleUnavailableError(RuntimeError):
    """A role whose adapters cannot be used right now (the server keeps serving the others)."""


class RequestError(ValueError):
    """A request that cannot be served as asked (bad value, too long, unknown collection): HTTP 400, one CLI line.
    `param` names the request field at fault, `code` is the machine-readable reason (OpenAI's error shape)."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.param, self.code = param, code


class ModelNotFoundError(LookupError):
    """A model id that is neither the base model, a role, `auto` nor an adapter loaded at run time (HTTP 404)."""


class ConfigError(ValueError):
    """A bad `konsilium.yaml` (or roles.yaml): the message names the key path and the allowed values."""


class ServerBusyError(RuntimeError):
    """More answers are in progress or waiting than `server.max_pending_requests`: HTTP 429 with Retry-After."""
