from pathlib import Path

import pytest

from konsilium.vault.chunker import QUESTION_PREFIX, chunk_note
from konsilium.vault.markdown import parse_note
from konsilium.vault.model import Note, Section
from konsilium.vault.walker import iter_vault_files, read_note

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
VAULT = SHARED / "sample-vault"
HELP = SHARED / "obsidian-help-en"
STEPS = "0_chatgpt/AI/2025-06-29 - 1LTM_4"
needs_shared = pytest.mark.skipif(not VAULT.is_dir(), reason="../shared/sample-vault not present")

PARA = "Word " * 60  # ~300 chars


def check_invariants(chunks, note: Note, max_chars: int):
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert c.note == note.path and c.title == note.title
        assert c.text.strip() == c.text and c.text
        assert len(c.text) <= max_chars, (c.heading, len(c.text))


def test_one_chunk_per_fitting_section_with_heading_paths():
    note = parse_note("d/n.md", f"# A\n{PARA}\n## B\n{PARA}\n# C\n{PARA}")
    chunks = chunk_note(note, max_chars=400)
    assert [c.heading for c in chunks] == ["A", "A > B", "C"]
    check_invariants(chunks, note, 400)


def test_tiny_siblings_are_merged_keeping_their_subheadings():
    other = "x " * 180
    note = parse_note("n.md", f"# Parent\nintro\n## One\nfirst\n## Two\nsecond\n# Other\n{other}")
    chunks = chunk_note(note, max_chars=400)
    assert [(c.heading, c.text) for c in chunks] == [
        ("Parent", "intro\n\nOne\nfirst\n\nTwo\nsecond"),
        ("Other", other.strip()),  # would not fit
    ]
    # A whole note of tiny sections becomes one chunk; the top headings become lines of its text.
    note = parse_note("n.md", "# A\na\n# B\nb")
    assert [(c.heading, c.text) for c in chunk_note(note)] == [("", "A\na\n\nB\nb")]


def test_long_section_splits_at_paragraphs_then_sentences_with_overlap():
    sentences = " ".join(f"Sentence number {i} says something." for i in range(60))
    note = parse_note("n.md", f"# Long\n{PARA}\n\n{PARA}\n\n{sentences}")
    chunks = chunk_note(note, max_chars=500, overlap_chars=80)
    check_invariants(chunks, note, 500)
    assert len(chunks) >= 5 and all(c.heading == "Long" for c in chunks)
    # Each continuation starts with the end of the previous piece (overlap), cut at a word boundary.
    for prev, cur in zip(chunks[2:], chunks[3:], strict=False):
        head = cur.text.split("\n", 1)[0]
        assert head and head in prev.text and len(head) <= 80
    # Sentences are not cut in the middle (only the overlap tail may start mid-way).
    for c in chunks[2:]:
        assert c.text.split("\n", 1)[-1].endswith(".")


def test_giant_word_is_hard_split():
    note = parse_note("n.md", "x" * 5000)
    chunks = chunk_note(note, max_chars=1000, overlap_chars=0)
    assert "".join(c.text for c in chunks) == "x" * 5000
    check_invariants(chunks, note, 1000)


def test_empty_note_gives_no_chunks():
    assert chunk_note(Note(path="e.md", title="e")) == []
    assert chunk_note(Note(path="e.md", title="e", sections=[Section([], "  ")])) == []


def test_conversation_answer_chunks_carry_the_question():
    answer = "\n\n".join(f"## Part {i}\n" + "Ответ про видеопамять. " * 30 for i in range(4))
    md = (
        ">[!nexus_user] **User** - 1.1.2025 at 1:00\n> Сколько VRAM нужно?\n<!-- UID: u -->\n\n"
        ">[!nexus_agent] **Assistant** - 1.1.2025 at 1:00\n> Intro.\n> \n"
        + "\n".join("> " + x for x in answer.split("\n"))
    )
    note = parse_note("c/25_x.md", md)
    chunks = chunk_note(note, max_chars=1000)
    check_invariants(chunks, note, 1000)
    # A short question is carried whole by every answer chunk, so it gets no chunk of its own.
    assert all(c.heading.startswith("Assistant") for c in chunks)
    assert all(c.text.startswith(f"{QUESTION_PREFIX}Сколько VRAM нужно?\n\n") for c in chunks)
    assert chunks[0].text.split("\n\n")[1].startswith("Intro.")  # question + start of the answer together
    assert "Assistant > Part 2" in [c.heading for c in chunks]


def test_long_question_gets_its_own_chunk_and_a_shortened_prefix():
    question = "Очень длинный вопрос про конфиг. " * 20
    md = f">[!nexus_user] **User** - x\n> {question}\n\n>[!nexus_agent] **Assistant** - y\n> Ответ."
    chunks = chunk_note(parse_note("n.md", md))
    assert [c.heading for c in chunks] == ["User", "Assistant"]
    assert chunks[0].text == question.strip()
    prefix = chunks[1].text.split("\n\n")[0]
    assert prefix.startswith(QUESTION_PREFIX + "Очень длинный") and prefix.endswith("…") and len(prefix) < 220


def test_two_turns_are_never_merged():
    md = (
        ">[!nexus_user] **User** - x\n> q?\n\n"
        ">[!nexus_agent] **Assistant** - y\n> a1\n\n>[!nexus_agent] **Assistant** - z\n> a2"
    )
    chunks = chunk_note(parse_note("n.md", md))
    assert [c.text for c in chunks] == [f"{QUESTION_PREFIX}q?\n\na1", f"{QUESTION_PREFIX}q?\n\na2"]


@needs_shared
def test_vram_step_note_chunks():
    note = read_note(VAULT, f"{STEPS}/25_под_мою_видеокарта_как.md")
    chunks = chunk_note(note)
    check_invariants(chunks, note, 1200)
    question = "Под мою видеокарта, как измениться нагрузка на видеопамять?"
    assert all(c.text.startswith(QUESTION_PREFIX + question) for c in chunks)
    assert chunks[0].heading == "Assistant" and "RTX 6000 Blackwell" in chunks[0].text
    assert "Assistant > 📘 Заключение" in [c.heading for c in chunks]


@needs_shared
@pytest.mark.parametrize("max_chars", [300, 1200, 4000])
def test_whole_vaults_respect_the_invariants(max_chars):
    for root in (VAULT, HELP):
        for rel in iter_vault_files(root):
            note = read_note(root, rel)
            chunks = chunk_note(note, max_chars=max_chars)
            check_invariants(chunks, note, max_chars)
            if note.sections:
                assert chunks, rel
