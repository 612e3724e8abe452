"""Thinking mode: whether a turn thinks, and its text split into reasoning and content, as vLLM's reasoning parsers do.

A reasoning model (Qwen3, DeepSeek-R1) writes `<think>…</think>` before its answer; the reasoning goes out as
`reasoning_content` and never counts as the answer (no Sources drawn from it, nothing memorized). Some templates
open the block in the prompt (the text then starts inside it and only `</think>` shows). Whether a turn thinks:
the request's `konsilium.thinking` or `chat_template_kwargs.enable_thinking`, else Qwen3's soft switch (`/think`,
`/no_think` ending the user's message, which is taken off), else the role's `thinking:`, else the template's default.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import replace

from ..engines import GenerationChunk
from ..structured.hermes import partial_suffix

OPEN, CLOSE = "<think>", "</think>"
BUDGET_CLOSE = "\n</think>\n\n"  # what a budget that runs out writes, as Qwen3's documentation does
_SWITCH = re.compile(r"\s*/(no_think|think)\s*$")


def soft_switch(messages: list[dict]) -> tuple[list[dict], bool | None]:
    """The messages with a trailing `/think` or `/no_think` taken off the last user message, and what it asked."""
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if not isinstance(content, str):
            return messages, None
        found = _SWITCH.search(content)
        if found is None:
            return messages, None
        changed = list(messages)
        changed[index] = {**message, "content": content[: found.start()]}
        return changed, found.group(1) == "think"
    return messages, None


class ThinkSplitter:
    """Text in, ("reasoning" | "content", text) pieces out; a tag split across chunks is held back until whole."""

    def __init__(self, opened: bool = False):
        self.state = "reasoning" if opened else "start"
        self._held = ""
        self.reasoning = ""
        self.content = ""

    def feed(self, text: str) -> list[tuple[str, str]]:
        self._held += text
        out: list[tuple[str, str]] = []
        while self._held:
            if self.state == "start":
                stripped = self._held.lstrip()
                if stripped.startswith(OPEN):
                    self._held, self.state = stripped[len(OPEN) :].lstrip("\n"), "reasoning"
                elif OPEN.startswith(stripped):  # an opening tag in the making (or only blank so far)
                    break
                else:
                    self.state = "content"
            elif self.state == "reasoning":  # blank lines around the reasoning are held: streamed == whole
                if not self.reasoning:
                    self._held = self._held.lstrip("\n")
                at = self._held.find(CLOSE)
                if at >= 0:
                    self._emit(out, "reasoning", self._held[:at].rstrip("\n"))
                    self._held, self.state = self._held[at + len(CLOSE) :], "after"
                    continue
                body = self._held[: len(self._held) - partial_suffix(self._held, CLOSE)].rstrip("\n")
                self._emit(out, "reasoning", body)
                self._held = self._held[len(body) :]
                break
            elif self.state == "after":  # the blank lines between the block and the answer are neither
                stripped = self._held.lstrip("\n")
                if not stripped:
                    self._held = ""
                    break
                self._held, self.state = stripped, "content"
            else:
                self._emit(out, "content", self._held)
                self._held = ""
        return out

    def finish(self) -> list[tuple[str, str]]:
        """What is held back at the end: an unclosed block stays reasoning, a half tag in the answer is content."""
        held, self._held = self._held, ""
        if not held:
            return []
        kind = "reasoning" if self.state == "reasoning" else "content"
        out: list[tuple[str, str]] = []
        self._emit(out, kind, held if kind == "content" else held.rstrip("\n"))
        return out

    def _emit(self, out: list, kind: str, text: str) -> None:
        if text:
            out.append((kind, text))
            if kind == "reasoning":
                self.reasoning += text
            else:
                self.content += text


def split(text: str, opened: bool = False) -> tuple[str, str]:
    """(reasoning, content) of a whole answer."""
    splitter = ThinkSplitter(opened)
    splitter.feed(text)
    splitter.finish()
    return splitter.reasoning, splitter.content


class Budgeted(Iterator[GenerationChunk]):
    """An engine stream whose reasoning stops after `budget` tokens: the block is closed and the model continues
    with the answer from a prompt that ends with its reasoning and `</think>` (`restart(text, tokens used)`)."""

    def __init__(
        self,
        tokens: Iterator[GenerationChunk],
        budget: int,
        count_tokens: Callable[[str], int],
        restart: Callable[[str, int], Iterator[GenerationChunk]],
        opened: bool = False,
    ):
        self._tokens, self._budget, self._count, self._restart = tokens, budget, count_tokens, restart
        self._splitter = ThinkSplitter(opened)
        self._said = ""
        self._cut = False
        self._base = (0, 0)  # counts of the first call, added to the continuation's
        self.closed = False

    def __iter__(self) -> Budgeted:
        return self

    def __next__(self) -> GenerationChunk:
        chunk = next(self._tokens)
        if self._cut:
            prompt, completion = self._base
            return replace(chunk, prompt_tokens=prompt, completion_tokens=completion + chunk.completion_tokens)
        self._said += chunk.text
        self._splitter.feed(chunk.text)
        if (
            chunk.finish_reason is None
            and self._splitter.state == "reasoning"
            and self._count(self._splitter.reasoning) >= self._budget
        ):
            self._cut = True
            self._base = (chunk.prompt_tokens, chunk.completion_tokens)
            self._close_inner()
            self._tokens = self._restart(self._said + BUDGET_CLOSE, chunk.completion_tokens)
            return replace(chunk, text=chunk.text + BUDGET_CLOSE)
        return chunk

    def _close_inner(self) -> None:
        close = getattr(self._tokens, "close", None)
        if close is not None:
            close()

    def close(self) -> None:
        self.closed = True
        self._close_inner()
