"""What the turn pipeline takes from `konsilium.yaml` (section `server`): how answers are grounded."""

from __future__ import annotations

from dataclasses import dataclass, replace

DEFAULT_COMPLETION_RESERVE = 512  # room kept for the answer when the client sets no max_tokens
# A CPU reads a prompt at a few hundred tokens/s (SmolLM2-135M, 2 idle cores: 310-380, benchmarks/first_token.py;
# far less under load): 1,024 tokens of notes keep the first token near 3 s, where half of an 8k window took
# 33-41 s on a loaded machine. A GPU engine reads notes far faster.
CPU_NOTES_TOKENS = 1024
CPU_DEFAULT_MAX_TOKENS = 256  # a small CPU model rambles: an unbounded answer could run for minutes
CPU_MEMORY_TOKENS = 192  # five short memories; every prompt token costs real time on a CPU


@dataclass(frozen=True)
class GroundingSettings:
    retrieval: bool  # answer from the index unless a request says otherwise
    context_chunks: int  # passages offered to the model at most
    context_share: float  # share of the context window the notes may fill
    completion_reserve: int = DEFAULT_COMPLETION_RESERVE
    notes_tokens: int = 0  # 0: sized to the engine (`for_engine`)
    default_max_tokens: int = 0  # 0: sized to the engine
    memory_tokens: int = 512  # relevant memories' budget (`memory.memory_tokens`; a CPU gets less)

    def for_engine(self, on_cpu: bool) -> GroundingSettings:
        """The automatic sizes made concrete: small on a CPU, where every prompt token costs real time."""
        notes = self.notes_tokens or (CPU_NOTES_TOKENS if on_cpu else 0)
        answer = self.default_max_tokens or (CPU_DEFAULT_MAX_TOKENS if on_cpu else 0)
        memories = min(self.memory_tokens, CPU_MEMORY_TOKENS) if on_cpu else self.memory_tokens
        return replace(self, notes_tokens=notes, default_max_tokens=answer, memory_tokens=memories)

    @classmethod
    def from_config(cls, server=None, memory=None) -> GroundingSettings:
        """From the typed `server` and `memory` sections of the settings (None: their defaults)."""
        from ..config import MemorySettings, ServerSection

        server = server if server is not None else ServerSection()
        memory = memory if memory is not None else MemorySettings()
        return cls(
            retrieval=server.retrieval,
            context_chunks=server.context_chunks,
            context_share=float(server.context_share),
            notes_tokens=server.notes_tokens,
            default_max_tokens=server.default_max_tokens,
            memory_tokens=memory.memory_tokens,
        )
