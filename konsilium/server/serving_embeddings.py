"""POST /v1/embeddings with the index's own embedder, so a client's vectors live in the same space as the notes."""

from __future__ import annotations

import base64

import numpy as np
from starlette.concurrency import run_in_threadpool

from ..grounding import Knowledge
from .errors import APIError
from .protocol import Embedding, EmbeddingRequest, EmbeddingResponse, EmbeddingUsage

MAX_INPUTS = 2048  # OpenAI's limit per request
EMBEDDING_MODEL_ID = "konsilium-embed"


class OpenAIServingEmbedding:
    def __init__(self, knowledge: Knowledge | None, model_id: str):
        self.knowledge, self.model_id = knowledge, model_id

    def accepts(self, model: str, embedder) -> bool:
        return model in {self.model_id, EMBEDDING_MODEL_ID, embedder.name}

    async def create(self, request: EmbeddingRequest) -> EmbeddingResponse:
        if self.knowledge is None:
            raise APIError(404, "This server has no embedder (it was started without an index).", param="model")
        texts = request.inputs()
        if not texts or len(texts) > MAX_INPUTS:
            raise APIError(400, f"input must be a string or a list of 1 to {MAX_INPUTS} strings", param="input")
        if any(not text.strip() for text in texts):
            raise APIError(400, "input must not contain empty strings", param="input")
        embedder = await run_in_threadpool(self.knowledge.embedder)
        if not self.accepts(request.model, embedder):
            raise APIError(
                404,
                f"The model '{request.model}' does not exist; embeddings come from '{EMBEDDING_MODEL_ID}' "
                f"({embedder.name}, {embedder.dim} dimensions).",
                code="model_not_found",
                param="model",
            )
        if request.dimensions is not None and request.dimensions != embedder.dim:
            raise APIError(400, f"this embedder gives {embedder.dim} dimensions only", param="dimensions")
        vectors = np.asarray(await run_in_threadpool(embedder.embed, texts), dtype=np.float32)
        data = [Embedding(index=i, embedding=_encode(v, request.encoding_format)) for i, v in enumerate(vectors)]
        # No shared tokenizer across embedders: count words, which is what a user would budget by.
        tokens = sum(len(text.split()) for text in texts)
        return EmbeddingResponse(
            data=data, model=request.model, usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens)
        )


def _encode(vector: np.ndarray, encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":  # what the openai client asks for by default: little-endian float32
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return vector.tolist()
