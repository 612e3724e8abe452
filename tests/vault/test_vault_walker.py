import os
import sys
from pathlib import Path

import pytest

from konsilium.vault.model import Note
from konsilium.vault.walker import MAX_LINE_CHARS, Skipped, iter_vault_files, matches, read_note

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
VAULT = SHARED / "sample-vault"
needs_shared = pytest.mark.skipif(not VAULT.is_dir(), reason="../shared/sample-vault not present")


def write(root: Path, rel: str, data: str | bytes = "text") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    return path


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    root = tmp_path / "vault"
    for rel in [
        "b.md",
        "a.md",
        "Notes/c.md",
        "Notes/deep/d.MD",
        "Archive/old.md",
        "Notes/drawing.excalidraw.md",
        ".obsidian/workspace.md",
        ".trash/deleted.md",
        "Notes/.hidden/x.md",
        "Notes/.dotfile.md",
        "Notes/image.png",
        "Notes/readme.txt",
    ]:
        write(root, rel)
    return root


def test_sorted_relative_posix_paths_skipping_dot_entries_and_non_markdown(vault):
    assert list(iter_vault_files(vault)) == [
        "Archive/old.md",
        "Notes/c.md",
        "Notes/deep/d.MD",
        "Notes/drawing.excalidraw.md",
        "a.md",
        "b.md",
    ]


def test_include_and_exclude_globs(vault):
    assert list(iter_vault_files(vault, include=["**/*.md"], exclude=["Archive/**", "*.excalidraw.md"])) == [
        "Notes/c.md",
        "a.md",
        "b.md",
    ]
    assert list(iter_vault_files(vault, include=["Notes"], exclude=["deep"])) == [
        "Notes/c.md",
        "Notes/drawing.excalidraw.md",
    ]
    assert list(iter_vault_files(vault, include=["Notes/*.md"])) == [
        "Notes/c.md",
        "Notes/drawing.excalidraw.md",
    ]
    assert list(iter_vault_files(vault, include=["?.md"])) == ["Notes/c.md", "a.md", "b.md"]  # any depth


@pytest.mark.parametrize(
    ("rel", "pattern", "expected"),
    [
        ("a.md", "**/*.md", True),
        ("x/y/z.md", "**/*.md", True),
        ("x/y/z.md", "x/*.md", False),
        ("x/y/z.md", "x/**", True),
        ("x/y/z.md", "x/**/z.md", True),
        ("x/y/z.md", "y", True),
        ("x/y/z.md", "x/y", True),
        ("x/y/z.md", "[xq]/*/z.md", True),
        ("x/y/z.md", "[!x]/*/z.md", False),
        ("x/y/z.md", "", False),
    ],
)
def test_glob_matching(rel, pattern, expected):
    assert matches(rel, pattern) is expected


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks")
def test_symlinks_out_of_the_vault_and_folder_loops_are_not_followed(tmp_path):
    root = tmp_path / "vault"
    outside = write(tmp_path, "outside/secret.md", "secret")
    write(root, "real.md")
    write(tmp_path, "outside/dir/x.md")
    os.symlink(outside, root / "escape.md")
    os.symlink(tmp_path / "outside" / "dir", root / "linked_dir")
    os.symlink(root, root / "loop")
    os.symlink(root / "real.md", root / "alias.md")  # inside the vault: fine
    os.symlink(root / "missing.md", root / "broken.md")
    assert list(iter_vault_files(root)) == ["alias.md", "real.md"]
    assert read_note(root, "escape.md") == Skipped("escape.md", "points outside the vault")
    assert isinstance(read_note(root, "../outside/secret.md"), Skipped)


def test_read_note_parses_and_collects_warnings(tmp_path):
    write(tmp_path, "n.md", "---\nbad: [\n---\n# H\nbody")
    note = read_note(tmp_path, "n.md")
    assert isinstance(note, Note) and note.path == "n.md" and note.title == "n"
    assert note.sections[0].heading_path == ["H"] and len(note.warnings) == 1


def test_vanished_empty_binary_and_too_large(tmp_path):
    write(tmp_path, "empty.md", b"")
    write(tmp_path, "blank.md", "  \n\n")
    write(tmp_path, "bin.md", b"PK\x03\x04\x00\x00binary")
    write(tmp_path, "big.md", "x" * 2000)
    assert read_note(tmp_path, "gone.md") == Skipped("gone.md", "file vanished while indexing")
    assert read_note(tmp_path, "empty.md") == Skipped("empty.md", "empty file")
    assert read_note(tmp_path, "blank.md") == Skipped("blank.md", "empty file")
    assert read_note(tmp_path, "bin.md") == Skipped("bin.md", "binary file (NUL bytes)")
    assert read_note(tmp_path, "big.md", max_bytes=1000).reason.startswith("too large")
    (tmp_path / "dir.md").mkdir()
    assert isinstance(read_note(tmp_path, "dir.md"), Skipped)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can read anything")
def test_permission_denied(tmp_path):
    path = write(tmp_path, "locked.md")
    path.chmod(0)
    try:
        assert read_note(tmp_path, "locked.md") == Skipped("locked.md", "permission denied")
    finally:
        path.chmod(0o644)


def test_ten_megabyte_single_line(tmp_path):
    write(tmp_path, "huge.md", "word " * 2_000_000)  # 10 MB, one line
    assert read_note(tmp_path, "huge.md").reason.startswith("too large")  # default 5 MB limit
    note = read_note(tmp_path, "huge.md", max_bytes=20_000_000)
    assert isinstance(note, Note)
    assert note.warnings == [f"1 line(s) longer than {MAX_LINE_CHARS} characters truncated"]
    assert len(note.sections[0].text) <= MAX_LINE_CHARS


def test_utf16_and_cp1251_files_are_read(tmp_path):
    write(tmp_path, "u16.md", "# Заголовок\nтекст #тег".encode("utf-16"))  # full of NUL bytes, but has a BOM
    write(tmp_path, "win.md", "# Заголовок\nтекст в кодировке Windows".encode("cp1251"))
    u16 = read_note(tmp_path, "u16.md")
    assert u16.sections[0].heading_path == ["Заголовок"] and u16.tags == ["тег"] and u16.warnings == []
    win = read_note(tmp_path, "win.md")
    assert win.sections[0].text == "текст в кодировке Windows"
    assert win.warnings == ["not UTF-8, decoded as cp1251"]


@needs_shared
def test_sample_vault_reads_completely():
    rels = list(iter_vault_files(VAULT))
    assert len(rels) == 90 and rels == sorted(rels)
    notes = [read_note(VAULT, rel) for rel in rels]
    assert all(isinstance(n, Note) for n in notes)
    warned = {n.path: n.warnings for n in notes if n.warnings}
    assert sorted(warned) == [
        "9_inbox_broken_encoding/33 config for AGI (mojibake).md",
        "9_inbox_broken_encoding/40 CPU with TB RAM (mojibake).md",
        "9_inbox_broken_encoding/70 LoRA RAG placement (mojibake).md",
    ]
    broken = next(n for n in notes if n.path.startswith("9_inbox_broken_encoding/33"))
    assert broken.turns[0].text == "Как бы ты насироила этот конфиг под AGI?"
