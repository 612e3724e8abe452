"""Adapters at run time: vLLM's `POST /v1/load_lora_adapter` / `unload_lora_adapter`, and `GET /v1/adapters`.

A broken adapter is refused with a 400 naming the problem; the server keeps serving everything else. Unloading
waits for in-flight requests on the adapter, then its id answers 404.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool

from ..roles.runtime import RoleService, UnknownModelError
from .errors import APIError
from .protocol import LoadLoraAdapterRequest, UnloadLoraAdapterRequest


class AdapterAdmin:
    def __init__(self, roles: RoleService):
        self.roles = roles

    async def status(self) -> dict:
        return {"object": "list", "data": await run_in_threadpool(self.roles.adapters_status)}

    async def load(self, request: LoadLoraAdapterRequest) -> dict:
        try:
            loaded = await run_in_threadpool(self.roles.load_lora, request.lora_name, request.lora_path)
        except (ValueError, OSError) as exc:  # bad name, missing folder, wrong shapes, rank over the limit
            raise APIError(400, str(exc), code="invalid_adapter", param="lora_path") from exc
        return {"object": "adapter", "status": "loaded", **loaded}

    async def unload(self, request: UnloadLoraAdapterRequest) -> dict:
        try:
            await run_in_threadpool(self.roles.unload_lora, request.lora_name)
        except UnknownModelError as exc:
            raise APIError(404, str(exc), code="adapter_not_found", param="lora_name") from exc
        return {"object": "adapter", "status": "unloaded", "name": request.lora_name}
