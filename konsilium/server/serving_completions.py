"""POST /v1/completions: a raw prompt, no chat template and no retrieval (the caller owns the whole prompt).

A role's adapter applies to raw prompts too; its system prompt and retrieval do not (there are no messages).
Several prompts in one request are one turn with one answer each, logged as one exchange.
"""

from __future__ import annotations

import time

from starlette.requests import Request

from ..errors import RequestError
from ..pipeline import TextDelta, TurnEnd, TurnRequest
from .protocol import CompletionChoice, CompletionRequest, CompletionResponse, Usage
from .serving_base import ClosingStreamingResponse, OpenAIServing, dump, sse, usage

MAX_PROMPTS = 16


class OpenAIServingCompletion(OpenAIServing):
    async def create(self, request: CompletionRequest, http_request: Request):
        self.refuse_unsupported(request)
        if request.echo:
            raise RequestError("echo is not supported", param="echo")
        prompts = request.prompts()
        if not prompts or len(prompts) > MAX_PROMPTS:
            raise RequestError(f"prompt must be a string or a list of 1 to {MAX_PROMPTS} strings", param="prompt")
        if request.stream and len(prompts) > 1:
            raise RequestError("streaming takes a single prompt", param="prompt")
        params = self.sampling_params(request, request.max_tokens)
        turn_request = TurnRequest("completions", request.model, params, prompts=prompts, client=request.user)
        turn = await self.prepare(turn_request)  # every prompt checked against the role's context first
        if request.stream:
            include_usage = bool(request.stream_options and request.stream_options.include_usage)
            started = await self.start_stream(http_request, turn)
            return ClosingStreamingResponse(self._events(started, turn, include_usage), media_type="text/event-stream")
        results = (await self.generate(http_request, [turn]))[0]
        return CompletionResponse(
            id=turn.record.id,
            model=request.model,
            choices=[
                CompletionChoice(index=i, text=r.content, finish_reason=r.finish_reason) for i, r in enumerate(results)
            ],
            usage=usage(sum(r.prompt_tokens for r in results), sum(r.completion_tokens for r in results)),
        )

    def _events(self, started, turn, include_usage: bool):
        created, record = int(time.time()), turn.record

        def chunk(text: str, finish_reason=None) -> str:
            choice = CompletionChoice(text=text, finish_reason=finish_reason)
            return sse(dump(CompletionResponse(id=record.id, created=created, model=record.model, choices=[choice])))

        def on_delta(event: TextDelta) -> str:
            return chunk(event.text)

        def on_end(end: TurnEnd) -> str:
            return chunk(end.text, end.finish_reason)

        def usage_event(counts: Usage) -> str:
            body = CompletionResponse(id=record.id, created=created, model=record.model, choices=[], usage=counts)
            return sse(dump(body))

        return self.relay(started, None, on_delta, on_end, usage_event if include_usage else None)
