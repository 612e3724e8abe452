"""The tools the council can call on itself, and the registry a task offers the model (with the workers).

Built-in: `search_vault(query, k)` over the index, `read_note(wikilink)` for `[[Note]]`, `[[path/to/note#Heading]]`
(resolved as Obsidian does: a path, a file name, a title or an alias of an indexed note), `search_memories(query,
k)` when memory is on, and `write_note(title, text)`, which writes a new note into the vault's inbox folder
(`agent.inbox`): the one action with effects, so it runs only once the user approves. It never overwrites a note
(a taken name gets " (2)"), its file name is cleaned of what Obsidian or a file system cannot take, and the path
is checked to stay inside the inbox.

A tool never raises into the loop: a bad argument or a failure is a `ToolResult` with `ok=False` and one line
saying why, which the model reads as the call's result.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..grounding.citations import wikilink_target


@dataclass
class ToolResult:
    text: str
    ok: bool = True
    links: list[str] = field(default_factory=list)  # wikilink targets of the notes it found or read
    data: dict = field(default_factory=dict)

    @classmethod
    def error(cls, message: str) -> ToolResult:
        return cls(f"error: {message}", ok=False)


@dataclass
class Tool:
    name: str
    description: str
    parameters: dict
    run: Callable[[dict], ToolResult]
    effect: str | None = None  # what it changes (None: read-only); such a call waits for the user's approval

    def spec(self) -> dict:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


class ToolRegistry:
    def __init__(self, tools: list[Tool] | None = None):
        self.tools: dict[str, Tool] = {}
        for tool in tools or []:
            self.add(tool)

    def add(self, tool: Tool) -> None:
        self.tools[tool.name] = tool

    def read_only(self) -> ToolRegistry:
        """The tools without effects: what runs where nobody can approve (a chat completion)."""
        return ToolRegistry([tool for tool in self.tools.values() if tool.effect is None])

    def specs(self) -> list[dict]:
        return [tool.spec() for tool in self.tools.values()]

    def get(self, name: str) -> Tool | None:
        return self.tools.get(name)

    def run(self, name: str, arguments: str | dict) -> ToolResult:
        tool = self.tools.get(name)
        if tool is None:
            return ToolResult.error(f"there is no tool {name!r}; the tools are {', '.join(self.tools)}")
        try:
            parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
        except ValueError as exc:
            return ToolResult.error(f"the arguments are not JSON ({exc})")
        if not isinstance(parsed, dict):
            return ToolResult.error("the arguments must be a JSON object")
        try:
            return tool.run(parsed)
        except Exception as exc:  # a tool's failure is the model's to read, not the task's end
            return ToolResult.error(f"{name} failed: {exc}")


# --- the built-in tools ------------------------------------------------------------------------------------------


def _text(arguments: dict, key: str, limit: int = 2000) -> str:
    value = arguments.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key} must be a non-empty string")
    return value.strip()[:limit]


def _k(arguments: dict, default: int) -> int:
    k = arguments.get("k", default)
    return max(1, min(int(k), 20)) if isinstance(k, int | float) and not isinstance(k, bool) else default


class VaultTools:
    """The vault and memory tools over one home's index, settings and memory service."""

    def __init__(self, home, knowledge=None, memory=None):
        self.home, self.knowledge, self.memory = home, knowledge, memory
        self.settings = home.config.agent

    def tools(self) -> list[Tool]:
        # maxLength: under a grammar (forced calls) a small model's string ends in time, so its arguments parse.
        query = {"type": "string", "maxLength": 200, "description": "what to look for, in the words of the notes"}
        k = {"type": "integer", "minimum": 1, "maximum": 20, "description": "how many results"}
        tools = [
            Tool(
                "search_vault",
                "Search the user's notes (Obsidian vault). Returns passages with the [[wikilink]] of each note.",
                {"type": "object", "properties": {"query": query, "k": k}, "required": ["query"]},
                self.search_vault,
            ),
            Tool(
                "read_note",
                "Read one note of the vault by its wikilink, e.g. [[Note]] or [[folder/Note#Heading]].",
                {
                    "type": "object",
                    "properties": {
                        "wikilink": {"type": "string", "maxLength": 300, "description": "[[Note]] or [[path#Heading]]"}
                    },
                    "required": ["wikilink"],
                },
                self.read_note,
            ),
        ]
        if self.memory is not None:
            tools.append(
                Tool(
                    "search_memories",
                    "Search what is remembered about the user (facts, preferences, decisions).",
                    {"type": "object", "properties": {"query": query, "k": k}, "required": ["query"]},
                    self.search_memories,
                )
            )
        tools.append(
            Tool(
                "write_note",
                f"Write a new note into the vault's {self.settings.inbox} folder (the user approves it first).",
                {
                    "type": "object",
                    "properties": {
                        "title": {
                            "type": "string",
                            "maxLength": 120,
                            "description": "the note's title (its file name)",
                        },
                        "text": {"type": "string", "description": "the note's Markdown text"},
                    },
                    "required": ["title", "text"],
                },
                self.write_note,
                effect=f"writes a new note into the vault's {self.settings.inbox} folder",
            )
        )
        return tools

    # --- search and read -------------------------------------------------------------------------------------

    def search_vault(self, arguments: dict) -> ToolResult:
        if self.knowledge is None:
            return ToolResult.error("there is no index to search (run `konsilium index PATH`)")
        query = _text(arguments, "query")
        passages = self.knowledge.search(query, _k(arguments, self.settings.search_k))
        if not passages:
            return ToolResult("no notes match", data={"query": query})
        lines, links = [], []
        for number, passage in enumerate(passages, 1):
            target = wikilink_target(passage.note, passage.heading)
            links.append(target)
            snippet = " ".join(passage.text.split())[:400]
            lines.append(f"{number}. [[{target}]] {snippet}")
        return ToolResult("\n".join(lines), links=links)

    def search_memories(self, arguments: dict) -> ToolResult:
        query = _text(arguments, "query")
        found = self.memory.search(query, _k(arguments, self.settings.search_k))
        if not found:
            return ToolResult("nothing remembered about that")
        return ToolResult("\n".join(f"- {item.memory.text}" for item in found))

    def read_note(self, arguments: dict) -> ToolResult:
        link = _text(arguments, "wikilink", 500)
        from ..vault.markdown import parse_link

        parsed = parse_link(link)
        path, heading = (parsed.target, parsed.heading or parsed.block or "") if parsed else ("", "")
        if not path:
            return ToolResult.error(f"{link!r} names no note")
        found = self._resolve(path)
        if found is None:
            return ToolResult.error(f"no note {path!r} in the vault")
        root, rel = found
        from ..vault.walker import Skipped, read_note

        note = read_note(root, rel, self.home.config.vault.max_file_bytes)
        if isinstance(note, Skipped):
            return ToolResult.error(f"{rel}: {note.reason}")
        sections = note.sections
        if heading:
            wanted = heading.casefold()
            sections = [s for s in sections if any(h.casefold() == wanted for h in s.heading_path)] or sections
        text = "\n\n".join(
            (f"## {s.heading_path[-1]}\n" if s.heading_path else "") + s.text.strip() for s in sections
        ).strip()
        limit = self.settings.note_chars
        if len(text) > limit:
            text = text[:limit] + f"\n[… cut at {limit} characters]"
        target = rel.removesuffix(".md") + (f"#{heading}" if heading else "")
        return ToolResult(f"[[{target}]]\n{text}", links=[target])

    def _resolve(self, path: str) -> tuple[Path, str] | None:
        """(vault root, note path) of the note a link names, as the index resolves links (index/link_targets.py):
        its path, a path's end, its title or an alias; a note not indexed (yet) by its path or file name."""
        from ..index.link_targets import link_key
        from ..vault.walker import iter_vault_files

        store = self._store()
        hits = store.resolve_link(path) if store is not None else []
        if hits:
            return Path(hits[0].vault), hits[0].note
        wanted = link_key(path)
        for root in self._vault_roots():  # not indexed (yet): the vault's files, by path, then by file name
            notes = list(iter_vault_files(root))
            for rel in notes:
                if link_key(rel) == wanted:
                    return root, rel
            for rel in notes:
                if link_key(rel).rsplit("/", 1)[-1] == wanted:
                    return root, rel
        return None

    def _store(self):
        knowledge = self.knowledge
        if getattr(knowledge, "retriever", None) is None or knowledge.default_collection not in knowledge.collections():
            return None
        return knowledge.retriever(knowledge.default_collection).store

    def _vault_roots(self) -> list[Path]:
        return [Path(p).expanduser() for p in self.home.config.vault.paths]

    # --- write (with the user's approval) --------------------------------------------------------------------

    def write_note(self, arguments: dict) -> ToolResult:
        title, text = _text(arguments, "title", 300), _text(arguments, "text", 200_000)
        roots = self._vault_roots()
        if not roots:
            return ToolResult.error("no vault to write into: set vault.paths in konsilium.yaml")
        root = roots[0]
        inbox = root / self.settings.inbox
        if not _inside(inbox, root):
            return ToolResult.error(f"agent.inbox {self.settings.inbox!r} is not inside the vault")
        inbox.mkdir(parents=True, exist_ok=True)
        name = note_file_name(title)
        for attempt in range(1, 1000):
            candidate = inbox / (f"{name}.md" if attempt == 1 else f"{name} ({attempt}).md")
            if not _inside(candidate, inbox):
                return ToolResult.error(f"{title!r} would leave the inbox")
            try:
                with open(candidate, "x", encoding="utf-8") as fh:  # "x": never over an existing note
                    fh.write(text if text.endswith("\n") else text + "\n")
            except FileExistsError:
                continue
            target = candidate.relative_to(root).as_posix().removesuffix(".md")
            return ToolResult(f"wrote [[{target}]]", links=[target], data={"path": str(candidate)})
        return ToolResult.error(f"too many notes named {name!r} in the inbox")


_UNSAFE = re.compile(r'[\\/:*?"<>|#^\[\]\x00-\x1f\x7f]')


def note_file_name(title: str) -> str:
    """A file name for a note titled `title`: no path separators or characters Obsidian links cannot hold, no
    leading dots, at most 120 characters; "Note" when nothing is left."""
    name = unicodedata.normalize("NFC", title)
    name = _UNSAFE.sub(" ", name)
    name = " ".join(name.split()).strip(" .")
    return name[:120].rstrip(" .") or "Note"


def _inside(path: Path, root: Path) -> bool:
    real, base = os.path.realpath(path), os.path.realpath(root)
    return real == base or real.startswith(base.rstrip(os.sep) + os.sep)
