"""`konsilium ask` through a konsilium server already running on the configured address: the model is loaded
once, in the server, instead of again in this process (minutes on a CPU). The server answers, cites and logs the
exchange exactly as for any other client; this module only shows it."""

from __future__ import annotations

import time

from .output import out

PROBE_TIMEOUT_S = 0.5  # a local server answers /v1/models in milliseconds; nothing listening fails at once


def running_server(home):
    """An openai client on the configured server if a konsilium answers there, else None."""
    import httpx2

    from ..server.settings import api_keys

    section = home.config.server
    host = "127.0.0.1" if section.host in ("0.0.0.0", "::", "") else section.host
    base = f"http://{host}:{section.port}/v1"
    keys = api_keys(section.api_keys)
    headers = {"authorization": f"Bearer {keys[0]}"} if keys else {}
    try:
        listing = httpx2.get(f"{base}/models", headers=headers, timeout=PROBE_TIMEOUT_S)
    except httpx2.HTTPError:
        return None
    if listing.status_code != 200 or not any(m.get("owned_by") == "konsilium" for m in listing.json().get("data", [])):
        return None
    import openai

    return openai.OpenAI(base_url=base, api_key=keys[0] if keys else "local", max_retries=0, timeout=None)


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
