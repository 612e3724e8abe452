"""`konsilium ask` and `search` through a konsilium server already running on the configured address: the model
(and the embedder) are loaded once, in the server, instead of again in this process. The server answers, cites
and logs the exchange exactly as for any other client; this module only shows it."""

from __future__ import annotations

import time

from .output import out

PROBE_TIMEOUT_S = 0.5  # a local server answers /v1/models in milliseconds; nothing listening fails at once
EMBED_TIMEOUT_S = 30.0


def server_address(home) -> tuple[str, dict] | None:
    """(base URL ending in /v1, auth headers) of the configured server if a konsilium answers there, else None."""
    import httpx2

    from ..server.settings import api_keys

    section = home.config.server
    host = "127.0.0.1" if section.host in ("0.0.0.0", "::", "") else section.host
    base = f"http://{host}:{section.port}/v1"
    keys = api_keys(section.api_keys)
    headers = {"authorization": f"Bearer {keys[0]}"} if keys else {}
    try:
        listing = httpx2.get(f"{base}/models", headers=headers, timeout=PROBE_TIMEOUT_S)
        if listing.status_code != 200:
            return None
        models = listing.json().get("data", [])
    except (httpx2.HTTPError, ValueError, AttributeError):
        return None
    if not any(isinstance(m, dict) and m.get("owned_by") == "konsilium" for m in models):
        return None
    return base, headers


def running_server(home):
    """An openai client on the configured server if a konsilium answers there, else None."""
    found = server_address(home)
    if found is None:
        return None
    import openai

    from ..server.settings import api_keys

    keys = api_keys(home.config.server.api_keys)
    return openai.OpenAI(base_url=found[0], api_key=keys[0] if keys else "local", max_retries=0, timeout=None)


class ServedEmbedder:
    """The collection's embedder, asked of the running server (`/v1/embeddings`, which has it loaded) instead of
    loaded here: a `search` then starts in seconds, not after ~10 s of loading a model. Anything the server will
    not do (another embedder, an error, gone) falls back to the local one, for good."""

    def __init__(self, local, base: str, headers: dict):
        self.local, self.base, self.headers = local, base, headers
        self.name, self.multilingual = local.name, local.multilingual
        self.served = True

    @property
    def dim(self) -> int:
        return self.local.dim

    def embed(self, texts: list[str]):
        if self.served:
            vectors = self._ask(texts)
            if vectors is not None:
                return vectors
            self.served = False
        return self.local.embed(texts)

    def _ask(self, texts: list[str]):
        import httpx2
        import numpy as np

        try:
            answer = httpx2.post(
                f"{self.base}/embeddings",
                json={"model": self.name, "input": texts},
                headers=self.headers,
                timeout=EMBED_TIMEOUT_S,
            )
            if answer.status_code != 200:
                return None
            rows = sorted(answer.json()["data"], key=lambda item: item["index"])
            vectors = np.asarray([row["embedding"] for row in rows], dtype=np.float32)
        except (httpx2.HTTPError, ValueError, KeyError, TypeError):
            return None
        return vectors if vectors.shape[0] == len(texts) else None


def ask_server(
    client, model: str, messages: list[dict], retrieval, max_tokens: int | None, temperature: float, show: bool
):
    """Stream the answer to the terminal (when `show`); the JSON `konsilium ask --json` prints."""
    import openai

    started = time.time()
    extra = {"konsilium": {"retrieval": retrieval}} if retrieval is not None else {}
    if max_tokens is not None:  # else the server's own default, sized to its engine
        extra["max_tokens"] = max_tokens
    parts, first_ms, last = [], None, None
    try:
        stream = client.chat.completions.create(
            model=model,
            messages=messages,
            temperature=temperature,
            stream=True,
            stream_options={"include_usage": True},
            user="cli",
            extra_body=extra,
        )
        for last in stream:
            for choice in last.choices:
                text = choice.delta.content or ""
                if text and first_ms is None:
                    first_ms = round((time.time() - started) * 1000, 2)
                parts.append(text)
                if show:
                    out.print(text, end="", markup=False, highlight=False, soft_wrap=True)
    except openai.APIStatusError as exc:
        raise ValueError(f"the server at {client.base_url} answered {exc.status_code}: {exc.message}") from None
    except openai.APIError as exc:
        raise ValueError(f"the server at {client.base_url} failed: {exc}") from None
    if show:
        out.print("", markup=False, highlight=False, soft_wrap=True)
    extra_fields = (last.model_extra or {}) if last is not None else {}
    usage = last.usage if last is not None and last.usage is not None else None
    finish = next((c.finish_reason for c in (last.choices if last else []) if c.finish_reason), None)
    role = extra_fields.get("role") or {}
    return {
        "id": last.id if last is not None else None,
        "model": model,
        "answer": "".join(parts),
        "sources": extra_fields.get("sources") or [],
        "memories": extra_fields.get("memories") or [],
        "finish_reason": finish or "stop",
        "role": role.get("id"),
        "usage": {
            "prompt_tokens": usage.prompt_tokens if usage else 0,
            "completion_tokens": usage.completion_tokens if usage else 0,
        },
        "timings": {"first_token_ms": first_ms, "total_ms": round((time.time() - started) * 1000, 2)},
        "server": str(client.base_url),
    }
