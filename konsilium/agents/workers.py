"""Workers: other OpenAI-compatible servers (a coder model, a vision model, another konsilium) the council may ask.

Each `workers:` entry of konsilium.yaml becomes a tool `ask_<name>` whose description says what the worker is good
for. A call is one chat completion over HTTP with the worker's own timeout; at most `max_concurrent` run at once
(later calls wait for a free place, within the same timeout). Anything that goes wrong (down, slow, an error
status, an empty answer) is a `ToolResult` that says so in one line: the task goes on, the council reads why.
"""

from __future__ import annotations

import os
import threading
import time

from ..config import WorkerSettings
from .tools import Tool, ToolResult

QUESTION_SCHEMA = {
    "type": "object",
    "properties": {
        "question": {
            "type": "string",
            "maxLength": 4000,
            "description": "what to ask, with everything the worker needs to know",
        }
    },
    "required": ["question"],
}


class Worker:
    """One worker server, safe to call from several threads."""

    def __init__(self, settings: WorkerSettings):
        self.settings = settings
        self._places = threading.BoundedSemaphore(settings.max_concurrent)
        self._client = None
        self._client_lock = threading.Lock()
        self.calls_in_progress = 0  # for tests and /v1/tasks: how many calls hold a place now
        self.most_at_once = 0
        self._count_lock = threading.Lock()

    @property
    def tool_name(self) -> str:
        return f"ask_{self.settings.name}"

    def tool(self) -> Tool:
        s = self.settings
        about = s.description or f"the {s.model} model at {s.base_url}"
        good = f" Good for: {', '.join(s.good_for)}." if s.good_for else ""
        return Tool(
            name=self.tool_name,
            description=f"Ask the worker {s.name!r} ({about}).{good} Returns its answer.",
            parameters=QUESTION_SCHEMA,
            run=self.ask,
            effect="asks an outside server" if s.confirm else None,
        )

    def _api_key(self) -> str:
        s = self.settings
        if s.api_key_env and os.environ.get(s.api_key_env):
            return os.environ[s.api_key_env]
        return s.api_key or "none"

    def client(self):
        with self._client_lock:
            if self._client is None:
                import openai

                self._client = openai.OpenAI(
                    base_url=self.settings.base_url.rstrip("/"),
                    api_key=self._api_key(),
                    timeout=self.settings.timeout_s,
                    max_retries=0,
                )
            return self._client

    def ask(self, arguments: dict) -> ToolResult:
        question = arguments.get("question")
        if not isinstance(question, str) or not question.strip():
            return ToolResult.error("ask needs a question (a non-empty string)")
        s, started = self.settings, time.monotonic()
        if not self._places.acquire(timeout=s.timeout_s):
            return ToolResult.error(
                f"worker {s.name!r} is busy: all {s.max_concurrent} places (max_concurrent) taken for {s.timeout_s:g} s"
            )
        try:
            with self._count_lock:
                self.calls_in_progress += 1
                self.most_at_once = max(self.most_at_once, self.calls_in_progress)
            left = max(0.1, s.timeout_s - (time.monotonic() - started))
            return self._ask(question, left)
        finally:
            with self._count_lock:
                self.calls_in_progress -= 1
            self._places.release()

    def _ask(self, question: str, timeout_s: float) -> ToolResult:
        import openai

        s = self.settings
        try:
            reply = self.client().chat.completions.create(
                model=s.model,
                messages=[{"role": "user", "content": question}],
                max_tokens=s.max_tokens,
                timeout=timeout_s,
            )
        except openai.APITimeoutError:
            return ToolResult.error(f"worker {s.name!r} did not answer within {s.timeout_s:g} s (timeout_s)")
        except openai.APIConnectionError as exc:
            return ToolResult.error(f"worker {s.name!r} at {s.base_url} cannot be reached ({_cause(exc)})")
        except openai.APIStatusError as exc:
            return ToolResult.error(f"worker {s.name!r} refused the question: HTTP {exc.status_code}: {_message(exc)}")
        except openai.OpenAIError as exc:
            return ToolResult.error(f"worker {s.name!r} failed: {exc}")
        choice = reply.choices[0] if reply.choices else None
        text = (choice.message.content or "").strip() if choice is not None else ""
        if not text:
            return ToolResult.error(f"worker {s.name!r} gave an empty answer")
        return ToolResult(text, data={"worker": s.name, "model": s.model})


def _cause(exc: Exception) -> str:
    cause = exc.__cause__ or exc.__context__
    return str(cause or exc).splitlines()[0][:200] or type(exc).__name__


def _message(exc) -> str:
    try:
        body = exc.response.json()
        return str(body.get("error", {}).get("message") or body)[:300]
    except Exception:
        return str(exc)[:300]


def workers_of(settings) -> list[Worker]:
    """The workers of a home's settings (`settings.workers`)."""
    return [Worker(entry) for entry in settings.workers]
