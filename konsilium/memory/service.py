"""The memory loop: exchanges in the log become memories (after the answer is sent), and current memories come
back with later questions.

The log is the source of truth. `catch_up()` reads the exchanges recorded after the cursor, in order, and for
each one applies its operations and moves the cursor in one transaction: a crash loses nothing, a restart (or
`konsilium memory update`) continues from the last exchange processed. The server runs `catch_up()` on a
background thread woken after each recorded exchange, so extraction never delays an answer.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from .decide import Said, decide, forget_targets, told_in
from .log import ConversationLog, Exchange
from .recall import Recall, Recalled, conversation_text, new_user_text
from .records import UNKNOWN, USER, Memory, Operation, fingerprint, new_memory_id
from .store import MemoryStore
from .subjects import key_is_exclusive

log = logging.getLogger("konsilium.memory")
LEARN_FROM = ("chat.completions", "responses", "ask")  # raw completions carry no conversation to learn from
BATCH = 100


@dataclass
class CatchUp:
    exchanges: int = 0
    operations: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {"exchanges": self.exchanges, "operations": self.operations, "seconds": round(self.seconds, 3)}


class MemoryService:
    def __init__(self, conversation_log: ConversationLog, settings=None, embedder=None, extractor=None):
        from ..config import MemorySettings

        self.settings = settings or MemorySettings()
        self.store = MemoryStore(conversation_log)
        self._embedder = embedder
        self._embedder_lock = threading.Lock()
        self._extractor = extractor
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._catching_up = threading.Lock()
        self._start_lock = threading.Lock()
        self.recaller = Recall(self.store, self.embed, self.settings)

    @property
    def extractor(self):
        """`memory.extractor`'s choice (made by the caller); the deterministic rules unless told otherwise."""
        if self._extractor is None:
            from .extractors import RulesExtractor

            self._extractor = RulesExtractor()
        return self._extractor

    # --- embedding ----------------------------------------------------------------------------------------

    def embedder(self):
        """USE-m3: memories are said in one language and asked about in another, so the space must be shared."""
        with self._embedder_lock:
            if self._embedder is None:
                from ..index.embedder import UniversalSentenceEncoderEmbedder

                self._embedder = UniversalSentenceEncoderEmbedder()
            return self._embedder

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.embedder().embed(texts)

    # --- recall ---------------------------------------------------------------------------------------------

    def recall(self, query: str, k: int | None = None, min_relevance: float | None = None) -> list[Recalled]:
        return self.recaller.recall(query, k, min_relevance)

    def search(self, query: str, k: int = 10) -> list[Recalled]:
        return self.recaller.search(query, k)

    def recall_conversations(self, query: str, exclude_text: str = "") -> list[Recalled]:
        return self.recaller.recall_conversations(query, exclude_text)

    def search_conversations(self, query: str, k: int = 10) -> list[Recalled]:
        """Past exchanges by meaning, best first, with no relevance floor ("what did we decide about X"): the
        user reads the scores. Exchanges whose memories were forgotten are never among them."""
        return self.recaller.recall_conversations(query, k=k, floor=-1.0)

    # --- learning -------------------------------------------------------------------------------------------

    def catch_up(self, limit: int | None = None, progress=None) -> CatchUp:
        """Process every exchange recorded after the cursor (at most `limit`), oldest first; `progress(done,
        total, item)` is told after each."""
        report, started = CatchUp(), time.perf_counter()
        with self._catching_up:  # one pass at a time: the worker and a CLI command in the same process
            total = self.store.pending() if progress is not None else 0
            while limit is None or report.exchanges < limit:
                batch = self.store.log.after(self.store.cursor(), BATCH if limit is None else min(BATCH, limit))
                if not batch:
                    break
                for rowid, exchange in batch:
                    extraction = self._extract(exchange) if learns_from(exchange) else None
                    operations = self.learn(exchange, extraction) if extraction is not None else []
                    # An exchange that asks to forget repeats what it forgets: never a past conversation to offer.
                    offer = extraction is not None and not extraction.forgets
                    past = self._past_conversation(rowid, exchange) if offer else None
                    # What forgetting takes besides the memory (notes, past conversations) goes first: the cursor
                    # moves past this exchange with the operations, and a crash in between must not leave them.
                    self._after_forgetting([self.store.get(op.target) for op in operations if op.event == "DELETE"])
                    self.store.apply(operations, exchange.id, cursor=rowid, conversation=past)
                    report.exchanges += 1
                    if progress is not None:
                        progress(report.exchanges, max(total, report.exchanges), exchange.id)
                    for op in operations:
                        report.operations[op.event] = report.operations.get(op.event, 0) + 1
        report.seconds = time.perf_counter() - started
        return report

    def _past_conversation(self, rowid: int, exchange: Exchange):
        """The exchange as a searchable past conversation: what the user asked and how it was answered."""
        from .store import PastConversation

        text = conversation_text(exchange)
        if not text or exchange.status != "ok" or exchange.output != "text" or not self.settings.conversations:
            return None
        # Two vectors: the question alone (what it was about) and with the answer (what was decided); a query
        # matches the closer one.
        vectors = self.embed([text.split("\n", 1)[0], text])
        return PastConversation(rowid, exchange.id, exchange.time, vectors.reshape(-1))

    def _extract(self, exchange: Exchange):
        """What the user's new words in `exchange` say (None: there are none)."""
        said = new_user_text(exchange.messages)
        return self.extractor.extract(said, exchange) if said else None

    def learn(self, exchange: Exchange, extraction=None) -> list[Operation]:
        """The operations one exchange leads to (nothing is written here); `extraction`: already read from it."""
        extraction = extraction if extraction is not None else self._extract(exchange)
        if extraction is None:
            return []
        matrix = self.store.current_matrix()
        current = list(matrix.memories)
        operations: list[Operation] = []
        statements = [_linked(s, matrix, self.store) for s in extraction.statements if s.text.strip()]
        vectors = self.embed([s.text for s in statements]) if statements else []
        searched = self._in_context(statements, vectors)

        for statement, vector, search_vector in zip(statements, vectors, searched, strict=True):
            said_it = Said(statement, vector, exchange.time, exchange.id, self.extractor.origin, search_vector)
            if self.store.is_forgotten(fingerprint(statement.text, statement.about), exchange.time):
                continue
            op = decide(said_it, current, key_is_exclusive)
            operations.append(op)
            if op.event in ("ADD", "UPDATE"):
                current.append(op.memory)
            if op.event == "UPDATE":
                current = [m for m in current if m.id != op.target and m.id not in op.also]
        forgets = [f for f in extraction.forgets if f.query.strip()]
        vectors = self.embed([f.query for f in forgets]) if forgets else []
        for request, vector in zip(forgets, vectors, strict=True):
            query = request.query
            for _, memory in told_in(forget_targets(query, vector, current), request.month):
                operations = self._forgetting(memory, operations, f"asked to forget: {query}")
                current = [m for m in current if m.id != memory.id]
        return operations

    def _in_context(self, statements, vectors) -> list[np.ndarray | None]:
        """Each statement's search vector: the mean of its own vector and its vector with what was said around it
        (a question's cosine with it is the mean of both cosines: measured across the eval sets, the one said in
        context finds fragments, its own keeps short statements found); None where nothing was said around it."""
        framed = [i for i, s in enumerate(statements) if s.context]
        out: list[np.ndarray | None] = [None] * len(statements)
        if framed:
            said_around = self.embed([f"{statements[i].context} {statements[i].text}" for i in framed])
            for row, i in enumerate(framed):
                out[i] = (vectors[i] + said_around[row]) / 2
        return out

    def _forgetting(self, memory: Memory, operations: list[Operation], reason: str) -> list[Operation]:
        """`operations` with `memory` forgotten: one added in this same exchange is simply not added (and what it
        superseded is forgotten); a stored one is deleted with the older versions it superseded."""
        for op in operations:
            if op.event in ("ADD", "UPDATE") and op.memory.id == memory.id:
                operations = [o for o in operations if o is not op]
                stored = [op.target, *op.also] if op.event == "UPDATE" else []
                break
        else:
            stored = [memory.id]
        for memory_id in stored:
            deleting = {o.target for o in operations if o.event == "DELETE"}
            operations = operations + [op for op in self._deletions(memory_id, reason) if op.target not in deleting]
        return operations

    def _deletions(self, memory_id: str, reason: str) -> list[Operation]:
        """DELETE for a memory and every version of it (older or newer) not forgotten yet."""
        chain = dict.fromkeys(self.store.chain(memory_id))
        return [
            Operation("DELETE", target=chain_id, reason=reason)
            for chain_id in chain
            if self.store.get(chain_id).status != "forgotten"
        ]

    # --- the user's own actions -----------------------------------------------------------------------------

    def add(self, text: str, about: str = USER, kind: str = "fact", pinned: bool = False) -> Memory:
        text = _clean(text)
        now = time.time()
        memory = Memory(
            id=new_memory_id(),
            text=text,
            about=about or USER,
            kind=kind,
            pinned=pinned,
            origin="user",
            created=now,
            updated=now,
            vector=self.embed([text])[0],
        )
        return self.store.add(memory)

    def edit(self, memory_id: str, text: str) -> Memory:
        text = _clean(text)
        return self.store.edit(memory_id, text, self.embed([text])[0])

    def forget(self, memory_id: str) -> list[Memory]:
        """Forget a memory and the older versions it superseded (one transaction); returns what was forgotten."""
        deletions = self._deletions(self.store.get(memory_id).id, "forgotten by the user")
        self._after_forgetting([self.store.get(op.target) for op in deletions])
        self.store.apply(deletions)
        return [self.store.get(op.target) for op in deletions]

    def _after_forgetting(self, forgotten: list[Memory]) -> None:
        """What else forgetting takes: the exchanges they came from are never offered as past conversations
        again, exported notes of them are deleted, and (if configured) the user's words in the log are blanked."""
        from .export import remove_notes

        if not forgotten:
            return
        self.store.exclude_conversations(sorted({m.exchange_id for m in forgotten if m.exchange_id}))
        remove_notes(self.store.export_folders(), [m.id for m in forgotten])
        if self.settings.redact_log_on_forget:
            self._redact_sources(forgotten)

    def export(self, folder) -> list:
        """Every current memory as a Markdown note in `folder`; the folder is remembered for later forgets."""
        from pathlib import Path

        from .export import write_notes

        folder = Path(folder).expanduser().resolve()
        written = write_notes(self.store.list("current", limit=None), folder)
        self.store.add_export_folder(str(folder))
        return written

    def forget_matching(self, query: str) -> list[Memory]:
        current = self.store.current_matrix().memories
        targets = forget_targets(query, self.embed([query])[0], current)
        forgotten = []
        for _, memory in targets:
            forgotten.extend(self.forget(memory.id))
        return forgotten

    def _redact_sources(self, forgotten: list[Memory]) -> None:
        for memory in forgotten:
            if memory.exchange_id:
                self.store.log.redact_user_text(memory.exchange_id, "[forgotten at the user's request]")

    # --- the background worker -----------------------------------------------------------------------------

    def start(self) -> None:
        """Catch up in the background now and after every `notify()`."""
        with self._start_lock:
            if self._worker is None and not self._stop.is_set():
                self._worker = threading.Thread(target=self._run, daemon=True, name="memory-extractor")
                self._worker.start()
        self._wake.set()

    def notify(self) -> None:
        """An exchange was logged: learn from it on the worker (started on first use)."""
        if self._worker is None:
            self.start()
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._worker is not None:
            self._worker.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                report = self.catch_up()
                if report.exchanges:
                    log.info("memory: %d exchange(s) read, %s", report.exchanges, report.operations or "no change")
            except Exception:  # the next notify retries from the cursor; nothing was half-applied
                log.exception("memory extraction failed; it resumes from the last exchange processed")
                time.sleep(1.0)


def _linked(statement, matrix, store=None):
    """A statement that starts with the name of someone the memories already know ("Тимур теперь звукорежиссёр",
    known as "husband Timur", or said in passing: "My partner Tomasz and I…") and is not in the first person is
    about them. `matrix`: the current memories, with the people they are about already parsed."""
    from dataclasses import replace

    from . import lexicon as lx
    from .attribution import speaks_of_self
    from .people import person

    opening = [w for w in statement.text.split()[:3] if w.lower().strip(",") not in lx.CLAUSE_OPENERS]
    first = opening[0].strip(",.:;!?") if opening else ""  # "Also Sonya's English class moved…" → "Sonya's"
    bare = person(statement.about) if statement.about not in (USER, UNKNOWN) else None
    if bare is not None and bare.relation is None:  # the extractor found a name alone: "Тимур" is "husband Timur"
        named = bare
    elif statement.about != USER or not first[:1].isupper() or speaks_of_self(statement.text, as_subject=True):
        return statement  # "Нина, кстати, дизайнер, она мне посоветовала" is still about Нина: "мне" is no subject
    else:
        named = person(first)
    for row, known in matrix.people.items():
        if known.name and named is not None and named.matches(known):
            return replace(statement, about=matrix.memories[row].about, kind="person")
    if store is not None and named is not None and named.name and statement.about == USER and _third_person(statement):
        introduced = _introduced_as(first, matrix, store)
        if introduced:
            return replace(statement, about=introduced, kind="person")
    return statement


def _third_person(statement) -> bool:
    """ "Tomasz is from Gdańsk", "Оля уволилась": a name, then a verb of the third person."""
    from .attribution import third_person_verb

    tokens = statement.text.split()
    return len(tokens) > 1 and third_person_verb(tokens[1].strip(",.:;!?").lower())


def _introduced_as(name: str, matrix, store) -> str | None:
    """ "partner Tomasz" when a memory of the user's says "My partner Tomasz and I…": the relation a name was
    introduced with."""
    from ..index.text import analyze
    from .people import name_key, same_given_name
    from .recall import introductions

    key = name_key(name)
    for found in introductions(store, matrix, analyze(name)):
        if same_given_name(found.name, key) or same_given_name(key, found.name):
            return f"{found.relation} {name}"
    return None


def learns_from(exchange: Exchange) -> bool:
    """Exchanges that teach: chat and `ask` turns whose user did not opt out (`konsilium.memory: false`). A turn
    that asked for JSON (`response_format`) hands the model data to process, not the user's own words; tool results
    are never user messages (`new_user_text` reads role "user" only)."""
    return exchange.endpoint in LEARN_FROM and not exchange.timings.get("memory_off") and exchange.output != "json"


def _clean(text: str) -> str:
    text = " ".join(str(text or "").split())
    if not text:
        raise ValueError("a memory needs some text")
    if len(text) > 2000:
        raise ValueError("a memory is at most 2,000 characters; put longer texts in a note of the vault")
    return text
