"""POST /v1/completions: a raw prompt, no chat template and no retrieval (the caller owns the whole prompt)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator

from starlette.concurrency import run_in_threadpool

from ..engines import GenerationChunk, GenerationResult, SamplingParams
from ..grounding import Answerer
from ..memory import Exchange
from ..roles.runtime import RoleService
from .errors import APIError
from .protocol import CompletionChoice, CompletionRequest, CompletionResponse
from .role_access import resolve_model, start_held, using_role, with_adapter
from .serving_chat import dump, sampling_params, sse, usage
from .streaming import ClosingStreamingResponse, error_events, relay

MAX_PROMPTS = 16


class OpenAIServingCompletion:
    def __init__(self, answerer: Answerer, model_id: str, roles: RoleService | None = None):
        self.answerer, self.engine, self.model_id = answerer, answerer.engine, model_id
        self.roles = roles or RoleService(answerer.engine, base_model_id=model_id)

    async def create(self, request: CompletionRequest):
        arrived = time.time()
        # A role's adapter applies to raw prompts too; its system prompt and retrieval do not (no messages).
        resolution = await run_in_threadpool(resolve_model, self.roles, request.model, request.prompts()[0])
        engine = resolution.engine
        if request.echo:
            raise APIError(400, "echo is not supported", param="echo")
        prompts = request.prompts()
        if not prompts or len(prompts) > MAX_PROMPTS:
            raise APIError(400, f"prompt must be a string or a list of 1 to {MAX_PROMPTS} strings", param="prompt")
        if request.stream and len(prompts) > 1:
            raise APIError(400, "streaming takes a single prompt", param="prompt")
        params = sampling_params(request)
        params = with_adapter(self.roles, resolution, params)
        for prompt in prompts:
            await run_in_threadpool(self._check_length, prompt, params)
        record = Exchange(
            id=f"cmpl-{uuid.uuid4().hex}",
            time=arrived,
            endpoint="completions",
            model=request.model,
            role=resolution.role_id,
            messages=[{"role": "user", "content": prompt} for prompt in prompts],
            response="",
            finish_reason=None,
            sources=[],
            client=request.user,
        )
        if request.stream:
            tokens = await run_in_threadpool(self._start, engine, resolution, prompts[0], params)
            include_usage = bool(request.stream_options and request.stream_options.include_usage)
            return ClosingStreamingResponse(self._events(tokens, record, include_usage), media_type="text/event-stream")
        results: list[GenerationResult] = []
        for prompt in prompts:  # one engine call each; the engine batches concurrent requests itself
            try:
                results.append(await run_in_threadpool(self._generate, engine, resolution, prompt, params))
            except ValueError as exc:
                raise APIError(400, str(exc), param="prompt") from exc
        record.response = "\n\n".join(result.text for result in results)
        record.finish_reason = results[-1].finish_reason
        record.prompt_tokens = sum(r.prompt_tokens for r in results)
        record.completion_tokens = sum(r.completion_tokens for r in results)
        record.timings["total_ms"] = round((time.time() - arrived) * 1000, 2)
        await run_in_threadpool(self.answerer.record, record)
        return CompletionResponse(
            id=record.id,
            model=request.model,
            choices=[
                CompletionChoice(index=i, text=r.text, finish_reason=r.finish_reason) for i, r in enumerate(results)
            ],
            usage=usage(record.prompt_tokens, record.completion_tokens),
        )

    def _check_length(self, prompt: str, params: SamplingParams) -> None:
        n_prompt, context = self.engine.count_tokens(prompt), self.engine.context_length
        wanted = n_prompt + (params.max_tokens or 1)
        if wanted > context:
            raise APIError(
                400,
                f"This model's maximum context length is {context} tokens, however you requested {wanted} tokens "
                f"({n_prompt} in your prompt; {wanted - n_prompt} for the completion). "
                "Please reduce your prompt; or completion length.",
                code="context_length_exceeded",
                param="prompt",
            )

    def _generate(self, engine, resolution, prompt: str, params: SamplingParams) -> GenerationResult:
        with using_role(self.roles, resolution):
            return engine.generate(prompt, params)

    def _start(self, engine, resolution, prompt: str, params: SamplingParams) -> Iterator[GenerationChunk]:
        return start_held(self.roles, resolution, lambda: engine.stream(prompt, params), "prompt")

    async def _events(self, tokens, record: Exchange, include_usage: bool) -> AsyncIterator[str]:
        created = int(time.time())

        def chunk(text: str, finish_reason=None) -> str:
            choice = CompletionChoice(text=text, finish_reason=finish_reason)
            return sse(dump(CompletionResponse(id=record.id, created=created, model=record.model, choices=[choice])))

        async for item in relay(tokens, record, self.answerer):
            if isinstance(item, Exception):
                for event in error_events(record.error):
                    yield event
                return
            if item.finish_reason is None:
                yield chunk(item.text)
                continue
            await run_in_threadpool(self.answerer.record, record)
            yield chunk(item.text, item.finish_reason)
        if include_usage:
            body = CompletionResponse(
                id=record.id,
                created=created,
                model=record.model,
                choices=[],
                usage=usage(record.prompt_tokens, record.completion_tokens),
            )
            yield sse(dump(body))
        yield sse("[DONE]")
