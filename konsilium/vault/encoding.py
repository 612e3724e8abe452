"""Bytes → text for vault notes: BOMs, non-UTF-8 files and mojibake repair.

Notes reach the vault through many tools; the failure we have actually seen is UTF-8 that some app decoded
as Mac Roman (or cp1252/latin-1) and saved again, turning "Как" into "–ö–∞–∫". Such text is still valid
UTF-8, so it has to be detected and reversed after decoding.
"""

from __future__ import annotations

import codecs
import re

import ftfy

# Encodings a UTF-8 byte stream is commonly mis-decoded as, most likely first.
MOJIBAKE_ENCODINGS = ("mac_roman", "cp1252", "latin-1")

_CYRILLIC = re.compile(r"[\u0400-\u04FF]")
_LETTER = re.compile(r"[^\W\d_]")


def _c1_passthrough(exc: UnicodeError):
    """cp1252 leaves 0x81, 0x8D, 0x8F, 0x90, 0x9D undefined; Windows and browsers map them to U+0081…
    so mojibake made that way carries those control characters, and they must encode back to their byte."""
    if isinstance(exc, UnicodeEncodeError):
        chunk = exc.object[exc.start : exc.end]
        if all(0x80 <= ord(c) <= 0x9F for c in chunk):
            return bytes(ord(c) for c in chunk), exc.end
    raise exc


codecs.register_error("konsilium-c1", _c1_passthrough)


def _charset(enc: str) -> frozenset[str]:
    """The characters a single-byte code page can show (undefined bytes as their C1 control)."""
    return frozenset(bytes([b]).decode(enc, errors="ignore") or chr(b) for b in range(256))


_CHARSETS = {enc: _charset(enc) for enc in MOJIBAKE_ENCODINGS}
# Characters that appear when UTF-8 bytes 0x80-0xFF are shown in a single-byte code page. Plain text uses a
# few of them ("–", "é") alone; mojibake packs them densely, which is what the score counts.
_HIGH_CHARS = frozenset(
    ch for enc in MOJIBAKE_ENCODINGS for ch in _CHARSETS[enc] if ord(ch) >= 0x80 and ord(ch) not in range(0x400, 0x500)
)
# Typical two-character mojibake of Cyrillic (UTF-8 lead bytes D0/D1) and of “”—… punctuation (E2 80 xx).
_MARKERS = re.compile(r"[–—ÐÑ][^\s\w]|[–—ÐÑ][A-Za-zÀ-ÿ]|‚Ä|â€|Ã.|Â[\s\S]|[ðüû][\x80-\xbfŸ]")


def mojibake_score(text: str) -> int:
    """How mojibake-like a string is: marker pairs weigh most, any code-page high char counts a little."""
    return 4 * len(_MARKERS.findall(text)) + sum(1 for ch in text if ch in _HIGH_CHARS)


def looks_mojibake(text: str) -> bool:
    return bool(_MARKERS.search(text))


def _try_undo(s: str, enc: str) -> str | None:
    try:
        return s.encode(enc, errors="konsilium-c1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return None


def _repair_runs(line: str, enc: str) -> str:
    """Undo `enc` mojibake on each maximal run of characters `enc` can encode.

    Runs let a line that mixes correct Cyrillic with mojibake still be repaired; when a whole run does not
    round-trip (e.g. a genuine "–" next to mojibake), its space-separated tokens are tried one by one.
    """
    charset = _CHARSETS[enc]
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        s = "".join(run)
        run.clear()
        if s.isascii():
            out.append(s)
            return
        fixed = _try_undo(s, enc)
        if fixed is None:
            parts = [_try_undo(p, enc) or p for p in s.split(" ")]
            fixed = " ".join(parts)
        out.append(fixed)

    for ch in line:
        if ch in charset:
            run.append(ch)
        else:
            flush()
            out.append(ch)
    flush()
    return "".join(out)


def _undo_whole(line: str) -> tuple[str, str | None]:
    """Undo mojibake on a whole line: accepted only when it round-trips and gets less suspicious."""
    best, best_enc, best_score = line, None, mojibake_score(line)
    if best_score == 0:
        return line, None
    for enc in MOJIBAKE_ENCODINGS:
        cand = _try_undo(line, enc)
        if cand is not None and cand != line and (score := mojibake_score(cand)) < best_score:
            best, best_enc, best_score = cand, enc, score
    return best, best_enc


def _undo_partial(line: str) -> tuple[str, str | None]:
    """Fallback for a damaged note's lines that do not round-trip as a whole: per run, then ftfy."""
    base = mojibake_score(line)
    for enc in MOJIBAKE_ENCODINGS:
        cand = _repair_runs(line, enc)
        if mojibake_score(cand) < base:
            return cand, enc
    cand = ftfy.fix_encoding(line)  # fix_encoding (not fix_text): it must not re-style quotes or spaces
    if mojibake_score(cand) < base:
        return cand, "ftfy"
    return line, None


def repair_mojibake(text: str) -> tuple[str, list[str]]:
    """Repair mojibake line by line, returning (text, warnings).

    A note is treated as damaged only when at least half of its mojibake-looking lines round-trip as whole
    lines. Notes that merely *quote* mojibake (a tokenizer note listing "Ð¿Ð»" next to Russian prose) have
    lines that do not round-trip, so they stay byte-for-byte as written.
    """
    if not any(ch in _HIGH_CHARS for ch in text):
        return text, []  # fast path: nothing a code page could have produced
    lines = text.split("\n")
    suspicious = [i for i, line in enumerate(lines) if looks_mojibake(line)]
    fixed: dict[int, tuple[str, str]] = {}
    for i, line in enumerate(lines):
        new, enc = _undo_whole(line)
        if enc is not None:
            fixed[i] = (new, enc)
    if not fixed or 2 * sum(1 for i in suspicious if i in fixed) < len(suspicious):
        return text, []
    for i in suspicious:
        if i not in fixed:
            new, enc = _undo_partial(lines[i])
            if enc is not None:
                fixed[i] = (new, enc)
    counts: dict[str, int] = {}
    for i, (new, enc) in fixed.items():
        # Text that went through the wrong decode twice needs a second undo.
        again, enc2 = _undo_whole(new)
        lines[i] = again if enc2 is not None else new
        counts[enc] = counts.get(enc, 0) + 1
    warnings = [f"mojibake repaired ({enc}, {n} lines)" for enc, n in sorted(counts.items(), key=lambda x: -x[1])]
    return "\n".join(lines), warnings


def _mostly_cyrillic(text: str) -> bool:
    """Does a cp1251 decode look like Russian? Latin-1 bytes decoded as cp1251 also give Cyrillic letters,
    but scattered inside Latin words ("cafй"), which real text almost never has."""
    letters = [ch for ch in text if _LETTER.match(ch) and not ch.isascii()]
    if len(letters) < 3 or sum(1 for ch in letters if _CYRILLIC.match(ch)) < 0.9 * len(letters):
        return False
    words = [w for w in re.findall(r"[^\W\d_]+", text) if _CYRILLIC.search(w)]
    mixed = sum(1 for w in words if re.search(r"[A-Za-z]", w))
    return mixed <= 0.1 * len(words)


_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: its BOM starts with the UTF-16 one
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def has_bom(data: bytes) -> bool:
    return any(data.startswith(bom) for bom, _ in _BOMS)


def decode_text(data: bytes) -> tuple[str, list[str]]:
    """Decode a note's bytes to text, returning (text, warnings). Never raises."""
    warnings: list[str] = []
    for bom, enc in _BOMS:
        if data.startswith(bom):
            text = data[len(bom) :].decode(enc, errors="replace")
            if "\ufffd" in text:
                warnings.append(f"undecodable bytes replaced ({enc})")
            break
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("cp1251", errors="replace")
            if _mostly_cyrillic(text):
                warnings.append("not UTF-8, decoded as cp1251")
            else:
                text = data.decode("utf-8", errors="replace")
                warnings.append("not UTF-8, undecodable bytes replaced")
            return text.replace("\r\n", "\n"), warnings
    text, fixed = repair_mojibake(text)
    return text.replace("\r\n", "\n"), warnings + fixed
