"""What the turn pipeline takes from `konsilium.yaml` (section `server`): how answers are grounded."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_COMPLETION_RESERVE = 512  # room kept for the answer when the client sets no max_tokens


@dataclass(frozen=True)
class GroundingSettings:
    retrieval: bool  # answer from the index unless a request says otherwise
    context_chunks: int  # passages offered to the model at most
    context_share: float  # share of the context window the notes may fill
    completion_reserve: int = DEFAULT_COMPLETION_RESERVE

    @classmethod
    def from_config(cls, server=None) -> GroundingSettings:
        """From the typed `server` section of the settings (None: its defaults)."""
        if server is None:
            from ..config import ServerSection

            server = ServerSection()
        return cls(
            retrieval=server.retrieval, context_chunks=server.context_chunks, context_share=float(server.context_share)
        )
