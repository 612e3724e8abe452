"""Who reads an exchange for memories: the deterministic rules (the default on the small CPU model) or the
configured model (`memory.extractor: model`, meant for Qwen3-30B-A3B on vLLM or an OpenAI-compatible upstream).

Both return the same `Extraction` (statements about the user and his people, forget requests); which statement
supersedes which is then decided the same way for both (`decide.py`), so a model that invents a subject key
cannot make the store inconsistent.
"""

from __future__ import annotations

import json
import logging
import re

from .extract import Extraction, ForgetRequest, Statement, extract
from .log import Exchange

log = logging.getLogger("konsilium.memory")
CAPABLE_ENGINES = ("vllm", "openai-upstream")
KINDS = ("identity", "work", "home", "device", "schedule", "health", "preference", "plan", "person", "fact")
MAX_FACTS = 12
PROMPT = """You keep a personal memory for the user. Read the user's new messages below and list what they say
about the user himself (name, work, home, devices, schedule, health, preferences, plans and decisions) and about
people around him. Never take anything from questions, requests, or general knowledge. A statement about someone
else is about them ("my friend Igor has an RTX 3090" is about "friend Igor", not the user).
If the user asks to forget something, put what to forget in "forget".
Answer with JSON only, in this shape:
{"facts": [{"text": "self-contained statement in the user's language", "about": "user or who it is about",
"kind": "one of: %s", "key": "short subject key like job, home.city, laptop.ram, schedule:tutor, diet or null",
"update": true if it says something changed}], "forget": ["what to forget"]}

User's new messages:
%s"""


class RulesExtractor:
    """The deterministic extractor (`memory/extract.py`): first-person statements, remember / forget requests."""

    origin = "rules"

    def extract(self, user_messages: list[str], exchange: Exchange) -> Extraction:
        from .recall import asked_before, previous_user_text

        return extract(
            user_messages, before=previous_user_text(exchange.messages), asked=asked_before(exchange.messages)
        )


class ModelExtractor:
    """The engine reads the messages and answers JSON; an answer that does not parse falls back to the rules for
    that exchange (and says so in the server log), so nothing said is lost to a malformed answer."""

    origin = "model"

    def __init__(self, engine, max_tokens: int = 512):
        self.engine, self.max_tokens = engine, max_tokens

    def extract(self, user_messages: list[str], exchange: Exchange) -> Extraction:
        from ..engines import SamplingParams

        text = "\n".join(f"- {m}" for m in user_messages)
        messages = [{"role": "user", "content": PROMPT % (", ".join(KINDS), text)}]
        try:
            result = self.engine.generate_chat(messages, SamplingParams(max_tokens=self.max_tokens, temperature=0.0))
            return parse_model_answer(result.text)
        except Exception as exc:  # a malformed or failed answer: the rules still read the exchange
            log.warning("memory: the model's extraction for %s failed (%s); using the rules", exchange.id, exc)
            return extract(user_messages)


def parse_model_answer(text: str) -> Extraction:
    """The JSON object in the model's answer (a code fence or words around it are tolerated)."""
    match = re.search(r"\{.*\}", text, re.DOTALL)
    if match is None:
        raise ValueError("no JSON object in the answer")
    data = json.loads(match.group(0))
    if not isinstance(data, dict):
        raise ValueError("the answer is not a JSON object")
    statements = []
    for fact in (data.get("facts") or [])[:MAX_FACTS]:
        if not isinstance(fact, dict) or not isinstance(fact.get("text"), str) or not fact["text"].strip():
            continue
        kind = fact.get("kind") if fact.get("kind") in KINDS else "fact"
        key = fact.get("key") if isinstance(fact.get("key"), str) and fact.get("key").strip() else None
        about = fact.get("about") if isinstance(fact.get("about"), str) and fact.get("about").strip() else "user"
        statements.append(
            Statement(
                text=fact["text"].strip()[:300],
                about=about.strip()[:100],
                kind=kind,
                key=key.strip().lower()[:60] if key else None,
                update=bool(fact.get("update")),
                explicit=False,
            )
        )
    forgets = [ForgetRequest(q.strip()) for q in (data.get("forget") or []) if isinstance(q, str) and q.strip()]
    return Extraction(statements, forgets)


def make_extractor(home, engine=None):
    """`memory.extractor`: rules, model, or auto (the model where it is a capable one)."""
    choice = home.config.memory.extractor
    if choice == "auto":
        choice = "model" if home.config.engine.kind in CAPABLE_ENGINES else "rules"
    if choice == "model" and engine is not None:
        return ModelExtractor(engine)
    return RulesExtractor()
