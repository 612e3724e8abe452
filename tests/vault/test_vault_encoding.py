import codecs
from pathlib import Path

import pytest

from konsilium.vault.encoding import decode_text, looks_mojibake, repair_mojibake

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
VAULT = SHARED / "sample-vault"
BROKEN = VAULT / "9_inbox_broken_encoding"
STEPS = VAULT / "0_chatgpt" / "AI" / "2025-06-29 - 1LTM_4"
needs_shared = pytest.mark.skipif(not VAULT.is_dir(), reason="../shared/sample-vault not present")

# Broken note → the correct note it was made from.
ORIGINALS = {
    "33 config for AGI (mojibake).md": "33_как_бы_ты_насироила.md",
    "40 CPU with TB RAM (mojibake).md": "40_если_бы_у_меня.md",
    "70 LoRA RAG placement (mojibake).md": "70_мне_интересен_такой_момент.md",
}


def test_utf8_plain_and_with_bom():
    assert decode_text("Привет, world".encode()) == ("Привет, world", [])
    assert decode_text(codecs.BOM_UTF8 + "Привет".encode()) == ("Привет", [])


@pytest.mark.parametrize("enc", ["utf-16", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_with_bom(enc):
    data = "Заметка\r\n# Title".encode(enc)
    if enc == "utf-16-be":
        data = codecs.BOM_UTF16_BE + data
    text, warnings = decode_text(data)
    assert text == "Заметка\n# Title" and warnings == []


def test_cp1251_file_is_decoded_as_cyrillic():
    text, warnings = decode_text("Как бы ты настроила этот конфиг?".encode("cp1251"))
    assert text == "Как бы ты настроила этот конфиг?"
    assert warnings == ["not UTF-8, decoded as cp1251"]


def test_undecodable_non_cyrillic_bytes_are_replaced_with_a_warning():
    text, warnings = decode_text(b"caf\xe9 \xff\xfe ok")  # latin-1 bytes: cp1251 would give no Cyrillic
    assert text.startswith("caf") and text.endswith(" ok") and "\ufffd" in text
    assert warnings == ["not UTF-8, undecodable bytes replaced"]


@pytest.mark.parametrize("enc", ["mac_roman", "cp1252", "latin-1"])
def test_short_mojibake_is_repaired_for_each_code_page(enc):
    original = "Как бы ты насироила этот конфиг под AGI? — «да»"
    # As Windows/browsers do it: bytes a code page leaves undefined show up as C1 controls.
    broken = "".join(bytes([b]).decode(enc, errors="ignore") or chr(b) for b in original.encode())
    assert looks_mojibake(broken)
    text, warnings = decode_text(broken.encode("utf-8"))
    assert text == original
    # latin-1 mojibake is a subset of cp1252-with-C1-controls, so it is reported as either.
    expected = {"cp1252", "latin-1"} if enc == "latin-1" else {enc}
    assert warnings in [[f"mojibake repaired ({e}, 1 lines)"] for e in expected]


def test_mojibake_emoji_heading_is_repaired():
    original = "## 🎯 Цель: AGI-подход"
    broken = original.encode().decode("mac_roman")
    assert repair_mojibake(broken)[0] == original


def test_correct_text_with_typographic_chars_is_untouched():
    for s in ["café – naïve “quoted” …", "привет — мир «ёлка» №5", "x ± 2 °C, 5 × 3", "Ð is a letter"]:
        assert decode_text(s.encode()) == (s, [])


def test_text_quoting_a_little_mojibake_is_untouched():
    # A note *about* encodings: Russian prose with a quoted mojibake sample must stay as written.
    s = 'Токен "Ð¿Ð» Ð¾Ð´" — это кракозябры от кириллицы\n- "Ð¿Ð»" = `пл`\nобычный текст'
    assert decode_text(s.encode()) == (s, [])


@needs_shared
def test_broken_sample_notes_become_the_original_russian():
    for broken_name, original_name in ORIGINALS.items():
        raw = (BROKEN / broken_name).read_bytes()
        before = sum(looks_mojibake(line) for line in raw.decode().split("\n"))
        text, warnings = decode_text(raw)
        after = [line for line in text.split("\n") if looks_mojibake(line)]
        assert before > 50 and after == []  # measured: 60/55/64 mojibake lines → 0
        assert len(warnings) == 1 and warnings[0].startswith("mojibake repaired (mac_roman, ")
        original = (STEPS / original_name).read_text(encoding="utf-8")
        assert text.rstrip("\n") == original.rstrip("\n")  # byte-exact repair, trailing newline aside


@needs_shared
def test_first_user_line_of_the_config_note():
    text, _ = decode_text((BROKEN / "33 config for AGI (mojibake).md").read_bytes())
    assert text.split("\n")[1] == "> Как бы ты насироила этот конфиг под AGI?"


@needs_shared
def test_all_correct_notes_come_out_unchanged():
    checked = 0
    for root in (VAULT, SHARED / "obsidian-help-en"):
        for path in root.rglob("*.md"):
            if path.parent == BROKEN:
                continue
            raw = path.read_bytes()
            assert decode_text(raw) == (raw.decode("utf-8").replace("\r\n", "\n"), []), path
            checked += 1
    assert checked >= 87 + 173
