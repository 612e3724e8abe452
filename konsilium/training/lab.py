"""The profiles file of `konsilium lab`: which models, with which inference knobs, on which text and prompts.

    text: {notes: ~/Vault/Sport/held-out}        # or {dataset: sport.jsonl, split: eval}
    prompts: ["How should I train for a marathon?"]
    max_new_tokens: 64                           # sample answers: greedy, this long at most
    base: null                                   # base model weights (default: the engine's model)
    device: auto                                 # auto, cpu or cuda
    profiles:
      - {name: base, model: base}
      - {name: sport-16-experts, model: sport, set: {num_experts_per_tok: 16}, context: 1024, thinking: true}
    grid: {model: [base, sport@1], set.num_experts_per_tok: [8, 16], thinking: [false, true]}

A grid is the cartesian product of its lists, each profile named after its model and the values that vary. Every
mistake is found here, before a model loads, and named by its key path. No torch import: checking a file is
instant."""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .measure import SPLITS, check_knob, model_role, text_samples

TOP_KEYS = ("text", "prompts", "max_new_tokens", "base", "device", "profiles", "grid")
PROFILE_KEYS = ("name", "model", "set", "context", "thinking")
GRID_KEYS = ("model", "context", "thinking", "set.FIELD")
TEXT_KEYS = ("notes", "dataset", "split")
DEVICES = ("auto", "cpu", "cuda")
MIN_CONTEXT = 16  # as `eval perplexity --context`
DEFAULT_NEW_TOKENS = 64


class LabError(ValueError):
    """A profiles file that cannot run; the message names the key path."""


@dataclass(frozen=True)
class Profile:
    name: str
    model: str
    overrides: dict = field(default_factory=dict)
    context: int | None = None  # tokens per perplexity window; None: training.max_tokens
    thinking: bool | None = None  # None: the chat template's own default
    where: str = ""  # the key path of its model id, for errors found later (an unknown role)


@dataclass(frozen=True)
class Text:
    notes: Path | None = None
    dataset: Path | None = None
    split: str = "eval"

    def describe(self) -> dict:
        if self.notes is not None:
            return {"notes": str(self.notes)}
        return {"dataset": str(self.dataset), "split": self.split}


@dataclass(frozen=True)
class Lab:
    text: Text
    profiles: tuple[Profile, ...]
    prompts: tuple[str, ...] = ()
    max_new_tokens: int = DEFAULT_NEW_TOKENS
    base: Path | None = None
    device: str = "auto"

    def samples(self, settings) -> list:
        """The held-out text, read as `eval perplexity` reads it."""
        return text_samples(settings, self.text.notes, self.text.dataset, self.text.split)

    def roles(self, registry) -> list:
        """Each profile's role (None: the base model); an unknown model id is named by its key path."""
        found = []
        for profile in self.profiles:
            try:
                found.append(model_role(registry, profile.model))
            except ValueError as exc:
                raise LabError(f"{profile.where}: {exc}") from None
        return found


def read_lab(path: Path) -> Lab:
    path = Path(path).expanduser()
    if not path.is_file():
        raise LabError(f"{path}: no such profiles file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise LabError(f"{path}: invalid YAML: {exc}") from None
    except UnicodeDecodeError:
        raise LabError(f"{path}: not UTF-8 text") from None
    try:
        return parse_lab(data, path.parent)
    except ValueError as exc:
        raise LabError(f"{path}: {exc}") from None


def parse_lab(data: Any, folder: Path) -> Lab:
    """`folder`: where relative paths in the file start (the file's own folder)."""
    data = _mapping("the file", data, TOP_KEYS)
    if "text" not in data:
        raise LabError("text: missing; give {notes: FOLDER} or {dataset: FILE, split: eval}")
    profiles = [
        _profile(f"profiles[{n}]", item) for n, item in enumerate(_expect("profiles", data.get("profiles") or [], list))
    ]
    if data.get("grid") is not None:
        profiles += expand_grid(data["grid"])
    if not profiles:
        raise LabError("no profiles: give `profiles:` (a list) and/or `grid:` (lists of values to combine)")
    _unique_names(profiles)
    base = data.get("base")
    device = data.get("device") or "auto"
    if device not in DEVICES:
        raise LabError(f"device: {device!r} is not one of {', '.join(DEVICES)}")
    return Lab(
        text=_text(data["text"], folder),
        profiles=tuple(profiles),
        prompts=_prompts(data.get("prompts")),
        max_new_tokens=_int("max_new_tokens", data.get("max_new_tokens", DEFAULT_NEW_TOKENS), 1),
        base=None if base is None else _path("base", base, folder),
        device=device,
    )


def expand_grid(grid: Any, where: str = "grid") -> list[Profile]:
    grid = _expect(where, grid, Mapping)
    if "model" not in grid:
        raise LabError(f"{where}.model: missing; list the models to compare (base, a role, ROLE@N)")
    axes: dict[str, list] = {}
    for key, values in grid.items():
        path = f"{where}.{key}"
        if key not in ("model", "context", "thinking") and not (isinstance(key, str) and key.startswith("set.")):
            raise LabError(f"{path}: unknown key; allowed keys: {', '.join(GRID_KEYS)}")
        if key.startswith("set."):
            check_knob(key.removeprefix("set."), path)
        listed = isinstance(values, list)
        values = values if listed else [values]
        if not values:
            raise LabError(f"{path}: an empty list (give at least one value)")
        axes[key] = [_value(key, f"{path}[{n}]" if listed else path, value) for n, value in enumerate(values)]
        for n, value in enumerate(axes[key]):
            if value in axes[key][:n]:
                raise LabError(f"{path}[{n}]: {_text_of(value)} is listed twice")
    model_path = f"{where}.model" + ("[{}]" if isinstance(grid["model"], list) else "")
    profiles = []
    for picks in itertools.product(*(range(len(values)) for values in axes.values())):
        chosen = {key: axes[key][n] for key, n in zip(axes, picks, strict=True)}
        shown = {key: value for key, value in chosen.items() if key != "model" and len(axes[key]) > 1}
        profiles.append(
            Profile(
                name=profile_name(chosen["model"], shown),
                model=chosen["model"],
                overrides={key.removeprefix("set."): v for key, v in chosen.items() if key.startswith("set.")},
                context=chosen.get("context"),
                thinking=chosen.get("thinking"),
                where=model_path.format(picks[list(axes).index("model")]),
            )
        )
    return profiles


def profile_name(model: str, parts: dict) -> str:
    """`sport@1 num_experts_per_tok=16 thinking=on`: the model, then the settings that tell it apart."""
    words = [model]
    for key, value in parts.items():
        key = key.removeprefix("set.")
        shown = {True: "on", False: "off", None: "default"}[value] if key == "thinking" else _text_of(value)
        words.append(f"{key}={shown}")
    return " ".join(words)


# --- one profile and its values ---------------------------------------------------------------------------------


def _profile(where: str, data: Any) -> Profile:
    data = _mapping(where, data, PROFILE_KEYS)
    if "model" not in data:
        raise LabError(f"{where}.model: missing; a model id: base, a role, or ROLE@N")
    model = _value("model", f"{where}.model", data["model"])
    overrides = {}
    for key, value in _expect(f"{where}.set", data.get("set") or {}, Mapping).items():
        check_knob(str(key), f"{where}.set.{key}")
        overrides[key] = _value(f"set.{key}", f"{where}.set.{key}", value)
    context = _value("context", f"{where}.context", data.get("context"))
    thinking = _value("thinking", f"{where}.thinking", data.get("thinking"))
    name = data.get("name")
    if name is None:
        given = {f"set.{key}": value for key, value in overrides.items()}
        given |= {key: value for key, value in (("context", context), ("thinking", thinking)) if value is not None}
        name = profile_name(model, given)
    elif not isinstance(name, str) or not name.strip():
        raise LabError(f"{where}.name: expected a non-empty string, got {name!r}")
    return Profile(name.strip(), model, overrides, context, thinking, f"{where}.model")


def _value(key: str, where: str, value: Any) -> Any:
    """One value of a profile field, checked (a `set.FIELD` key is checked as a knob by the caller)."""
    if key == "model":
        if not isinstance(value, str) or not value.strip():
            raise LabError(f"{where}: expected a model id (base, a role, ROLE@N), got {value!r}")
        return value.strip()
    if key == "context":
        return None if value is None else _int(where, value, MIN_CONTEXT)
    if key == "thinking":
        if value is not None and not isinstance(value, bool):
            raise LabError(f"{where}: expected true or false, got {value!r}")
        return value
    if value is None:  # a `set.FIELD` value; the field itself was checked by the caller
        raise LabError(f"{where}: expected a value, got null")
    return value


def _text(data: Any, folder: Path) -> Text:
    data = _mapping("text", data, TEXT_KEYS)
    if ("notes" in data) == ("dataset" in data):
        raise LabError("text: give notes (a folder of notes) or dataset (a JSONL file), one of them")
    split = data.get("split", "eval")
    if "notes" in data:
        if "split" in data:
            raise LabError("text.split: only for a dataset (a folder of notes is measured whole)")
        return Text(notes=_path("text.notes", data["notes"], folder))
    if split not in SPLITS:
        raise LabError(f"text.split: {split!r} is not one of {', '.join(SPLITS)}")
    return Text(dataset=_path("text.dataset", data["dataset"], folder), split=split)


def _prompts(value: Any) -> tuple[str, ...]:
    prompts = _expect("prompts", value if value is not None else [], list)
    for n, prompt in enumerate(prompts):
        if not isinstance(prompt, str) or not prompt.strip():
            raise LabError(f"prompts[{n}]: expected a non-empty string, got {prompt!r}")
    return tuple(prompts)


def _unique_names(profiles: list[Profile]) -> None:
    seen: dict[str, Profile] = {}
    for profile in profiles:
        if profile.name in seen:
            first = seen[profile.name].where.removesuffix(".model")
            raise LabError(
                f"{profile.where.removesuffix('.model')}: the profile name {profile.name!r} is already used by "
                f"{first}; give one of them another name"
            )
        seen[profile.name] = profile


# --- plain checks -------------------------------------------------------------------------------------------------


def _expect(where: str, value: Any, kind: type) -> Any:
    if not isinstance(value, kind):
        wanted = {list: "a list", Mapping: "a mapping"}.get(kind, kind.__name__)
        raise LabError(f"{where}: expected {wanted}, got {type(value).__name__} {value!r}")
    return value


def _mapping(where: str, value: Any, allowed: tuple[str, ...]) -> Mapping:
    value = _expect(where, value, Mapping)
    for key in value:
        if key not in allowed:
            prefix = "" if where == "the file" else f"{where}."
            raise LabError(f"{prefix}{key}: unknown key; allowed keys: {', '.join(allowed)}")
    return value


def _int(where: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LabError(f"{where}: expected a whole number, got {value!r}")
    if value < minimum:
        raise LabError(f"{where}: {value} is below the minimum {minimum}")
    return value


def _path(where: str, value: Any, folder: Path) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise LabError(f"{where}: expected a path, got {value!r}")
    path = Path(value).expanduser()
    return path if path.is_absolute() else folder / path


def _text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
