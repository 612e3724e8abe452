from pathlib import Path

import pytest

from konsilium.vault.encoding import decode_text
from konsilium.vault.markdown import parse_note
from konsilium.vault.model import Link

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
VAULT = SHARED / "sample-vault"
HELP = SHARED / "obsidian-help-en"
STEPS = "0_chatgpt/AI/2025-06-29 - 1LTM_4"
needs_shared = pytest.mark.skipif(not VAULT.is_dir(), reason="../shared/sample-vault not present")


def load(root: Path, rel: str):
    text, _ = decode_text((root / rel).read_bytes())
    return parse_note(rel, text)


def all_text(note) -> str:
    return "\n".join(s.text for s in note.sections)


# --- crafted cases ----------------------------------------------------------------------------------------


def test_frontmatter_properties_aliases_and_tags():
    note = parse_note(
        "dir/My note.md",
        "---\naliases: Other name\ntags: [project, '#ai/llm']\ncreated: 2024-05-01\n---\n# Head\nbody #inline\n",
    )
    assert note.title == "My note" and note.path == "dir/My note.md"
    assert note.aliases == ["Other name"]
    assert note.tags == ["project", "ai/llm", "inline"]
    assert note.properties["created"] == "2024-05-01"  # dates become strings the index can store
    assert note.warnings == []
    assert note.sections[0].heading_path == ["Head"] and note.sections[0].text == "body #inline"


def test_tags_as_string_and_aliases_as_list():
    note = parse_note("n.md", "---\ntags: a, b c\naliases:\n  - x\n  - y\n---\ntext")
    assert note.tags == ["a", "b", "c"] and note.aliases == ["x", "y"]


@pytest.mark.parametrize(
    "front",
    ["key: [unclosed\nother: :", "\tbad: indent\n  - x\n y: z", "- just\n- a list"],
)
def test_invalid_or_non_mapping_yaml_gives_a_warning_not_an_exception(front):
    note = parse_note("n.md", f"---\n{front}\n---\nBody text")
    assert note.properties == {}
    assert len(note.warnings) == 1 and "frontmatter" in note.warnings[0]
    assert all_text(note) == "Body text"


def test_unclosed_frontmatter_is_plain_text():
    note = parse_note("n.md", "---\ntitle: x\nno end")
    assert note.properties == {} and "no end" in all_text(note)


def test_links_with_alias_heading_block_and_embeds():
    note = parse_note(
        "n.md",
        "See [[Target]], [[Folder/Other.md|shown]], [[Note#Part two|p2]], [[Note#^abc-1]], [[#Local]]\n"
        "![[image.png]] ![[Doc#Sec]] and | [[Table cell\\|alias]] | plus [md](Some%20note.md#H) [w](https://x.org)",
    )
    assert note.links == [
        Link("Target"),
        Link("Folder/Other", alias="shown"),
        Link("Note", heading="Part two", alias="p2"),
        Link("Note", block="abc-1"),
        Link("", heading="Local"),
        Link("image.png", embed=True),
        Link("Doc", heading="Sec", embed=True),
        Link("Table cell", alias="alias"),
        Link("Some note", heading="H", alias="md"),
    ]
    text = all_text(note)
    # Links are rendered as words so they stay searchable; no [[ ]] markup survives.
    assert "See Target, shown, p2, Note, Local" in text
    assert "[[" not in text and "](" not in text and "Table cell" not in text and "w" in text


def test_inline_tags_rules():
    note = parse_note(
        "n.md",
        "# Heading is not a tag\n#тег and #nested/tag-1 and #snake_case, #1984 no, #y1984 yes\n"
        "url https://example.com/page#fragment and a&#123; entity, `#incode` and C# lang",
    )
    assert note.tags == ["тег", "nested/tag-1", "snake_case", "y1984"]


def test_code_blocks_keep_text_but_hide_tags_links_and_headings():
    md = "Intro\n```python\n# not a heading\nx = '[[notalink]] #notatag'\n```\n~~~\n## also not\n~~~\nAfter [[real]]"
    note = parse_note("n.md", md)
    assert note.tags == [] and note.links == [Link("real")]
    assert [s.heading_path for s in note.sections] == [[]]
    text = all_text(note)
    assert "# not a heading" in text and "[[notalink]] #notatag" in text and "## also not" in text


def test_headings_build_paths_and_skip_empty_sections():
    md = "pre\n# A\n## B\nb text\n### C ###\nc text\n## D\nd text\n# E\n"
    note = parse_note("n.md", md)
    assert [(s.heading_path, s.text) for s in note.sections] == [
        ([], "pre"),
        (["A", "B"], "b text"),
        (["A", "B", "C"], "c text"),
        (["A", "D"], "d text"),
    ]


def test_callouts_lose_their_marker_but_keep_title_and_body():
    md = (
        "> [!tip]- Custom title\n> Body with [[Link|alias]] #calltag\n"
        "> > [!note] Inner\n> > inner body\n\n> plain quote"
    )
    note = parse_note("n.md", md)
    assert all_text(note) == "Custom title\nBody with alias #calltag\nInner\ninner body\n\nplain quote"
    assert note.tags == ["calltag"] and note.links == [Link("Link", alias="alias")]


def test_comments_are_removed_but_not_inside_code():
    md = "keep <!-- hidden --> this\n%% obsidian\ncomment %% visible\n<!--\nmulti\n-->\n`%% not a comment %%`"
    note = parse_note("n.md", md)
    assert all_text(note) == "keep  this\n visible\n`%% not a comment %%`"


def test_footnotes_and_block_ids_do_not_pollute_text():
    note = parse_note("n.md", "Claim [^1] here. ^block-id\n\n[^1]: [[Source note]]")
    assert all_text(note) == "Claim  here.\n\nSource note"
    assert note.links == [Link("Source note")]


def test_crafted_nexus_note_turns_and_sections():
    md = (
        "# Title: Chat\n\nCreated: 1.1.2025 at 10:00\nChat URL: https://chat.example/c/1\n\n\n"
        ">[!nexus_user] **User** - 01.01.2025 at 10:00\n> How much VRAM?\n<!-- UID: u-1 -->\n\n"
        ">[!nexus_agent] **Assistant** - 01.01.2025 at 10:01\n> Short intro.\n> \n> ## Table\n> | a | b |\n"
        "> ```json\n> # not heading\n> ```\n<!-- UID: a-1 -->\n"
    )
    note = parse_note("c/01_x.md", md)
    assert [(t.role, t.timestamp, t.uid) for t in note.turns] == [
        ("user", "01.01.2025 at 10:00", "u-1"),
        ("assistant", "01.01.2025 at 10:01", "a-1"),
    ]
    assert note.turns[1].text.startswith("Short intro.\n\n## Table")  # Markdown kept, `>` removed
    assert note.properties["chat_title"] == "Chat" and note.properties["chat_url"] == "https://chat.example/c/1"
    assert [(s.heading_path, s.role, s.turn) for s in note.sections] == [
        (["User"], "user", 0),
        (["Assistant"], "assistant", 1),
        (["Assistant", "Table"], "assistant", 1),
    ]
    assert note.sections[2].text == "| a | b |\n```json\n# not heading\n```"
    assert "Title" not in all_text(note) and "UID" not in all_text(note)


def test_nexus_callout_inside_a_code_block_is_not_a_turn():
    note = parse_note("n.md", "```\n>[!nexus_user] **User** - x\n> hi\n```\n")
    assert note.turns == []


def test_garbage_never_raises():
    for text in [
        "",
        "---",
        "---\n---",
        "[[",
        "[[]]",
        "![[|]]",
        "#",
        "> [!",
        "```",
        "<!--",
        "%%",
        "\x00\x01",
        "# \n#",
    ]:
        parse_note("n.md", text)


# --- real notes -------------------------------------------------------------------------------------------


@needs_shared
def test_sample_step_note_has_turns_and_turn_sections():
    note = load(VAULT, f"{STEPS}/25_под_мою_видеокарта_как.md")
    assert [t.role for t in note.turns] == ["user", "assistant"]
    assert note.turns[0].text == "Под мою видеокарта, как измениться нагрузка на видеопамять?"
    assert note.turns[0].timestamp == "30.06.2025 at 2:53"
    assert note.turns[0].uid == "5db0431d-5041-4ebf-9e1d-c106b7433f21"
    assert note.sections[0].heading_path == ["User"]
    paths = [s.heading_path for s in note.sections[1:]]
    assert paths[:2] == [["Assistant"], ["Assistant", "🧠 Что влияет на VRAM в этой модели"]]
    assert ["Assistant", "📌 Что именно даёт рост VRAM?", "1. `num_experts_per_tok = 16`"] in paths
    assert all(s.role == "assistant" for s in note.sections[1:])
    assert "<!--" not in all_text(note) and "nexus" not in all_text(note)


@needs_shared
def test_first_note_title_block_is_metadata():
    note = load(VAULT, f"{STEPS}/01_мы_продолжаем_темы_чатом.md")
    assert note.properties["chat_title"] == "1LTM_4"
    assert note.properties["created"] == "29.06.2025 at 17:38"
    assert note.sections[0].heading_path == ["User"] and len(note.turns) == 2
    assert "Chat URL" not in all_text(note)


@needs_shared
def test_two_assistant_turns_in_one_note():
    note = load(VAULT, f"{STEPS}/07_могу_ли_я_запустить.md")
    assert [t.role for t in note.turns] == ["user", "assistant", "assistant"]
    assert len({t.uid for t in note.turns}) == 3
    assert {s.turn for s in note.sections} == {0, 1, 2}


@needs_shared
def test_index_note_frontmatter_and_links():
    note = load(VAULT, "0_chatgpt/AI/1LTM_4.md")
    assert note.properties["nexus"] == "nexus-ai-chat-importer" and note.aliases == ["1LTM_4"]
    assert len(note.links) == 85 and note.links[1] == Link("01_мы_продолжаем_темы_чатом")
    assert note.turns == []


@needs_shared
def test_analysis_note_question_then_markdown_with_footnotes():
    note = load(VAULT, "1_analysis/11_мне_любопытно_если_для.md")
    assert note.turns[0].role == "user" and note.sections[0].role == "user"
    headings = [s.heading_path for s in note.sections if s.role is None]
    assert headings[0] == ["1. В чем суть проблемы или задачи, о которой идет речь в заметке"]
    assert ["3. Как решить эту проблему", "Sources"] in headings
    assert Link("15 Overlay AGI") in note.links
    assert "[^" not in all_text(note)


@needs_shared
def test_every_sample_and_help_note_parses_cleanly():
    for root in (VAULT, HELP):
        for path in root.rglob("*.md"):
            rel = path.relative_to(root).as_posix()
            note = load(root, rel)
            assert note.warnings == [], rel
            if path.name != "meta_information.md":  # frontmatter only
                assert note.sections, rel
            for s in note.sections:
                assert s.text.strip() and "<!-- UID" not in s.text


@needs_shared
def test_help_vault_tags_and_embeds():
    tags = load(HELP, "Editing and formatting/Tags.md")
    assert tags.aliases == ["How to/Working with tags"]
    assert {"y1984", "camelCase", "kebab-case"} <= set(tags.tags) and "1984" not in tags.tags
    assert "meeting" not in tags.tags  # only inside `inline code`
    links = load(HELP, "Linking notes and files/Internal links.md")
    assert Link("Quick switcher", block="search-autocomplete-large", embed=True) in links.links
    callouts = load(HELP, "Editing and formatting/Callouts.md")
    text = all_text(callouts)
    assert "\nCallouts can have custom titles\nLike this one." in text  # rendered callout
    assert "> [!tip] Callouts can have custom titles" in text  # the same inside a code block stays as written
