"""PEFT's module-name patterns (`rank_pattern`, `alpha_pattern`, a regex `target_modules`), matched without the
risk of catastrophic backtracking.

PEFT (`get_pattern_key`) tries each key in order as `re.match(rf"(.*\\.)?({key})$", name)`: the key must match a
whole dotted suffix of the module name (`q_proj` matches `model.layers.0.self_attn.q_proj`). We keep exactly that
rule but match the key with `fullmatch` at each start the name allows (0 and after every dot), so the prefix adds
no backtracking, and accept only keys whose own backtracking is bounded: no backreferences or lookarounds, no
quantifier over a group that holds a quantifier or an alternation (`(.|.){0,25}X` takes 2^25 steps), and few
variable quantifiers in all (their choices multiply). Anything else is refused with the reason, before any
module name meets it: one adapter file must not freeze the server.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from re import _constants as sre  # Python 3.11+: the parser `re` itself uses
from re import _parser as sre_parse

MAX_PATTERN_CHARS = 256
CHOICES_CAP = 32  # a quantifier is counted as at most this many choices (module names are short)
MAX_CHOICES = 4096  # the product of a key's quantifier choices, summed over every key of one adapter
_PLAIN = re.compile(r"[A-Za-z0-9_\-]+")  # no regex syntax at all: a suffix comparison does it
_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", sre.MAX_REPEAT))


class PatternError(ValueError):
    """A pattern that is not a valid regex or cannot be matched in bounded time; the message says why."""


@dataclass(frozen=True)
class Pattern:
    key: str
    regex: re.Pattern | None  # None: a plain module name
    min_width: int
    max_width: int
    choices: int  # how many ways its quantifiers can split a name, at most (1: none)

    def matches(self, name: str) -> bool:
        """PEFT's rule: the key matches the whole name or a whole suffix starting after a dot."""
        if self.regex is None:
            return name == self.key or name.endswith("." + self.key)
        starts = [0] + [i + 1 for i, char in enumerate(name) if char == "."]
        for start in starts:
            if self.min_width <= len(name) - start <= self.max_width and self.regex.fullmatch(name, start):
                return True
        return False

    def matches_whole(self, name: str) -> bool:
        """`target_modules` as a string: PEFT's `re.fullmatch(key, name)`."""
        if self.regex is None:
            return name == self.key
        return self.min_width <= len(name) <= self.max_width and self.regex.fullmatch(name) is not None


@lru_cache(maxsize=1024)
def compile_pattern(key: str) -> Pattern:
    """The key, checked and compiled. Raises PatternError naming what makes it unsafe or invalid."""
    if not isinstance(key, str) or not key:
        raise PatternError(f"{key!r} is not a module-name pattern (a non-empty string)")
    if len(key) > MAX_PATTERN_CHARS:
        raise PatternError(f"{key[:40]!r}... is {len(key)} characters long; at most {MAX_PATTERN_CHARS}")
    if _PLAIN.fullmatch(key):
        return Pattern(key, None, len(key), len(key), 1)
    try:
        parsed = sre_parse.parse(key)
        regex = re.compile(key)
        re.compile(f"(?:{key})")  # as PEFT embeds it: a flag in the middle or a stray `)` fails there
        min_width, max_width = parsed.getwidth()
    except (re.error, OverflowError, RecursionError, ValueError) as exc:
        raise PatternError(f"{key!r} is not a valid regular expression: {exc}") from None
    return Pattern(key, regex, min_width, max_width, _choices(key, parsed, inside_repeat=False))


def _choices(key: str, parsed, inside_repeat: bool) -> int:
    """The product of the quantifiers' choices, refusing what backtracks without bound."""
    total = 1
    for op, av in parsed:
        if op in (sre.GROUPREF, sre.GROUPREF_EXISTS):
            raise PatternError(f"{key!r}: backreferences and conditionals are not supported in module patterns")
        if op in (sre.ASSERT, sre.ASSERT_NOT):
            raise PatternError(f"{key!r}: lookarounds are not supported in module patterns")
        if op is sre.SUBPATTERN:
            total *= _choices(key, av[-1], inside_repeat)
        elif op is getattr(sre, "ATOMIC_GROUP", None):
            total *= _choices(key, av, inside_repeat)
        elif op is sre.BRANCH:
            if inside_repeat:
                raise PatternError(
                    f"{key!r}: a quantifier over an alternation can take exponential time to match; "
                    "use a character class ([ab]) or list the module names"
                )
            total *= sum(_choices(key, branch, inside_repeat) for branch in av[1])
        elif op in _REPEATS:
            low, high, body = av
            if inside_repeat:
                raise PatternError(
                    f"{key!r}: nested quantifiers can take exponential time to match; list the module names instead"
                )
            total *= min(high - low, CHOICES_CAP) + 1
            _choices(key, body, inside_repeat=True)
    return total


def compile_patterns(patterns: Iterable[str], where: str) -> list[Pattern]:
    """Every key of one mapping, checked; PatternError names the mapping and the first bad key."""
    compiled = []
    for key in patterns:
        try:
            compiled.append(compile_pattern(key))
        except PatternError as exc:
            raise PatternError(f"{where}: {exc}") from None
    return compiled


def check_budget(groups: Mapping[str, list[Pattern]]) -> None:
    """Quantifier choices summed over an adapter's keys: many cheap keys or a few costly ones, not both."""
    total = sum(pattern.choices for patterns in groups.values() for pattern in patterns)
    if total > MAX_CHOICES:
        names = " and ".join(groups)
        raise PatternError(
            f"{names}: the patterns' quantifiers allow {total} ways of matching a name, over the limit of "
            f"{MAX_CHOICES}; use fewer quantifiers (*, +, ?, {{m,n}}) or list the module names"
        )


def pattern_key(patterns: Iterable[str], name: str) -> str | None:
    """The first key matching `name` (PEFT's `get_pattern_key`), None when none does."""
    for key in patterns:
        if compile_pattern(key).matches(name):
            return key
    return None
