"""Obsidian Markdown → `Note`: properties, headings, links, tags, callouts and nexus conversation turns.

The parser is line-based and forgiving: it never raises on odd input, and whatever it cannot understand
stays in the text as written. Section text is cleaned for search (no markup that carries no words), while
`Turn.text` keeps the message's Markdown for anything that wants to show or reuse it.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from urllib.parse import unquote

import yaml

from .model import Link, Note, Section, Turn

_FRONTMATTER_END = re.compile(r"^(---|\.\.\.)\s*$")
_QUOTE = re.compile(r"^ {0,3}>\s?")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_HRULE = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_CALLOUT = re.compile(r"^\[!([^\]]+)\][+-]?[ \t]*(.*)$")
_NEXUS_CALLOUT = re.compile(r"^>\s*\[!nexus_(user|agent)\][+-]?\s*(.*)$")
_NEXUS_HEADER = re.compile(r"^\*\*[^*]+\*\*\s*(?:-\s*(.+?))?\s*$")
_NEXUS_META = re.compile(r"^(# Title|Created|Last Updated|Chat URL):\s*(.*?)\s*$")
_UID = re.compile(r"^\s*UID:\s*(\S+)\s*$")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_WIKILINK = re.compile(r"(!?)\[\[([^\[\]]+?)\]\]")
_MDLINK = re.compile(r"(!?)\[([^\[\]]*)\]\(\s*<?([^()<>\s]+(?:\s[^()<>]*)?)>?\s*\)")
_FOOTNOTE_REF = re.compile(r"\[\^[^\]\s]+\](?::[ \t]*)?")
_EMPHASIS = re.compile(r"\*\*|__")
_BLOCK_ID = re.compile(r"\s\^[A-Za-z0-9-]+\s*$")
# Obsidian tags: letters of any script, digits, "_", "-", "/"; preceded by start or whitespace.
_TAG = re.compile(r"(?<!\S)#([\w/-]+)")
_NUMERIC_TAG = re.compile(r"[\d/-]*")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")

ROLE_LABELS = {"user": "User", "assistant": "Assistant"}


def parse_note(path: str, text: str) -> Note:
    """Parse one note. `path` is vault-relative with forward slashes. Never raises on bad Markdown/YAML."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    note = Note(path=path, title=PurePosixPath(path).stem)
    body = _split_frontmatter(text, note)
    segments = _segments(body.split("\n"))
    is_nexus = "nexus" in note.properties or any(s.role for s in segments)
    tags: list[str] = []
    for seg in segments:
        lines = seg.lines
        if is_nexus and seg.role is None:
            lines = _take_nexus_meta(lines, note.properties)
        base = [ROLE_LABELS[seg.role]] if seg.role else []
        turn = len(note.turns) if seg.role else None
        parsed = _BlockParser(base, seg.role, turn).run(lines)
        note.sections.extend(parsed.sections)
        note.links.extend(parsed.links)
        tags.extend(parsed.tags)
        if seg.role:
            uid = seg.uid or (parsed.uids[0] if parsed.uids else None)
            turn_text = "\n".join(seg.lines).strip()
            note.turns.append(Turn(role=seg.role, text=turn_text, timestamp=seg.timestamp, uid=uid))
    note.tags = _dedupe(note.tags + tags)
    return note


# --- frontmatter ------------------------------------------------------------------------------------------


def _split_frontmatter(text: str, note: Note) -> str:
    """Fill properties/aliases/tags from a leading `---` YAML block and return the rest of the text."""
    lines = text.split("\n")
    if not lines or lines[0].rstrip() != "---":
        return text
    end = next((i for i in range(1, len(lines)) if _FRONTMATTER_END.match(lines[i])), None)
    if end is None:
        return text  # Obsidian shows an unclosed block as text, so do we
    raw = "\n".join(lines[1:end])
    body = "\n".join(lines[end + 1 :])
    try:
        data = yaml.safe_load(raw) if raw.strip() else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark else ""
        note.warnings.append(f"invalid YAML frontmatter{where}; properties ignored")
        return body
    if data is None:
        data = {}
    if not isinstance(data, dict):
        note.warnings.append("frontmatter is not a mapping; properties ignored")
        return body
    note.properties = {str(k): _plain(v) for k, v in data.items()}
    note.aliases = _as_list(note.properties.get("aliases", note.properties.get("alias")))
    note.tags = [t.lstrip("#") for t in _as_list(note.properties.get("tags", note.properties.get("tag")), True)]
    note.tags = [t for t in note.tags if t]
    # Properties may hold links too (`related: "[[Other note]]"`).
    for value in _strings(note.properties):
        note.links.extend(_parse_wikilink(m) for m in _WIKILINK.finditer(value))
    return body


def _plain(value):
    """YAML values as JSON-friendly types (dates become ISO strings) so the index can store them."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    if isinstance(value, _dt.date | _dt.datetime | _dt.time):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _as_list(value, split_words: bool = False) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if v is not None and str(v).strip()]
    s = str(value).strip()
    if split_words:  # `tags: a, b c` is accepted by Obsidian
        return [t for t in re.split(r"[,\s]+", s) if t]
    return [s] if s else []


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _dedupe(tags: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for t in tags:
        if t.lower() not in seen:  # Obsidian tags are case-insensitive; keep the first spelling
            seen.add(t.lower())
            out.append(t)
    return out


# --- nexus conversation segments --------------------------------------------------------------------------


@dataclass
class _Segment:
    lines: list[str]
    role: str | None = None  # None: ordinary Markdown between/around turns
    timestamp: str | None = None
    uid: str | None = None


def _segments(lines: list[str]) -> list[_Segment]:
    """Cut the body into nexus turns (`>[!nexus_user]` callout + its `>` lines + `<!-- UID -->`) and the rest.

    Turn lines are returned without their first `>` level, so the turn parses as a Markdown document.
    """
    out: list[_Segment] = []
    plain: list[str] = []
    fence: str | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _track_fence(line, fence)
        m = _NEXUS_CALLOUT.match(line) if fence is None else None
        if not m:
            plain.append(line)
            i += 1
            continue
        if plain:
            out.append(_Segment(plain))
            plain = []
        header = _NEXUS_HEADER.match(m.group(2))
        seg = _Segment([], role="user" if m.group(1) == "user" else "assistant")
        seg.timestamp = header.group(1) if header else (m.group(2) or None)
        i += 1
        while i < len(lines) and lines[i].startswith(">"):
            seg.lines.append(_QUOTE.sub("", lines[i], count=1))
            i += 1
        if i < len(lines):
            uid = re.match(r"^\s*<!--\s*UID:\s*(\S+)\s*-->\s*$", lines[i])
            if uid:
                seg.uid = uid.group(1)
                i += 1
        out.append(seg)
    if plain:
        out.append(_Segment(plain))
    return out


def _track_fence(line: str, fence: str | None) -> str | None:
    """Top-level fence state, so that a nexus callout shown inside a code block is not taken for a turn."""
    m = _FENCE.match(line)
    if fence is None:
        return m.group(1) if m and not (m.group(1)[0] == "`" and "`" in m.group(2)) else None
    if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not m.group(2).strip():
        return None
    return fence


def _take_nexus_meta(lines: list[str], properties: dict) -> list[str]:
    """The `# Title:` / `Created:` / `Chat URL:` header of a nexus note is metadata, not content."""
    keys = {"# Title": "chat_title", "Created": "created", "Last Updated": "updated", "Chat URL": "chat_url"}
    out = []
    for line in lines:
        m = _NEXUS_META.match(line)
        if m:
            properties.setdefault(keys[m.group(1)], m.group(2))
        else:
            out.append(line)
    return out


# --- Markdown blocks --------------------------------------------------------------------------------------


@dataclass
class _Parsed:
    sections: list[Section] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    uids: list[str] = field(default_factory=list)


class _BlockParser:
    """One pass over lines: fences, comments, headings, quotes/callouts, links and tags."""

    def __init__(self, base_path: list[str], role: str | None, turn: int | None = None):
        self.base = base_path
        self.role = role
        self.turn = turn
        self.out = _Parsed()
        self.stack: list[tuple[int, str]] = []
        self.buf: list[str] = []
        self.fence: tuple[str, int] | None = None  # (fence chars, quote depth it was opened at)
        self.comment: str | None = None  # "<!--" or "%%" while inside a multi-line comment
        self.comment_text: list[str] = []

    def run(self, lines: list[str]) -> _Parsed:
        for line in lines:
            self._line(line)
        self._flush()
        return self.out

    def _path(self) -> list[str]:
        return self.base + [t for _, t in self.stack]

    def _flush(self) -> None:
        text = re.sub(r"\n{3,}", "\n\n", "\n".join(self.buf)).strip()
        self.buf = []
        if text:
            self.out.sections.append(Section(heading_path=self._path(), text=text, role=self.role, turn=self.turn))

    def _line(self, line: str) -> None:
        # Inside a fence only the quote levels the fence was opened at are markup; deeper `>` is code.
        max_depth = self.fence[1] if self.fence is not None else 20
        depth, content = 0, line
        while depth < max_depth and (m := _QUOTE.match(content)):
            depth, content = depth + 1, content[m.end() :]

        if self.fence is not None:
            chars, fence_depth = self.fence
            m = _FENCE.match(content)
            closes = m and m.group(1)[0] == chars[0] and len(m.group(1)) >= len(chars) and not m.group(2).strip()
            if closes or depth < fence_depth:
                self.fence = None
            if closes:
                self.buf.append(content.rstrip())
                return
            if self.fence is not None:
                self.buf.append(content.rstrip())  # code is kept verbatim: no links, tags or headings
                return

        if self.comment is None:
            m = _FENCE.match(content)
            if m and not (m.group(1)[0] == "`" and "`" in m.group(2)):
                self.fence = (m.group(1), depth)
                self.buf.append(content.rstrip())
                return

        content = self._strip_comments(content)
        if content is None:
            return  # the whole line was inside a comment
        if depth == 0 and (h := _HEADING.match(content)):
            title = _EMPHASIS.sub("", self._inline(h.group(2) or "")).strip()
            if title:
                self._flush()
                level = len(h.group(1))
                self.stack = [(lv, t) for lv, t in self.stack if lv < level] + [(level, title)]
            return
        if _HRULE.match(content):
            return  # separators carry no words
        if depth > 0 and (c := _CALLOUT.match(content.strip())):
            content = c.group(2)  # `> [!tip] Title` → "Title"
        elif depth > 0 and (h := _HEADING.match(content)):
            content = h.group(2) or ""  # a heading inside a quote/callout is not an outline heading
        self.buf.append(self._inline(content).rstrip())

    def _strip_comments(self, line: str) -> str | None:
        """Remove `<!-- -->` and `%% %%` comments (possibly multi-line), leaving inline code alone."""
        if self.comment is None and not line.strip():
            return ""  # blank lines separate paragraphs
        out: list[str] = []
        pos = 0
        had_text = False
        for m in list(_CODE_SPAN.finditer(line)) + [None]:
            start = m.start() if m else len(line)
            segment = line[pos:start]
            while segment:
                if self.comment is not None:
                    end_marker = "-->" if self.comment == "<!--" else "%%"
                    j = segment.find(end_marker)
                    if j < 0:
                        self.comment_text.append(segment)
                        segment = ""
                        break
                    self.comment_text.append(segment[:j])
                    self._close_comment()
                    segment = segment[j + len(end_marker) :]
                    continue
                j1, j2 = segment.find("<!--"), segment.find("%%")
                js = [j for j in (j1, j2) if j >= 0]
                if not js:
                    out.append(segment)
                    had_text = had_text or bool(segment.strip())
                    break
                j = min(js)
                out.append(segment[:j])
                had_text = had_text or bool(segment[:j].strip())
                self.comment = "<!--" if j == j1 else "%%"
                segment = segment[j + len(self.comment) :]
            if m:
                if self.comment is None:
                    out.append(m.group(0))
                    had_text = True
                pos = m.end()
        if self.comment is not None:
            self.comment_text.append("\n")
        return "".join(out) if had_text else None

    def _close_comment(self) -> None:
        body = "".join(self.comment_text)
        if self.comment == "<!--" and (m := _UID.match(body)):
            self.out.uids.append(m.group(1))
        self.comment, self.comment_text = None, []

    def _inline(self, text: str) -> str:
        """Render links as their words and collect links and tags; inline code is left untouched."""
        parts: list[str] = []
        pos = 0
        for m in list(_CODE_SPAN.finditer(text)) + [None]:
            plain = text[pos : m.start() if m else len(text)]
            plain = _WIKILINK.sub(self._wikilink, plain)
            plain = _MDLINK.sub(self._mdlink, plain)
            plain = _FOOTNOTE_REF.sub("", plain)
            for t in _TAG.findall(plain):
                if not _NUMERIC_TAG.fullmatch(t):
                    self.out.tags.append(t.rstrip("/"))
            parts.append(plain)
            if m:
                parts.append(m.group(0))
                pos = m.end()
        return _BLOCK_ID.sub("", "".join(parts))

    def _wikilink(self, m: re.Match) -> str:
        link = _parse_wikilink(m)
        self.out.links.append(link)
        if link.alias:
            return link.alias
        words = [link.target, link.heading or ""]
        return " ".join(w for w in words if w).replace("#", " ")

    def _mdlink(self, m: re.Match) -> str:
        embed, label, url = m.group(1) == "!", m.group(2), m.group(3).split()[0]
        if not _SCHEME.match(url) and not url.startswith("#"):  # a local file: Obsidian treats it as a link
            target, _, sub = unquote(url).partition("#")
            heading, block = _subpath(sub)
            target = target[:-3] if target.lower().endswith(".md") else target
            self.out.links.append(Link(target=target, heading=heading, block=block, alias=label or None, embed=embed))
        return label


def _subpath(sub: str) -> tuple[str | None, str | None]:
    if not sub:
        return None, None
    if sub.startswith("^"):
        return None, sub[1:] or None
    heading, _, block = sub.partition("#^")
    return heading or None, block or None


def parse_link(text: str) -> Link | None:
    """A wikilink as written (`[[path#Heading|alias]]`, `![[…]]`) or bare (`path#Heading`); None if it is neither."""
    inner = text.strip()
    m = _WIKILINK.fullmatch(inner) or _WIKILINK.fullmatch(f"[[{inner.removeprefix('!')}]]")
    return _parse_wikilink(m) if m else None


def _parse_wikilink(m: re.Match) -> Link:
    """`[[target#heading^block|alias]]` (also `\\|` as written inside tables)."""
    inner = m.group(2).replace("\\|", "|")
    target, _, alias = inner.partition("|")
    target, _, sub = target.partition("#")
    heading, block = _subpath(sub)
    target = target.strip()
    if target.lower().endswith(".md"):
        target = target[:-3]
    return Link(
        target=target,
        heading=heading.strip() if heading else None,
        block=block.strip() if block else None,
        alias=alias.strip() or None,
        embed=m.group(1) == "!",
    )
