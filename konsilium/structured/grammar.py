"""A `Constraint` as a grammar, and the token mask that holds one generated sequence to it.

The library is llguidance (guidance-ai; the engine behind OpenAI's own structured outputs, llama.cpp's JSON
schemas and one of vLLM's and SGLang's backends). Chosen over the others on PyPI for this engine because it:
- installs as one abi3 wheel (7 MB, no dependencies, no compiler) and works with torch 2.13 on the CPU: the mask
  is a plain int32 bitmask we apply ourselves. xgrammar 0.2 requires torch, transformers and (on Linux x86) triton
  as dependencies; outlines-core builds a full token index per schema up front (seconds on a 49k vocabulary);
  lm-format-enforcer is pure Python, character by character, and slow per token;
- gives the mask per step from a JSON schema (broad coverage: $ref/$defs, anyOf, enums, numeric bounds, string
  formats and patterns) and from Lark grammars that embed JSON schemas (`%json`), which is how a hermes tool call
  `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` is forced with each tool's own argument schema;
- computes a mask in tens of microseconds (a lazy lexer over a token trie, no precomputation per schema), reads
  HF fast tokenizers directly (`llguidance.hf.from_tokenizer`) and is actively released (1.x, 2026).

JSON is generated compactly, without free whitespace (`", "` and `": "` separators): a small model given room for
whitespace can spend its whole budget on newlines. Objects whose schema lists properties but says nothing of
others get no others (`additionalProperties: false`, as OpenAI's strict mode requires and vLLM's
`disable_additional_properties` does): measured on the embedded 135M model, an open object invites it to invent
keys until its budget runs out, leaving JSON that does not parse. What it generates is still valid against the
schema as the client wrote it.

Near the end of its token budget a sequence is also steered to finish. In the last `ENDING_RESERVE` tokens, a
sequence whose grammar is complete ends rather than starting something optional (one more parallel call); in the
last `CLOSING_RESERVE`, among the tokens its grammar allows, those that close an object or an array come first,
then a string, then a `,`; the model's own preference decides within each. A model that runs on (a number of
endless digits, a second call) then still ends with JSON that parses; with room to spare it is untouched.

A sequence's mask is computed on the scheduler thread just before its row is sampled; rows without a constraint
never reach this module.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict

import numpy as np
import torch

from ..engines.protocol import Constraint
from .hermes import END, START
from .request import ConstraintError

JSON_OPTIONS = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
GRAMMAR_CACHE = 64  # compiled grammars kept per engine (an agent sends the same tools every turn)
ENDING_RESERVE = 64  # tokens before the budget's end from which a complete sequence ends
CLOSING_RESERVE = 24  # tokens before the budget's end from which a sequence is steered to close what is open
CLOSERS = (("}", 3.0), ("]", 3.0), ('"', 2.0), (",", 1.0))  # the end of the sequence ranks ENDS
ENDS = 4.0


def lark_grammar(constraint: Constraint) -> str:
    """The constraint in llguidance's Lark dialect: tool calls, a JSON value, or either (also vLLM's `grammar`)."""
    rules, choices = [], []
    if constraint.tools:
        repeat = ' ("\\n" call)*' if constraint.parallel else ""
        rules += [
            f"calls: call{repeat}",
            f"call: {json.dumps(START + chr(10))} call_body {json.dumps(chr(10) + END)}",
            f"call_body: %json {json.dumps(call_schema(constraint.tools), ensure_ascii=False)}",
        ]
        choices.append("calls")
    if constraint.json_schema is not None:
        rules.append(f"answer: %json {json.dumps(with_options(constraint.json_schema), ensure_ascii=False)}")
        choices.append("answer")
    return "\n".join(["%llguidance {}", "start: " + " | ".join(choices), *rules]) + "\n"


def call_schema(tools: tuple[dict, ...]) -> dict:
    """One call to one of the tools: its name, then arguments valid against that tool's parameters."""
    options = []
    for tool in tools:
        function = tool["function"]
        parameters = dict(function.get("parameters") or {"type": "object", "properties": {}})
        parameters.setdefault("type", "object")
        options.append(
            {
                "type": "object",
                "properties": {"name": {"const": function["name"]}, "arguments": parameters},
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
        )
    schema = options[0] if len(options) == 1 else {"anyOf": options}
    return with_options(schema)


def with_options(schema: dict) -> dict:
    schema = closed(schema)
    return {**schema, "x-guidance": {**JSON_OPTIONS, **schema.get("x-guidance", {})}}


OPEN_KEYS = ("additionalProperties", "patternProperties", "unevaluatedProperties")


def closed(schema):
    """The schema with `additionalProperties: false` on every object that lists its properties and says nothing
    of others (a copy; the client's schema is not changed)."""
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {
        key: closed(value) if key not in ("const", "enum", "default", "examples") else value
        for key, value in schema.items()
    }
    if isinstance(schema.get("properties"), dict) and not any(key in schema for key in OPEN_KEYS):
        out["additionalProperties"] = False
    return out


def where(constraint: Constraint) -> str:
    """The request field a failing constraint came from."""
    if constraint.json_schema is not None and constraint.tools:
        return "response_format"
    return "tools" if constraint.tools else "response_format.json_schema.schema"


class Grammars:
    """llguidance over one tokenizer: the tokenizer is converted once (about 0.3 s), grammars are compiled and
    checked once per distinct constraint, and each sequence gets its own matcher."""

    def __init__(self, tokenizer, vocab_size: int, eos_ids: set[int]):
        self._hf, self._vocab_size, self._eos = tokenizer, vocab_size, sorted(eos_ids)
        self._lock = threading.Lock()
        self._tokenizer = None
        self._closers: np.ndarray | None = None
        self._compiled: OrderedDict[str, str] = OrderedDict()

    def tokenizer(self):
        with self._lock:
            if self._tokenizer is None:
                import llguidance.hf

                n_vocab = self._vocab_size if self._vocab_size >= len(self._hf) else None
                self._tokenizer = llguidance.hf.from_tokenizer(self._hf, n_vocab, self._eos or None)
            return self._tokenizer

    def compile(self, constraint: Constraint) -> str:
        """The checked grammar; ConstraintError naming the request field when llguidance cannot follow it."""
        import llguidance

        text = lark_grammar(constraint)
        with self._lock:
            if text in self._compiled:
                self._compiled.move_to_end(text)
                return self._compiled[text]
        grammar = llguidance.LLMatcher.grammar_from_lark(text)
        failed, messages = llguidance.LLMatcher.validate_grammar_with_warnings(grammar, self.tokenizer())
        if failed:
            detail = _brief(str(messages[0])) if messages else "unknown error"
            raise ConstraintError(
                f"{where(constraint)} cannot be used for constrained decoding: {detail}", where(constraint)
            )
        with self._lock:
            self._compiled[text] = grammar
            while len(self._compiled) > GRAMMAR_CACHE:
                self._compiled.popitem(last=False)
        return grammar

    def mask(self, constraint: Constraint) -> TokenMask:
        """A fresh matcher for one sequence (built on the caller's thread, not the scheduler's)."""
        import llguidance

        matcher = llguidance.LLMatcher(self.tokenizer(), self.compile(constraint), log_level=0)
        if matcher.is_error():
            raise ConstraintError(f"{where(constraint)}: {matcher.get_error()}", where(constraint))
        return TokenMask(matcher, self.tokenizer().vocab_size, self.closers())

    def closers(self) -> np.ndarray:
        """Per token, how much it helps a JSON text end (see CLOSERS); read from the vocabulary once."""
        with self._lock:
            if self._closers is None:
                size = max(self._vocab_size, len(self._hf))
                pieces = self._hf.convert_ids_to_tokens(list(range(len(self._hf))))
                ranks = np.zeros(size, dtype=np.float32)
                ranks[: len(pieces)] = [max((r for c, r in CLOSERS if c in (p or "")), default=0.0) for p in pieces]
                ranks[self._eos] = ENDS
                self._closers = ranks
            return self._closers


def _brief(message: str) -> str:
    """llguidance's error without its position in our Lark text and the listing of that text."""
    message = re.split(r"\n\s*1 \| ", message)[0].strip()
    message = re.sub(r"^at \d+\(\d+\):\s*", "", message)
    return " ".join(message.split())


class TokenMask:
    """One sequence's grammar state: `apply` masks a row's logits to the tokens allowed next, `consume` advances.

    The mask is expanded and applied with numpy on a CPU row: tiny torch ops on a busy two-core machine cost
    milliseconds each in thread-pool hand-offs (measured: 7 ms a token through torch, under 0.2 ms this way)."""

    def __init__(self, matcher, vocab_size: int, closers: np.ndarray | None = None):
        self.matcher, self._closers = matcher, closers
        self._words = np.zeros((vocab_size + 31) // 32, dtype=np.int32)

    def allowed(self) -> np.ndarray:
        """Compute the grammar's next step: a bool per token of the tokenizer's vocabulary."""
        self.matcher.unsafe_compute_mask_ptr(self._words.ctypes.data, self._words.nbytes)
        return np.unpackbits(self._words.view(np.uint8), bitorder="little").view(bool)

    def apply(self, logits: torch.Tensor, remaining: int | None = None) -> None:
        """In place on one row of float logits: every token the grammar does not allow next gets -inf; with
        `remaining` tokens of budget left (see ENDING_RESERVE, CLOSING_RESERVE) the allowed ones that end the text
        rank first."""
        allowed = self.allowed()
        if logits.device.type != "cpu":
            self._apply_on_device(logits, allowed, remaining)
            return
        row = logits.numpy()
        size = min(row.shape[-1], allowed.shape[0])
        np.putmask(row[:size], ~allowed[:size], -np.inf)
        row[size:] = -np.inf  # model rows beyond the tokenizer's vocabulary (padding) are never allowed
        ranks = self._ranks(allowed[:size], remaining)
        if ranks is not None:
            finite = row[:size][allowed[:size]]
            spread = float(finite.max() - finite.min()) + 1.0 if finite.size else 1.0
            row[:size] += ranks * spread  # a rank outweighs any difference in the logits

    def _apply_on_device(self, logits: torch.Tensor, allowed: np.ndarray, remaining: int | None) -> None:
        size = min(logits.shape[-1], allowed.shape[0])
        keep = torch.from_numpy(allowed[:size]).to(logits.device)
        logits[:size].masked_fill_(~keep, float("-inf"))
        logits[size:] = float("-inf")
        ranks = self._ranks(allowed[:size], remaining)
        if ranks is not None:
            finite = logits[:size][keep]
            spread = float(finite.max() - finite.min()) + 1.0 if finite.numel() else 1.0
            logits[:size] += torch.from_numpy(ranks).to(logits.device, logits.dtype) * spread

    def _ranks(self, allowed: np.ndarray, remaining: int | None) -> np.ndarray | None:
        """How much each token is preferred near the end of the budget (None: not near it, or nothing to do)."""
        if remaining is None or remaining > ENDING_RESERVE or self._closers is None:
            return None
        closers = self._closers[: allowed.shape[0]]
        if remaining <= CLOSING_RESERVE:
            return closers
        ending = closers == ENDS
        return ending.astype(np.float32) if (ending & allowed).any() else None

    def consume(self, token: int) -> None:
        if not self.matcher.consume_token(token):
            raise RuntimeError(f"the grammar refused token {token}: {self.matcher.get_error()}")

    @property
    def done(self) -> bool:
        """Nothing but the end of the sequence may follow."""
        return self.matcher.is_stopped()
