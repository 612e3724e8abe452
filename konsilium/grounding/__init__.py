"""Answers grounded in the vault: retrieval into the prompt within the token budget, and Obsidian citations."""

from .citations import Source, render_sources, wikilink_target
from .context import ContextLengthExceeded, RetrievalOptions
from .knowledge import Knowledge, UnknownCollectionError

__all__ = [
    "ContextLengthExceeded",
    "Knowledge",
    "RetrievalOptions",
    "Source",
    "UnknownCollectionError",
    "render_sources",
    "wikilink_target",
]
