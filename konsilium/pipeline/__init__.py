"""The one turn pipeline: resolve the role → retrieve → prompt → generate → cite → record."""

from .settings import GroundingSettings
from .stream import ReasoningDelta, TextDelta, ToolCallDelta, TurnEnd, TurnStream
from .turn import Turn, TurnPipeline, TurnRequest, TurnResult

__all__ = [
    "GroundingSettings",
    "ReasoningDelta",
    "TextDelta",
    "ToolCallDelta",
    "Turn",
    "TurnEnd",
    "TurnPipeline",
    "TurnRequest",
    "TurnResult",
    "TurnStream",
]
