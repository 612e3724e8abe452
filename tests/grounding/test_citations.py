"""Citations as the user's own analysis notes write them: `[[note]]` links and `[^n]: [[path#heading]]`."""

from __future__ import annotations

import re

from shared_data import SAMPLE_VAULT, needs

from konsilium.grounding.citations import Source, linkable_heading, render_sources, wikilink_target


def test_turn_labels_are_not_linkable_headings_but_real_headings_are():
    assert linkable_heading("Assistant") == ""
    assert linkable_heading("Assistant > 🛠️ Как это развернуть?") == "🛠️ Как это развернуть?"
    assert linkable_heading("Setup > GPU") == "GPU"
    assert not re.search(r"[#|\[\]^]", linkable_heading("C# [draft] | v2^x"))


def test_wikilink_targets_drop_the_extension_and_keep_the_folder():
    assert wikilink_target("0_chatgpt/AI/note one.md", "Assistant > Итог") == "0_chatgpt/AI/note one#Итог"
    assert wikilink_target("top.md", "User") == "top"


def test_sources_tail_has_one_title_link_per_note_and_one_footnote_per_passage():
    sources = [
        Source(1, "a/Note A.md", "Note A", "Assistant > Plan", 0.9),
        Source(2, "a/Note A.md", "Note A", "Assistant > Risks", 0.8),
        Source(3, "b/Note B.md", "Note B", "", 0.5),
    ]
    tail = render_sources(sources)
    assert "Sources: [[Note A]] · [[Note B]]" in tail
    footnotes = re.findall(r"^\[\^(\d+)\]: \[\[(.+?)\]\]$", tail, flags=re.M)
    assert footnotes == [("1", "a/Note A#Plan"), ("2", "a/Note A#Risks"), ("3", "b/Note B")]
    assert render_sources([]) == ""


@needs(SAMPLE_VAULT)
def test_footnotes_look_like_the_users_analysis_notes():
    """The sample vault's analysis note ends with `[^n]: [[note]]` lines: ours must parse the same way."""
    analysis = next((SAMPLE_VAULT / "1_analysis").glob("*.md")).read_text(encoding="utf-8")
    theirs = re.findall(r"^\[\^\d+\]: \[\[[^\]]+\]\]$", analysis, flags=re.M)
    ours = render_sources([Source(1, "0_chatgpt/x.md", "x", "Assistant", 1.0)]).strip().splitlines()[-1]
    assert theirs and re.fullmatch(r"\[\^\d+\]: \[\[[^\]]+\]\]", ours)
