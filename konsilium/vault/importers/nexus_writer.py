"""Write conversations as notes in the nexus-ai-chat-importer layout, idempotently.

Layout under ``<vault>/<folder>/`` (matching the plugin's notes in the sample vault)::

    <title>.md                          index note: YAML frontmatter, then one [[link]] a line
    YYYY-MM-DD - <title>/meta_information.md   the same frontmatter, nothing else
    YYYY-MM-DD - <title>/NN_<slug>.md   one note per step: a user message and the answers

A re-import finds a conversation by ``conversation_id`` in the frontmatter of the index notes
directly inside ``<vault>/<folder>/`` (not by title), rewrites only files whose content changed
(atomically: temp file + ``os.replace``) and removes step notes the conversation no longer has.
A conversation whose title changed keeps its index note name and folder (links into it stay
valid); its ``aliases`` and ``# Title:`` header follow the new title.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path, PurePosixPath

NEXUS = "nexus-ai-chat-importer"
PLUGIN_VERSION = "1.2.0"
META_NOTE = "meta_information"

# Blank lines between a user callout and the answer, and between two answers (see the sample vault).
_USER_TO_AGENT = "\n\n\n\n"
_AGENT_TO_AGENT = "\n---\n\n"

ProgressFn = Callable[[int, int], None]


class MalformedConversation(Exception):
    """One conversation that cannot be imported: it is skipped with this reason, the rest go on."""


class ImportInputError(ValueError):
    """The export (or the target) cannot be imported at all; nothing was written."""


@dataclass
class Message:
    role: str  # "user" | "assistant"
    text: str  # Markdown, already rendered (placeholders for attachments included)
    uid: str
    time: datetime | None = None  # timezone-aware


@dataclass
class Conversation:
    id: str
    title: str
    create_time: datetime  # timezone-aware
    update_time: datetime
    url: str
    messages: list[Message] = field(default_factory=list)


@dataclass
class Step:
    """One step note: a user message and the assistant messages answering it."""

    user: Message | None
    answers: list[Message] = field(default_factory=list)


@dataclass
class ImportResult:
    provider: str = ""
    conversations: int = 0  # conversations imported: created + updated + unchanged
    notes_written: int = 0  # note files created
    updated: int = 0  # note files rewritten because their content changed
    unchanged: int = 0  # note files already identical
    removed: int = 0  # stale step notes deleted (the conversation lost steps)
    skipped: list[dict] = field(default_factory=list)  # {"id": ..., "reason": ...}
    created_conversations: list[str] = field(default_factory=list)
    updated_conversations: list[str] = field(default_factory=list)
    unchanged_conversations: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- names


_FILENAME_BAD = re.compile(r'[\\/:*?"<>|#^\[\]\x00-\x1f\x7f]')
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10))}
_WINDOWS_RESERVED |= {f"LPT{i}" for i in range(1, 10)}
_SLUG_BAD = re.compile(r"[^\w\-]")
TITLE_MAX = 100
SLUG_MAX = 50


def sanitize_title(title: str) -> str:
    """A conversation title made safe as a file/folder name (and as an Obsidian link target)."""
    text = unicodedata.normalize("NFC", title or "")
    text = _FILENAME_BAD.sub(" ", text)
    text = re.sub(r"\s+", " ", text).strip().strip(".").strip()
    text = text[:TITLE_MAX].rstrip(" .")
    if not text:
        return "Untitled"
    if text.upper() in _WINDOWS_RESERVED:
        text += "_"
    return text


def step_slug(text: str) -> str:
    """The first 4 words of a message, lowercased, joined with ``_`` (as the plugin names step notes).

    Characters other than letters, digits, ``_`` and ``-`` become ``_``; runs of ``_`` collapse and the
    result is cut to 50 characters: ``"Т.е. я так понимаю 30б"`` -> ``"т_е_я_так_понимаю"``.
    """
    words = unicodedata.normalize("NFC", text).split()[:4]
    slug = "_".join(_SLUG_BAD.sub("_", w.lower()) for w in words)
    slug = re.sub(r"_+", "_", slug).strip("_")
    return slug[:SLUG_MAX].rstrip("_") or "untitled"


def format_time(dt: datetime, tz: tzinfo | None = None) -> str:
    """``30.06.2025 at 2:53`` in ``tz`` (the local time zone when None), as the plugin writes dates."""
    local = dt.astimezone(tz)
    return f"{local:%d.%m.%Y} at {local.hour}:{local:%M}"


# --------------------------------------------------------------------------- rendering


def group_steps(messages: list[Message]) -> list[Step]:
    """Split messages into steps: each user message starts one; answers attach to the open step.

    Assistant messages before the first user message form a step of their own (no user callout).
    """
    steps: list[Step] = []
    for msg in messages:
        if msg.role == "user":
            steps.append(Step(user=msg))
        elif steps:
            steps[-1].answers.append(msg)
        else:
            steps.append(Step(user=None, answers=[msg]))
    return steps


def _yaml_str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _yaml_id(value: str) -> str:
    return value if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value) else _yaml_str(value)


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def render_frontmatter(conv: Conversation, provider: str, tz: tzinfo | None) -> str:
    return (
        "---\n"
        f"nexus: {NEXUS}\n"
        f'plugin_version: "{PLUGIN_VERSION}"\n'
        f"provider: {provider}\n"
        f"aliases: {_yaml_str(_one_line(conv.title))}\n"
        f"conversation_id: {_yaml_id(conv.id)}\n"
        f"create_time: {format_time(conv.create_time, tz)}\n"
        f"update_time: {format_time(conv.update_time, tz)}\n"
        "---\n"
    )


def _callout(kind: str, label: str, msg: Message, fallback: datetime, tz: tzinfo | None) -> str:
    when = format_time(msg.time or fallback, tz)
    text = msg.text.replace("\r\n", "\n").replace("\r", "\n")
    body = "\n".join(f"> {line}" for line in text.split("\n"))
    return f">[!{kind}] **{label}** - {when}\n{body}\n<!-- UID: {msg.uid} -->\n"


def render_step(conv: Conversation, step: Step, first: bool, tz: tzinfo | None) -> str:
    out: list[str] = []
    if first:
        out.append(
            f"# Title: {_one_line(conv.title)}\n\n"
            f"Created: {format_time(conv.create_time, tz)}\n"
            f"Last Updated: {format_time(conv.update_time, tz)}\n"
            f"Chat URL: {conv.url}\n\n\n"
        )
    fallback = conv.create_time
    if step.user is not None:
        out.append(_callout("nexus_user", "User", step.user, fallback, tz))
        fallback = step.user.time or fallback
    for i, answer in enumerate(step.answers):
        if i > 0:
            out.append(_AGENT_TO_AGENT)
        elif step.user is not None:
            out.append(_USER_TO_AGENT)
        out.append(_callout("nexus_agent", "Assistant", answer, fallback, tz))
    return "".join(out)


def step_note_names(steps: list[Step]) -> list[str]:
    names = []
    for i, step in enumerate(steps, start=1):
        source = step.user if step.user is not None else step.answers[0]
        names.append(f"{i:02d}_{step_slug(source.text)}")
    return names


def render_conversation(
    conv: Conversation, provider: str, folder: str, dir_name: str, tz: tzinfo | None = None
) -> dict[str, str]:
    """All notes of a conversation: {path relative to ``<vault>/<folder>`` (without the index): text}.

    The index note is under the key ``""``.
    """
    steps = group_steps(conv.messages)
    names = step_note_names(steps)
    front = render_frontmatter(conv, provider, tz)
    meta_link = f"[[{folder}/{dir_name}/{META_NOTE}]]" if folder else f"[[{dir_name}/{META_NOTE}]]"
    index = front + meta_link + "\n" + "".join(f"[[{name}]]\n" for name in names)
    files = {"": index, f"{dir_name}/{META_NOTE}.md": front + "\n"}
    for i, (name, step) in enumerate(zip(names, steps, strict=True)):
        files[f"{dir_name}/{name}.md"] = render_step(conv, step, first=(i == 0), tz=tz)
    return files


# --------------------------------------------------------------------------- vault access


_FRONT_ID = re.compile(r"^conversation_id:[ \t]*(.+?)[ \t]*$", re.MULTILINE)
_META_LINK = re.compile(r"^\[\[(.+)/" + META_NOTE + r"\]\]$", re.MULTILINE)
_STEP_FILE = re.compile(r"^\d{2,}_.*\.md$")


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        try:
            return json.loads(value) if value[0] == '"' else value[1:-1]
        except ValueError:
            return value[1:-1]
    return value


FRONTMATTER_MAX_CHARS = 1_000_000  # a title is one line; an index note's frontmatter is far below this


def _read_frontmatter(path: Path) -> str | None:
    """The YAML frontmatter of a note, read up to its closing `---` however long its lines are (a 5,000-character
    title must not hide the conversation_id below it), without reading the rest of the note."""
    with path.open(encoding="utf-8", errors="replace", newline="") as fh:
        first = fh.readline(8)
        if first.rstrip("\r\n") != "---" or not first.endswith("\n"):
            return None
        lines: list[str] = []
        size = 0
        while size < FRONTMATTER_MAX_CHARS:
            line = fh.readline(FRONTMATTER_MAX_CHARS - size)
            if not line:
                return None
            if line.startswith("---"):
                return "".join(lines)
            lines.append(line.replace("\r\n", "\n"))
            size += len(line)
    return None


def find_existing(folder_dir: Path) -> dict[str, Path]:
    """conversation_id -> index note, for the nexus index notes directly inside ``folder_dir``."""
    found: dict[str, Path] = {}
    if not folder_dir.is_dir():
        return found
    for path in sorted(folder_dir.glob("*.md")):
        try:
            front = _read_frontmatter(path)
        except OSError:
            continue
        if front is None or NEXUS not in front:
            continue
        match = _FRONT_ID.search(front)
        if match:
            found.setdefault(_unquote(match.group(1)), path)
    return found


def _existing_dir_name(index_path: Path, vault: Path, folder_dir: Path) -> str | None:
    """The conversation folder an existing index note points at (through its meta_information link)."""
    try:
        text = index_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    match = _META_LINK.search(text)
    if not match:
        return None
    target = (vault / match.group(1)).resolve()
    if target.parent != folder_dir.resolve():
        return None  # only folders directly inside <folder> are ours to write
    return target.name


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:40]}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _read(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def check_folder(folder: str) -> str:
    """Validate ``--folder``: a relative path inside the vault, returned in POSIX form."""
    raw = (folder or "").replace("\\", "/").strip()
    parts = [p for p in PurePosixPath(raw).parts if p not in ("", ".")]
    if raw.startswith("/") or not parts or any(p == ".." for p in parts):
        raise ImportInputError(f"folder must be a relative path inside the vault, got {folder!r}")
    return "/".join(parts)


def check_vault(vault: Path) -> Path:
    if not vault.exists():
        raise ImportInputError(f"vault directory does not exist: {vault}")
    if not vault.is_dir():
        raise ImportInputError(f"vault is not a directory: {vault}")
    return vault


def load_json(path: Path, what: str) -> object:
    """Read an export file; every problem becomes an ImportInputError naming the file."""
    if not path.exists():
        raise ImportInputError(f"{what} export not found: {path}")
    if not path.is_file():
        raise ImportInputError(f"{what} export is not a file: {path}")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ImportInputError(f"cannot read {what} export {path}: {exc}") from exc
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ImportInputError(f"{what} export {path} is not UTF-8 text: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ImportInputError(
            f"{what} export {path} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from exc


# --------------------------------------------------------------------------- import


def write_conversations(
    conversations: Iterable[Conversation],
    vault: Path,
    folder: str,
    provider: str,
    result: ImportResult | None = None,
    tz: tzinfo | None = None,
    on_progress: ProgressFn | None = None,
) -> ImportResult:
    """Create or update the notes of ``conversations`` under ``<vault>/<folder>``."""
    vault = check_vault(Path(vault))
    folder = check_folder(folder)
    result = result if result is not None else ImportResult(provider=provider)
    result.provider = provider
    convs = list(conversations)
    folder_dir = vault / folder
    if folder_dir.exists() and not folder_dir.is_dir():
        raise ImportInputError(f"{folder_dir} exists and is not a directory")

    existing = find_existing(folder_dir)
    # Names already used by notes or folders in <folder>, case-folded (case-insensitive file systems).
    taken = {p.name.casefold() for p in folder_dir.iterdir()} if folder_dir.is_dir() else set()
    seen: set[str] = set()

    for n, conv in enumerate(convs, start=1):
        if conv.id in seen:
            result.skipped.append({"id": conv.id, "reason": "duplicate conversation id in the export"})
            if on_progress:
                on_progress(n, len(convs))
            continue
        seen.add(conv.id)

        index_path = existing.get(conv.id)
        dir_name = None
        if index_path is not None:
            dir_name = _existing_dir_name(index_path, vault, folder_dir)
            if dir_name is None:
                dir_name = f"{conv.create_time.astimezone(tz):%Y-%m-%d} - {index_path.stem}"
        else:
            index_path, dir_name = _new_names(conv, folder_dir, taken, tz)
        taken.update({index_path.name.casefold(), dir_name.casefold()})

        files = render_conversation(conv, provider, folder, dir_name, tz)
        changed = _sync_files(folder_dir, index_path, dir_name, files, result)
        result.conversations += 1
        if changed == "created":
            result.created_conversations.append(conv.id)
        elif changed == "updated":
            result.updated_conversations.append(conv.id)
        else:
            result.unchanged_conversations.append(conv.id)
        if on_progress:
            on_progress(n, len(convs))
    return result


def _new_names(conv: Conversation, folder_dir: Path, taken: set[str], tz: tzinfo | None) -> tuple[Path, str]:
    base = sanitize_title(conv.title)
    date = f"{conv.create_time.astimezone(tz):%Y-%m-%d}"
    n = 1
    while True:
        stem = base if n == 1 else f"{base} ({n})"
        dir_name = f"{date} - {stem}"
        if f"{stem}.md".casefold() not in taken and dir_name.casefold() not in taken:
            return folder_dir / f"{stem}.md", dir_name
        n += 1


def _sync_files(folder_dir: Path, index_path: Path, dir_name: str, files: dict[str, str], result: ImportResult) -> str:
    """Write what differs; return "created", "updated" or "unchanged" for the conversation."""
    is_new = not index_path.exists()
    created = updated = removed = 0
    for rel, text in files.items():
        path = index_path if rel == "" else folder_dir / rel
        existed = path.exists()
        if existed and _read(path) == text:
            result.unchanged += 1
            continue
        atomic_write(path, text)
        if existed:
            updated += 1
        else:
            created += 1
    conv_dir = folder_dir / dir_name
    wanted = {PurePosixPath(rel).name for rel in files if rel}
    for path in sorted(conv_dir.iterdir()) if conv_dir.is_dir() else []:
        if path.name in wanted or not path.is_file() or not _STEP_FILE.match(path.name):
            continue
        old = _read(path) or ""
        if "[!nexus_user]" in old or "[!nexus_agent]" in old:  # only notes this importer wrote
            path.unlink()
            removed += 1
    result.notes_written += created
    result.updated += updated
    result.removed += removed
    if is_new:
        return "created"
    return "updated" if created or updated or removed else "unchanged"


def parse_each(items: list, parse, id_key: str, title_key: str) -> tuple[list[Conversation], list[dict]]:
    """Parse every conversation of an export; a malformed one is skipped with its reason, never fatal."""
    convs: list[Conversation] = []
    skipped: list[dict] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            skipped.append({"id": f"#{i}", "reason": "not a JSON object"})
            continue
        ident = str(item.get(id_key) or item.get("id") or f"#{i}")
        try:
            convs.append(parse(item))
        except MalformedConversation as exc:
            skipped.append({"id": ident, "title": item.get(title_key), "reason": str(exc)})
        except (TypeError, AttributeError, KeyError, ValueError) as exc:
            skipped.append({"id": ident, "title": item.get(title_key), "reason": f"malformed: {exc}"})
    return convs, skipped


def run_import(
    export_path: Path,
    vault: Path,
    folder: str,
    provider: str,
    label: str,
    parse_export,
    tz: tzinfo | None,
    on_progress: ProgressFn | None,
) -> ImportResult:
    """Load, parse and write one export: nothing is written when the file cannot be imported at all."""
    data = load_json(Path(export_path), label)
    convs, skipped = parse_export(data)
    result = ImportResult(provider=provider, skipped=skipped)
    return write_conversations(convs, Path(vault), folder, provider, result, tz=tz, on_progress=on_progress)
