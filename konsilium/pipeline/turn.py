"""One turn, one sequence: resolve the role → retrieve → build the prompt → generate → cite → record.

Every entry point goes through `TurnPipeline`: chat completions (stream and not), `dual` answers, raw completions
and `konsilium ask`. Adding a source of context or an endpoint means changing this module, not four copies.

Errors are the ones in `konsilium.errors`: `RequestError` (bad input, HTTP 400), `ModelNotFoundError` (404),
`RoleUnavailableError` (503), `UpstreamError` (502); the server and the CLI each render them their own way.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ..engines import AdapterRequest, ConstraintSupport, Engine, GenerationChunk, SamplingParams
from ..engines.protocol import constraint_support_of
from ..errors import RequestError
from ..grounding.citations import Source, render_sources
from ..grounding.context import ContextLengthExceeded, RetrievalOptions, ground, retrieval_query
from ..memory import Exchange
from ..roles.cache import AdapterWaitCancelled
from ..roles.guard import disclaimer, opening_note, with_role_prompt
from ..roles.runtime import Resolution, RoleService
from ..structured.request import ConstraintError, ToolUse
from .answer import AnswerReader
from .cancel import Cancellation
from .settings import GroundingSettings
from .thinking import Budgeted, soft_switch, split

log = logging.getLogger("konsilium.turn")
Endpoint = Literal["chat.completions", "completions", "ask", "responses", "task"]
# Each endpoint's ids as OpenAI spells them ("chatcmpl-…", "resp_…").
ID_PREFIXES = {
    "chat.completions": "chatcmpl-",
    "completions": "cmpl-",
    "ask": "ask-",
    "responses": "resp_",
    "task": "taskstep-",  # a model call of `konsilium task` (agents.loop)
}


@dataclass
class TurnRequest:
    """What a caller asks for, in our terms. Chat turns carry `messages`; raw completions carry `prompts` (the
    caller owns each whole prompt: no retrieval, no role prompt, but the role's adapter)."""

    endpoint: Endpoint
    model: str
    params: SamplingParams
    messages: list[dict] | None = None
    prompts: list[str] | None = None
    retrieval: Any = None  # the request's `konsilium.retrieval` (None: the configured default)
    memory: bool | None = None  # the request's `konsilium.memory` (None: the configured default)
    client: str | None = None
    tool_use: ToolUse | None = None  # the tools the model is offered (chat only); `params.constraint` shapes the text
    thinking_switch: bool | None = None  # `/think` or `/no_think` that ended the user's message (taken off it)

    @property
    def tools(self) -> list[dict] | None:
        return self.tool_use.for_engine() if self.tool_use is not None else None

    @property
    def constrained(self) -> bool:
        """The answer must be JSON or tool calls: no opening note goes before it (the role stays in `role`)."""
        return self.params.constraint is not None

    @property
    def query(self) -> str:
        """The text that chooses a role (`auto`, blocked topics) and the notes."""
        return retrieval_query(self.messages) if self.messages is not None else (self.prompts or [""])[0]


@dataclass
class Turn:
    """One answer being made: who answers, from what prompt, with which notes, and its log record."""

    request: TurnRequest
    resolution: Resolution
    record: Exchange
    messages: list[dict] | None = None  # what the engine receives (notes included)
    sources: list[Source] = field(default_factory=list)
    memories: list = field(default_factory=list)  # the memories the prompt carries (memory.service.Recalled)
    show_sources: bool = False
    opening: str = ""  # the answer starts with it (an alternative view's label, a declined role's note)
    thinking: bool | None = None  # thinking mode: the request's, its soft switch, the role's (None: the template's)
    thinking_open: bool = False  # the prompt opens the <think> block: the text starts inside it

    @property
    def params(self) -> SamplingParams:
        """What the engine is asked for: the request's sampling with this turn's thinking mode."""
        return replace(self.request.params, thinking=self.thinking)

    @property
    def adapter(self) -> AdapterRequest | None:
        return self.resolution.adapter

    def tail(self) -> str:
        return render_sources(self.sources)

    def sources_json(self) -> list[dict]:
        return [source.to_json() for source in self.sources]

    def memories_json(self) -> list[dict]:
        return [recalled.to_json() for recalled in self.memories]

    def role_json(self) -> dict | None:
        return self.resolution.to_json()


@dataclass(frozen=True)
class TurnResult:
    content: str | None  # the whole answer as the user sees it: opening + generated text + citations (None: calls)
    finish_reason: str  # "stop", "length" or "tool_calls"
    prompt_tokens: int
    completion_tokens: int
    tool_calls: tuple = ()  # structured.hermes.ToolCall
    reasoning: str | None = None  # the `<think>` block's text (None: the model did not reason)


class TurnPipeline:
    """Shared by the server and the CLI; safe to use from many threads (each turn is its own object)."""

    def __init__(
        self,
        engine: Engine,
        roles: RoleService,
        knowledge=None,
        conversation_log=None,
        grounding: GroundingSettings | None = None,
        memory=None,
    ):
        self.engine, self.roles, self.knowledge, self.log = engine, roles, knowledge, conversation_log
        self.memory = memory  # memory.MemoryService, or None: no memories offered or learned
        on_cpu = engine.info().get("device") == "cpu"
        self.grounding = (grounding or GroundingSettings.from_config()).for_engine(on_cpu)

    # --- resolve, retrieve, prompt -------------------------------------------------------------------------

    def resolve(self, request: TurnRequest) -> Resolution:
        return self.roles.resolve(request.model, request.query)

    def prepare(self, request: TurnRequest, resolution: Resolution | None = None) -> Turn:
        """Blocking (searches the index, counts tokens). Raises RequestError for what the request got wrong."""
        resolution = resolution if resolution is not None else self.resolve(request)
        self._check_constraint(request)
        sent = request.messages
        if request.messages is not None:  # Qwen3's `/think` / `/no_think` is an instruction, not the question
            request.messages, switch = soft_switch(request.messages)
            if switch is not None:  # kept for a second prepare of the same request (dual answers)
                request.thinking_switch = switch
        if request.params.max_tokens is None and self.grounding.default_max_tokens:
            request.params = replace(request.params, max_tokens=self.grounding.default_max_tokens)
        record = Exchange(
            id=f"{ID_PREFIXES[request.endpoint]}{uuid.uuid4().hex}",
            time=time.time(),
            endpoint=request.endpoint,
            model=request.model,
            role=resolution.role_id,
            messages=sent or [{"role": "user", "content": prompt} for prompt in request.prompts or []],
            response="",
            finish_reason=None,
            sources=[],
            client=request.client,
        )
        if resolution.route is not None:
            record.timings["route_score"] = round(resolution.route.score, 4)
        turn = Turn(request, resolution, record)
        if request.messages is None:
            for prompt in request.prompts or [""]:
                self._check_prompt(prompt, request.params, resolution.adapter)
            return turn
        turn.thinking = next(
            (
                v
                for v in (request.params.thinking, request.thinking_switch, getattr(resolution.role, "thinking", None))
                if v is not None
            ),
            None,
        )
        self._ground(turn)
        turn.thinking_open = self._opens_thinking(turn)
        if not request.constrained:  # a note before JSON or a forced call would break it
            turn.opening = opening_note(resolution.declined) + disclaimer(resolution.role)
        return turn

    def _opens_thinking(self, turn: Turn) -> bool:
        """Whether the rendered prompt ends inside a `<think>` block (templates that open it for the model)."""
        render = getattr(self.engine, "render_chat_prompt", None)
        if render is None or turn.thinking is False:
            return False
        try:
            prompt = render(turn.messages, turn.params, turn.request.tools)
        except Exception:  # the engine call itself reports a template that fails
            return False
        return prompt.rstrip().endswith("<think>")

    def _check_constraint(self, request: TurnRequest) -> None:
        """An engine that cannot constrain its text is not handed a request that needs it."""
        constraint = request.params.constraint
        if constraint is None or constraint_support_of(self.engine) is not ConstraintSupport.NONE:
            return
        engine = self.engine.info().get("engine", type(self.engine).__name__)
        asked = "tool_choice" if constraint.forces_calls else "response_format"
        raise RequestError(
            f"the {engine} engine cannot constrain its output, which {asked} needs here; send tool_choice "
            '"auto" (or no response_format) or use the transformers, vllm or openai-upstream engine',
            param=asked,
            code="unsupported_parameter",
        )

    def retrieval_options(self, raw, resolution: Resolution) -> RetrievalOptions:
        """The request's `konsilium.retrieval`, narrowed to the role's scope."""
        role = resolution.role
        try:
            options = RetrievalOptions.parse(raw, self._retrieval_default, self.grounding.context_chunks)
            return options.within(role.retrieval if role else None)
        except ValueError as exc:
            raise RequestError(str(exc), param="konsilium.retrieval") from exc

    @property
    def _retrieval_default(self) -> bool:
        return self.grounding.retrieval and self.knowledge is not None

    def _ground(self, turn: Turn) -> None:
        from ..grounding.knowledge import UnknownCollectionError

        request, resolution = turn.request, turn.resolution
        options = self.retrieval_options(request.retrieval, resolution)
        messages = with_role_prompt(request.messages, resolution.role)
        params, context = request.params, self.engine.context_length_for(resolution.adapter)
        count_chat_tokens = self.engine.count_chat_tokens
        if request.tools:  # the tools take prompt room too
            count_chat_tokens = functools.partial(count_chat_tokens, tools=request.tools)
        reserve = params.max_tokens or min(self.grounding.completion_reserve, context // 4)
        passages, started = [], time.perf_counter()
        if options.enabled and self.knowledge is not None:
            query = retrieval_query(messages)
            if query:
                try:
                    passages = self.knowledge.search(
                        query, options.k, options.collections, options.mode, options.folders, options.tags
                    )
                except UnknownCollectionError as exc:
                    raise RequestError(str(exc), param="konsilium.retrieval", code="collection_not_found") from exc
        turn.record.timings["retrieval_ms"] = round((time.perf_counter() - started) * 1000, 2)
        recalled, memory_blocks = self._recall(turn, messages)
        try:
            turn.messages, turn.sources, kept = ground(
                messages,
                passages,
                self.engine.count_tokens,
                count_chat_tokens,
                context,
                reserve,
                self.grounding.context_share,
                max_notes_tokens=self.grounding.notes_tokens or None,
                required_completion=params.max_tokens or 1,
                min_relevance=getattr(self.knowledge, "min_relevance", 0.0),  # off-topic: no notes, no Sources
                memories=memory_blocks,
            )
        except ContextLengthExceeded as exc:
            raise RequestError(str(exc), param="messages", code="context_length_exceeded") from exc
        except ValueError as exc:  # e.g. a chat template that rejects this order of roles
            raise RequestError(f"the messages cannot be used with this model: {exc}", param="messages") from exc
        turn.record.sources = turn.sources_json()
        turn.memories = recalled[:kept]
        turn.record.memories = [recalled.memory.id for recalled in turn.memories]
        turn.show_sources = options.enabled and self.knowledge is not None

    def _recall(self, turn: Turn, messages: list[dict]) -> tuple[list, list[str]]:
        """The memories for this question within their budgets; a turn that opts out is also not learned from."""
        if not self._memory_on(turn):
            turn.record.timings["memory_off"] = True
            return [], []
        from ..grounding.memory_context import fit_memories

        started = time.perf_counter()
        settings = self.memory.settings
        try:
            query = retrieval_query(messages)
            recalled = self.memory.recall(query)
            if self.memory.settings.conversations:
                said = "\n".join(str(m.get("content") or "") for m in turn.request.messages if m.get("role") == "user")
                known = {item.memory.exchange_id for item in recalled}  # already there as a memory drawn from it
                recalled += [
                    hit
                    for hit in self.memory.recall_conversations(query, exclude_text=said)
                    if hit.memory.id not in known
                ]
        except Exception:  # memories help; a broken memory store must not cost the user the answer
            log.exception("could not recall memories; answering without them")
            return [], []
        kept, blocks = fit_memories(
            recalled, self.engine.count_tokens, settings.pinned_tokens, self.grounding.memory_tokens
        )
        turn.record.timings["memory_ms"] = round((time.perf_counter() - started) * 1000, 2)
        return kept, blocks

    def _memory_on(self, turn: Turn) -> bool:
        scope = turn.resolution.role.retrieval if turn.resolution.role is not None else None
        return (
            self.memory is not None
            and self.memory.settings.enabled
            and turn.request.memory is not False
            and (scope is None or scope.memory)
        )

    def _check_prompt(self, prompt: str, params: SamplingParams, adapter: AdapterRequest | None) -> None:
        if not prompt:
            raise RequestError("the prompt is empty", param="prompt")
        context, n_prompt = self.engine.context_length_for(adapter), self.engine.count_tokens(prompt)
        if n_prompt + (params.max_tokens or 1) > context:
            exc = ContextLengthExceeded(context, n_prompt, params.max_tokens or 1, "prompt")
            raise RequestError(str(exc), param="prompt", code="context_length_exceeded")

    # --- generate, cite, record ----------------------------------------------------------------------------

    def generate(self, turn: Turn, cancel: Cancellation | None = None) -> list[TurnResult]:
        """The whole answer (one per prompt of a raw completion), committed to the log before it is returned.
        Read from the engine's stream, so that `cancel` can stop it at any token (TurnCancelled, logged)."""
        cancel = cancel or Cancellation()
        calls = [turn.messages] if turn.messages is not None else list(turn.request.prompts)
        said: list[str] = []  # the text of each call so far: what the log keeps if the turn ends early
        results: list[GenerationChunk] = []
        with self._holding(turn, cancel):
            for call in calls:  # one engine call each; the engine batches concurrent requests itself
                said.append("")
                results.append(self._collect(turn, call, cancel, said))
        answers, said, reasoning = [], [], []
        for result in results:
            reader = AnswerReader(turn)
            reader.feed(result.text)
            _, tail, finish_reason = reader.finish(result.finish_reason)
            content = reader.content
            content = turn.opening + content + tail if content is not None else turn.opening or None
            calls, thought = tuple(reader.calls), reader.reasoning or None
            counts = (result.prompt_tokens, result.completion_tokens)
            answers.append(TurnResult(content, finish_reason, *counts, calls, thought))
            said.append(turn.opening + reader.said + tail)
            reasoning.append(reader.reasoning)
        record = turn.record
        record.response = "\n\n".join(said)  # the model's text (a call's markup included), as it was said
        record.reasoning = "\n\n".join(r for r in reasoning if r)  # kept apart: never cited or learned from
        record.finish_reason = answers[-1].finish_reason
        record.tool_calls = [call.to_json() for call in answers[-1].tool_calls]
        record.output = reader.output
        record.prompt_tokens = sum(r.prompt_tokens for r in results)
        record.completion_tokens = sum(r.completion_tokens for r in results)
        record.timings["total_ms"] = elapsed_ms(record)
        self.record(record)
        return answers

    def _collect(self, turn: Turn, call, cancel: Cancellation, said: list[str]) -> GenerationChunk:
        """One engine call read to its end: the whole text with the last chunk's finish reason and counts."""
        tokens, last = self._engine_stream(turn, call), None
        with cancel.watching(tokens), contextlib.closing(tokens):
            try:
                for last in tokens:
                    said[-1] += last.text
                    if last.finish_reason:
                        break
            except Exception as exc:
                if not cancel.is_set:
                    response, reasoning = self._split(turn, said)
                    self.end_turn(turn, "error", str(exc) or type(exc).__name__, response, last, reasoning)
                    raise
        if cancel.is_set:
            response, reasoning = self._split(turn, said)
            self.end_turn(turn, "cancelled", cancel.reason, response, last, reasoning)
            raise cancel.error()
        if last is None or not last.finish_reason:  # an engine stream that ended without saying why
            last = GenerationChunk("", "stop", *last_counts(last))
        return GenerationChunk(said[-1], last.finish_reason, last.prompt_tokens, last.completion_tokens)

    @staticmethod
    def _split(turn: Turn, said: list[str]) -> tuple[str, str]:
        """(response, reasoning) of text said so far, for a turn that ends early."""
        if turn.messages is None:
            return "\n\n".join(said), ""
        parts = [split(text, turn.thinking_open) for text in said]
        return "\n\n".join(content for _, content in parts), "\n\n".join(r for r, _ in parts if r)

    def _engine_stream(self, turn: Turn, call):
        params, adapter, tools = turn.params, turn.adapter, turn.request.tools
        try:
            if turn.messages is not None:
                tokens = (
                    self.engine.stream_chat(call, params, adapter, tools=tools)
                    if tools
                    else self.engine.stream_chat(call, params, adapter)
                )
                return self._budgeted(turn, tokens)
            return self.engine.stream(call, params, adapter)
        except ConstraintError as exc:  # a schema the engine's grammar cannot follow
            raise RequestError(str(exc), param=exc.param, code="invalid_schema") from exc
        except ValueError as exc:  # the engine refused this input (too long, a template error)
            raise RequestError(str(exc), param="messages" if turn.messages is not None else "prompt") from exc

    def _budgeted(self, turn: Turn, tokens):
        """A thinking budget: after that many reasoning tokens the block is closed and the answer continues from
        the reasoning and `</think>`: after the prompt (engines that render their own), or as the assistant's
        message to continue (an upstream's `continue_chat`)."""
        params = turn.params
        render = getattr(self.engine, "render_chat_prompt", None)
        continue_chat = getattr(self.engine, "continue_chat", None)
        if params.thinking_budget is None or params.thinking is False or (render is None and continue_chat is None):
            return tokens
        prompt = render(turn.messages, params, turn.request.tools) if render is not None else None

        def restart(said: str, used: int):  # the answer gets what is left of max_tokens
            left = max(1, params.max_tokens - used) if params.max_tokens else None
            rest = replace(params, thinking_budget=None, max_tokens=left)
            if prompt is None:
                return continue_chat(turn.messages, said, rest, turn.adapter, turn.request.tools)
            return self.engine.stream(prompt + said, rest, turn.adapter)

        return Budgeted(tokens, params.thinking_budget, self.engine.count_tokens, restart, turn.thinking_open)

    def end_turn(
        self,
        turn: Turn,
        status: str,
        error: str | None,
        response: str,
        last: GenerationChunk | None,
        reasoning: str = "",
    ) -> None:
        """Commit how a turn ended (streamed or not): what was said, and the token counts of its last chunk."""
        record = turn.record
        record.status, record.error, record.response, record.reasoning = status, error, response, reasoning
        record.prompt_tokens, record.completion_tokens = last_counts(last)
        self.record(record)

    @contextlib.contextmanager
    def _holding(self, turn: Turn, cancel: Cancellation):
        """The turn's adapter held on the device; a turn cancelled while it waits for a slot is logged as such."""
        try:
            with self.roles.using(turn.resolution, cancel.event):
                yield
        except AdapterWaitCancelled:
            self.end_turn(turn, "cancelled", cancel.reason, "", None)
            raise cancel.error() from None

    def stream(self, turn: Turn, cancel: Cancellation | None = None):
        """The answer as events (see `TurnStream`); the adapter is held until the stream ends or is closed."""
        from .stream import TurnStream

        return TurnStream(self, turn, cancel)

    def record(self, exchange: Exchange) -> None:
        """Commit an exchange to the log; a failing log is reported, never turned into a lost answer."""
        if self.log is None:
            return
        try:
            self.log.record(exchange)
        except Exception:  # the answer itself is fine; say loudly that it was not kept
            log.exception("could not record exchange %s in the conversation log", exchange.id)
            return
        if self.memory is not None:
            self.memory.notify()  # learned from on the memory thread, after the answer has gone out


def last_counts(chunk: GenerationChunk | None) -> tuple[int, int]:
    """Token counts so far (running totals on every chunk), for answers that end early."""
    return (chunk.prompt_tokens, chunk.completion_tokens) if chunk is not None else (0, 0)


def elapsed_ms(record: Exchange) -> float:
    return round((time.time() - record.time) * 1000, 2)
