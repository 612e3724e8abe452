"""Model ids and adapters (vLLM's `OpenAIServingModels`): `GET /v1/models`, and at run time vLLM's
`POST /v1/load_lora_adapter` / `unload_lora_adapter` plus `GET /v1/adapters` (where each adapter lives).

Which id means which role and adapter is decided in one place, `RoleService`; this module only speaks HTTP for it.
Loading at run time is off unless `adapter_cache.runtime_loading` (403, as vLLM keeps it off), and reads only the
allowed folders. A broken adapter is refused with a 400 naming the problem and the server keeps serving; unloading
waits for in-flight requests on the adapter, then its id answers 404.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool

from ..errors import ModelNotFoundError, RequestError
from ..roles.runtime import RoleService, RuntimeLoadingRefused
from .errors import APIError
from .protocol import LoadLoraAdapterRequest, ModelCard, ModelList, UnloadLoraAdapterRequest


class OpenAIServingModels:
    def __init__(self, roles: RoleService):
        self.roles = roles

    async def list(self) -> ModelList:
        await run_in_threadpool(self.roles.refresh)  # roles added with the CLI show up without a restart
        return ModelList(data=[ModelCard(id=name) for name in self.roles.model_ids()])

    async def adapters(self) -> dict:
        return {"object": "list", "data": await run_in_threadpool(self.roles.adapters_status)}

    async def load(self, request: LoadLoraAdapterRequest) -> dict:
        try:
            loaded = await run_in_threadpool(self.roles.load_lora, request.lora_name, request.lora_path)
        except RuntimeLoadingRefused as exc:  # off, or a path outside the allowed folders
            raise APIError(403, str(exc), code=exc.code, param="lora_path") from exc
        except (ValueError, OSError) as exc:  # bad name, missing folder, wrong shapes, rank over the limit
            raise RequestError(str(exc), param="lora_path", code="invalid_adapter") from exc
        return {"object": "adapter", "status": "loaded", **loaded}

    async def unload(self, request: UnloadLoraAdapterRequest) -> dict:
        try:
            await run_in_threadpool(self.roles.unload_lora, request.lora_name)
        except RuntimeLoadingRefused as exc:
            raise APIError(403, str(exc), code=exc.code, param="lora_name") from exc
        except ModelNotFoundError as exc:
            raise AdapterNotFound(str(exc)) from exc
        return {"object": "adapter", "status": "unloaded", "name": request.lora_name}


class AdapterNotFound(ModelNotFoundError):
    """An unload of an adapter that was not loaded at run time (404, param lora_name)."""
