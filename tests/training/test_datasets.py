"""Datasets: notes and chats become samples, bad items are dropped with a reason, held-out notes stay whole."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from shared_data import HELP_VAULT, needs

from konsilium.memory.log import Exchange
from konsilium.training.samples import DatasetError, Sample, read_samples, split_for, write_samples
from konsilium.training.sources import Collected, Limits, clean, collect_exchanges, collect_notes, notes_samples
from konsilium.training.tokens import IGNORE, encode

CHAT_NOTE = """>[!nexus_user] **User** - 01.02.2025 at 10:00
> How high should my saddle be?
<!-- UID: 11111111-1111-1111-1111-111111111111 -->

>[!nexus_agent] **Assistant** - 01.02.2025 at 10:01
> Set it so your knee keeps a slight bend at the bottom of the stroke, about 25 to 35 degrees.
<!-- UID: 22222222-2222-2222-2222-222222222222 -->
"""


def write(folder: Path, rel: str, text: str) -> None:
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_a_note_becomes_text_pieces_along_its_headings_each_headed_by_title_and_heading(tmp_path):
    long = "\n\n".join(f"Paragraph {n} about interval training and recovery between sessions." for n in range(60))
    write(tmp_path, "Sport/Intervals.md", f"# Plan\n\nWarm up first.\n\n## Details\n\n{long}\n")
    samples = notes_samples(tmp_path, Limits(chunk_chars=800, eval_fraction=0))
    assert len(samples) > 3  # one long section is cut into several pieces
    assert all(s.text.startswith("# Intervals\n") for s in samples)
    assert any("## Plan > Details" in s.text for s in samples)
    joined = "".join(s.text for s in samples)
    assert all(f"Paragraph {n} " in joined for n in range(60))  # nothing lost,
    assert sum(s.text.count("Paragraph 7 ") for s in samples) == 1  # nothing repeated (no overlap)


def test_a_conversation_note_becomes_a_chat_sample_ending_with_the_answer(tmp_path):
    write(tmp_path, "chats/bike.md", CHAT_NOTE)
    [sample] = notes_samples(tmp_path, Limits(eval_fraction=0))
    assert sample.kind == "chat"
    assert [m["role"] for m in sample.messages] == ["user", "assistant"]
    assert "saddle" in sample.messages[0]["content"] and "knee" in sample.messages[1]["content"]


def test_empty_duplicate_and_mojibake_items_are_dropped_with_their_reasons(tmp_path):
    body = "A note long enough to be a real training sample about cycling cadence and gears."
    write(tmp_path, "a.md", body)
    write(tmp_path, "copy/a.md", body)  # same words: a duplicate
    write(tmp_path, "tiny.md", "ok")
    write(tmp_path, "broken.md", "Ð¡Ñ‚Ð°Ñ‚ÑŒÑ Ð¾ Ð²ÐµÐ»Ð¾ÑÐ¸Ð¿ÐµÐ´Ð°Ñ… " * 3)
    collected = Collected()
    limits = Limits(eval_fraction=0, min_chars=20)
    collect_notes(tmp_path, limits, collected)
    clean(collected, limits)
    assert [s.source for s in collected.samples] == ["a.md"]
    reasons = dict(collected.dropped)
    assert reasons.get("duplicate of an earlier sample") == 1
    assert any(r.startswith("too short") for r in reasons)
    # the broken file is either repaired on reading (then kept) or dropped as mojibake: never learned as garbage
    assert all("Ð" not in s.content() for s in collected.samples)


@needs(HELP_VAULT)
def test_every_piece_of_a_note_shares_its_split_and_the_split_is_stable():
    folder = HELP_VAULT / "Editing and formatting"
    first = notes_samples(folder, Limits(eval_fraction=0.3))
    again = notes_samples(folder, Limits(eval_fraction=0.3))
    assert [s.split for s in first] == [s.split for s in again]
    by_note: dict[str, set[str]] = {}
    for sample in first:
        by_note.setdefault(sample.source, set()).add(sample.split)
    assert all(len(splits) == 1 for splits in by_note.values())
    held = [note for note, splits in by_note.items() if splits == {"eval"}]
    assert len(held) == math.ceil(0.3 * len(by_note))  # the share asked for, not a hash lottery


def test_a_dataset_file_round_trips_and_bad_lines_are_named(tmp_path):
    samples = [
        Sample(text="Some text of a note.", source="n.md", split="train"),
        Sample(messages=({"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}), split="eval"),
    ]
    path = tmp_path / "d.jsonl"
    write_samples(samples, path)
    assert read_samples(path) == samples
    path.write_text('{"text": "fine"}\n{"messages": [{"role": "user", "content": "no answer"}]}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"d.jsonl:2: a chat sample needs an assistant message"):
        read_samples(path)
    path.write_text('{"text": "fine"}\nnot json\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"d.jsonl:2: not JSON"):
        read_samples(path)
    path.write_text(json.dumps({"messages": [{"role": "robot", "content": "x"}]}) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="robot"):
        read_samples(path)


def test_a_plain_chat_jsonl_without_our_fields_gets_a_stable_split():
    assert split_for("some/note.md", 0.5) == split_for("some/note.md", 0.5)
    assert {split_for(f"n{i}", 0.5) for i in range(20)} == {"train", "eval"}
    assert split_for("anything", 0) == "train"


def test_logged_exchanges_become_chats_without_the_sources_tail():
    answer = "Ride easy on Monday.\n\n---\nSources: [[Plan]]\n\n[^1]: [[Sport/Plan#Week]]\n"
    exchanges = [
        Exchange(
            "chatcmpl-1",
            1.0,
            "chat.completions",
            "coach",
            "coach",
            [{"role": "user", "content": "What do I ride on Monday?"}],
            answer,
            "stop",
            [],
        ),
        Exchange(
            "chatcmpl-2",
            2.0,
            "chat.completions",
            "coach",
            "coach",
            [{"role": "user", "content": "Hi"}],
            "",
            None,
            [],
            status="error",
        ),
    ]
    collected = Collected()
    collect_exchanges(exchanges, Limits(eval_fraction=0), collected)
    [sample] = collected.samples
    assert sample.messages[-1] == {"role": "assistant", "content": "Ride easy on Monday."}
    assert sum(collected.dropped.values()) == 1


def test_only_the_assistant_turns_carry_loss_in_a_chat_sample(tokenizer):
    sample = Sample(
        messages=(
            {"role": "user", "content": "What is my cadence target?"},
            {"role": "assistant", "content": "Ninety rpm."},
            {"role": "user", "content": "And uphill?"},
            {"role": "assistant", "content": "Seventy five."},
        )
    )
    [window] = encode(sample, tokenizer, 512)
    learned = tokenizer.decode([t for t, label in zip(window.input_ids, window.labels, strict=True) if label != IGNORE])
    assert "Ninety rpm." in learned and "Seventy five." in learned
    assert "cadence" not in learned and "uphill" not in learned and "system" not in learned


def test_long_text_is_cut_into_windows_and_every_token_is_learned_once(tokenizer):
    text = " ".join(f"word{n}" for n in range(400))
    windows = encode(Sample(text=text), tokenizer, 64)
    assert len(windows) > 5 and all(len(w.input_ids) <= 64 for w in windows)
    all_ids = [t for w in windows for t in w.input_ids]
    assert tokenizer.decode(all_ids).startswith("word0 word1") and all_ids[-1] == tokenizer.eos_token_id


def test_notes_can_be_chosen_by_tag_including_nested_tags(tmp_path):
    write(tmp_path, "a.md", "---\ntags: [sport/running]\n---\nLong easy runs on Sundays build the aerobic base.")
    write(tmp_path, "b.md", "Notes about #sport in general, with the tag in the text of the note body.")
    write(tmp_path, "c.md", "---\ntags: [sports]\n---\nA note with a different tag that only looks similar.")
    collected = Collected()
    limits = Limits(eval_fraction=0)
    collect_notes(tmp_path, limits, collected, tags=("#Sport",))
    assert sorted(s.source for s in collected.samples) == ["a.md", "b.md"]
    assert collected.dropped["without the tags asked for"] == 1
