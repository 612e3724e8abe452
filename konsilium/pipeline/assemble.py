"""A home's parts put together once, for `konsilium serve` and `konsilium ask` alike: the configured engine, the
indexed collections, the conversation log and the roles, behind one `TurnPipeline`."""

from __future__ import annotations

import logging
import threading

from .settings import GroundingSettings
from .turn import TurnPipeline

log = logging.getLogger("konsilium.turn")


def load_configured_engine(home):
    """The engine of konsilium.yaml; vLLM also gets its LoRA slots and CPU cache from `adapter_cache`."""
    from ..engines import load_engine

    lora_args = None
    if home.config.engine.kind == "vllm":
        from ..roles.path_adapters import vllm_lora_args_for

        lora_args = vllm_lora_args_for(home)
    return load_engine(home.config.engine, lora_args)


def role_service(home, engine, knowledge, warm: bool = True):
    """Roles from konsilium.yaml / roles.yaml over the engine; adapters warm to their tiers in the background."""
    from ..roles.registry import RoleRegistry
    from ..roles.runtime import RoleService

    registry = RoleRegistry.open(home)  # a bad definition stops the start with one line naming it
    roles = RoleService(
        engine,
        registry,
        base_model_id=home.config.server.model_id,
        cache_settings=home.config.adapter_cache,
        embed=lambda texts: knowledge.embedder().embed(texts),
    )
    if warm:
        threading.Thread(target=roles.warm_all, daemon=True, name="warm-adapters").start()
    return roles


def assemble(home, engine, warm_adapters: bool = True) -> TurnPipeline:
    """The pipeline over `engine` with the home's index, log and roles."""
    from ..grounding import Knowledge
    from ..memory import ConversationLog

    knowledge = Knowledge(home)
    conversation_log = ConversationLog.open_home(home) if home.config.server.log else None
    roles = role_service(home, engine, knowledge, warm=warm_adapters)
    grounding = GroundingSettings.from_config(home.config.server, home.config.memory)
    memory = memory_service(home, conversation_log, engine)
    return TurnPipeline(engine, roles, knowledge, conversation_log, grounding, memory)


def memory_service(home, conversation_log, engine=None):
    """The memory loop over the conversation log (None when the log or memory is off)."""
    if conversation_log is None or not home.config.memory.enabled:
        return None
    from ..memory.extractors import make_extractor
    from ..memory.service import MemoryService

    return MemoryService(conversation_log, home.config.memory, extractor=make_extractor(home, engine))
