"""Requests meet roles: a model id resolved to a role, and its adapter held on the device while it answers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

from ..engines import GenerationChunk, SamplingParams
from ..roles.runtime import Resolution, RoleService, RoleUnavailableError, UnknownModelError
from .errors import APIError


def resolve_model(roles: RoleService, model: str, query: str = "") -> Resolution:
    try:
        return roles.resolve(model, query)
    except UnknownModelError as exc:
        raise APIError(404, str(exc), code="model_not_found", param="model") from exc
    except RoleUnavailableError as exc:
        raise APIError(503, str(exc), code="role_unavailable", param="model") from exc


def with_adapter(roles: RoleService, resolution: Resolution, params: SamplingParams) -> SamplingParams:
    """The sampling params naming the role's adapter, for engines that hold adapters themselves."""
    if resolution.adapter and roles.holds_adapters:
        return replace(params, adapter=resolution.adapter)
    return params


def start_held(
    roles: RoleService, resolution: Resolution, start: Callable[[], Iterator[GenerationChunk]], param: str | None
) -> Iterator[GenerationChunk]:
    """Start a token stream with the role's adapter held until the stream is closed (a bad request is a 400)."""
    hold = using_role(roles, resolution)
    hold.__enter__()
    try:
        tokens = start()
    except BaseException as exc:
        hold.__exit__(None, None, None)
        if isinstance(exc, ValueError):
            raise APIError(400, str(exc), param=param) from exc
        raise
    return HoldingIterator(tokens, lambda: hold.__exit__(None, None, None))


@contextmanager
def using_role(roles: RoleService, resolution: Resolution):
    """The role's adapter stays on the device while its answer is made; lookup failures are API errors."""
    held = roles.using(resolution)
    try:
        held.__enter__()
    except UnknownModelError as exc:
        raise APIError(404, str(exc), code="model_not_found", param="model") from exc
    except RoleUnavailableError as exc:
        raise APIError(503, str(exc), code="role_unavailable", param="model") from exc
    try:
        yield
    finally:
        held.__exit__(None, None, None)


class HoldingIterator:
    """Token stream that lets go of its adapter when closed, even if it was never started (a generator's
    `finally` would not run then)."""

    def __init__(self, tokens: Iterator[GenerationChunk], release):
        self.tokens, self.release, self.closed = tokens, release, False

    def __iter__(self):
        return self

    def __next__(self) -> GenerationChunk:
        return next(self.tokens)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            close = getattr(self.tokens, "close", None)
            if close is not None:
                close()
        finally:
            self.release()
