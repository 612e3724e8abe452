"""`konsilium explain FILE`: every field of a model file, with meaning, typical values and effect."""

from __future__ import annotations

import json
from pathlib import Path

from .architectures import PlanError
from .context import context_window
from .fields import CONFIG, FILES, KIND_TEXT

LANGS = ("en", "ru")


def detect_kind(path: Path, data: dict) -> str:
    stem = path.name.removesuffix(".json")
    if stem in FILES:
        return stem
    if "peft_type" in data or ("r" in data and "target_modules" in data):
        return "adapter_config"
    if "chat_template" in data or "tokenizer_class" in data:
        return "tokenizer_config"
    if "hidden_size" in data or "model_type" in data:
        return "config"
    if {"do_sample", "temperature", "top_p"} & data.keys():
        return "generation_config"
    raise PlanError(
        f"{path}: cannot tell which model file this is (config, tokenizer_config, generation_config, adapter_config)"
    )


def _short(value) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def explain_file(path: str | Path, lang: str = "en") -> dict:
    if lang not in LANGS:
        raise PlanError(f"--lang {lang!r}: allowed values are {', '.join(LANGS)}")
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise PlanError(f"{path}: no such file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PlanError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise PlanError(f"{path}: expected a JSON object")
    kind = detect_kind(path, data)
    table = FILES[kind]
    ru = lang == "ru"
    fields = []
    for key, value in data.items():
        entry = table.get(key)
        if entry is None:
            fields.append(
                {
                    "field": key,
                    "value": _short(value),
                    "known": False,
                    "meaning": "неизвестное поле: нет в словаре konsilium"
                    if ru
                    else "unknown field: not in konsilium's dictionary",
                }
            )
            continue
        change, typical, m_en, m_ru, e_en, e_ru = entry
        fields.append(
            {
                "field": key,
                "value": _short(value),
                "known": True,
                "meaning": m_ru if ru else m_en,
                "typical": typical,
                "change": change,
                "change_text": KIND_TEXT[change][1 if ru else 0],
                "effect": e_ru if ru else e_en,
            }
        )
    result = {
        "file": str(path),
        "kind": kind,
        "lang": lang,
        "fields": fields,
        "unknown": [f["field"] for f in fields if not f["known"]],
    }
    if kind == "config":  # the fields that set the context disagree per rope_type: say what they add up to
        result["context"] = context_window(data).to_dict()
    return result


def change_kind(dotted_key: str) -> str:
    """Whether changing a config field needs retraining ('retrain'), is an inference knob, or is unknown."""
    entry = CONFIG.get(dotted_key.split(".")[0])
    return entry[0] if entry else "unknown"
