"""`/v1/exchanges/{id}/rating`: mark a logged exchange good or bad (training datasets take the good ones:
`konsilium dataset build --log --rated good`). The same operation as `konsilium history rate`."""

from __future__ import annotations

from typing import Literal

import anyio
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from ..memory.log import RATINGS
from .errors import APIError


class RatingBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rating: Literal["good", "bad", "none"]


def exchanges_router(pipeline) -> APIRouter:
    router = APIRouter()

    @router.post("/v1/exchanges/{exchange_id}/rating")
    async def rate(exchange_id: str, body: RatingBody):
        if pipeline.log is None:
            raise APIError(404, "this server keeps no conversation log (server.log: false)", "log_off")
        found = await anyio.to_thread.run_sync(pipeline.log.rate, exchange_id, RATINGS[body.rating])
        if not found:
            raise APIError(404, f"no exchange {exchange_id!r} in the log", "exchange_not_found", "exchange_id")
        return {"id": exchange_id, "object": "exchange.rating", "rating": body.rating}

    return router
