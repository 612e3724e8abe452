"""One grounded chat turn, shared by the server and `konsilium ask`: retrieve, fit the notes, cite, log.

The caller runs the engine (streaming or not) on `PreparedChat.messages` and appends `PreparedChat.tail()` to
the answer; `Answerer.record` then commits the exchange to the conversation log before the caller's response
completes.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from ..engines import Engine, SamplingParams
from .citations import Source, render_sources
from .context import RetrievalOptions, ground, retrieval_query
from .knowledge import Knowledge

log = logging.getLogger("konsilium.answer")
DEFAULT_COMPLETION_RESERVE = 512  # room kept for the answer when the client sets no max_tokens


@dataclass
class PreparedChat:
    messages: list[dict]  # what the engine receives (notes included)
    sources: list[Source] = field(default_factory=list)
    retrieval_ms: float = 0.0
    query: str = ""

    def tail(self) -> str:
        return render_sources(self.sources)

    def sources_json(self) -> list[dict]:
        return [source.to_json() for source in self.sources]


class Answerer:
    def __init__(
        self,
        engine: Engine,
        knowledge: Knowledge | None = None,
        conversation_log=None,
        retrieval_default: bool = True,
        context_chunks: int = 6,
        context_share: float = 0.5,
    ):
        self.engine, self.knowledge, self.log = engine, knowledge, conversation_log
        self.retrieval_default = retrieval_default and knowledge is not None
        self.context_chunks, self.context_share = context_chunks, context_share

    def retrieval_options(self, raw) -> RetrievalOptions:
        """Parse the request's `konsilium.retrieval` (ValueError on a bad value)."""
        return RetrievalOptions.parse(raw, self.retrieval_default, self.context_chunks)

    def prepare_chat(self, messages: list[dict], params: SamplingParams, options: RetrievalOptions) -> PreparedChat:
        """Blocking: searches the index and counts tokens. Raises ValueError subclasses for bad requests."""
        context = self.engine.context_length
        reserve = params.max_tokens or min(DEFAULT_COMPLETION_RESERVE, context // 4)
        passages, query, started = [], "", time.perf_counter()
        if options.enabled and self.knowledge is not None:
            query = retrieval_query(messages)
            if query:
                passages = self.knowledge.search(
                    query, options.k, options.collections, options.mode, options.folders, options.tags
                )
        retrieval_ms = (time.perf_counter() - started) * 1000
        grounded, sources = ground(
            messages,
            passages,
            self.engine.count_tokens,
            self.engine.count_chat_tokens,
            context,
            reserve,
            self.context_share,
            required_completion=params.max_tokens or 1,
        )
        return PreparedChat(grounded, sources, retrieval_ms, query)

    def record(self, exchange) -> None:
        """Commit an exchange to the log; a failing log is reported, never turned into a lost answer."""
        if self.log is None:
            return
        try:
            self.log.record(exchange)
        except Exception:  # the answer itself is fine; say loudly that it was not kept
            log.exception("could not record exchange %s in the conversation log", exchange.id)
