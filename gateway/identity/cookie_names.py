"""Which cookie names an application may read as its session cookie.

Frameworks read a Cookie header each their own way: names compared without regard to case,
PHP's `.`, ` ` and `[` turned into `_` (and `a[b]` read as `a`), names percent-decoded, spaces
around a name dropped, a header split on `,` as well as `;`. A cookie the gateway does not take
for a session cookie but the application does would reach it unbound, so every reading counts.

Patterns are the operator's: exact names, or `*` (any run of characters) and `?` (one
character) for names an application derives from its host, port or path (DokuWiki's `DW…`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from urllib.parse import unquote

_WILD = re.compile(r"[*?]")
_SPLIT = re.compile(r"[;,\s]")


@functools.lru_cache(maxsize=4096)  # every request's cookie names go through here; few distinct
def readings(name: str) -> frozenset[str]:
    """Every name an application may read for the cookie name `name`, case-folded."""
    found: set[str] = set()
    for form in (name, unquote(name, errors="replace")):
        stripped = form.strip().casefold()
        found.add(stripped)
        found.add(_php(form))
    found.discard("")
    return frozenset(found)


def _php(name: str) -> str:
    """PHP's name for a request variable: leading spaces dropped, an array `a[...]` read as
    `a`, then `.`, ` ` and an unmatched `[` replaced by `_`."""
    name = name.split("\x00", 1)[0].lstrip(" \t").casefold()
    bracket = name.find("[")
    if bracket > 0 and "]" in name[bracket:]:
        name = name[:bracket]
    return name.replace(".", "_").replace(" ", "_").replace("[", "_").rstrip()


class CookieNames:
    """The application's session cookie names and patterns, matched under every reading."""

    __slots__ = ("_exact", "_regex", "patterns")

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(dict.fromkeys(patterns))
        exact: set[str] = set()
        regexes: list[str] = []
        for pattern in self.patterns:
            for form in (pattern.strip().casefold(), _php(pattern)):
                if _WILD.search(form):
                    regexes.append(_translate(form))
                else:
                    exact.add(form)
        self._exact = frozenset(exact)
        self._regex = re.compile("|".join(regexes), re.DOTALL) if regexes else None

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def __repr__(self) -> str:
        return f"CookieNames({list(self.patterns)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CookieNames) and other.patterns == self.patterns

    def __hash__(self) -> int:
        return hash(self.patterns)

    def matches(self, name: str) -> bool:
        """Whether any reading of `name` is one of the session cookies."""
        return _matches(self, name)

    def _match(self, name: str) -> bool:
        for reading in readings(name):
            if reading in self._exact:
                return True
            if self._regex is not None and self._regex.fullmatch(reading):
                return True
        return False


@functools.lru_cache(maxsize=4096)  # the same few names on every request
def _matches(names: CookieNames, name: str) -> bool:
    return names._match(name)


def _translate(pattern: str) -> str:
    return "".join(
        ".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern
    )


def hidden_names(raw_headers: Iterable[str]) -> list[str]:
    """Every cookie name in raw Cookie headers under the loosest splitting any framework
    applies (`;`, `,` and white space): what some application may see."""
    names: list[str] = []
    for header in raw_headers:
        for part in _SPLIT.split(header):
            name, sep, _ = part.partition("=")
            if sep and name.strip():
                names.append(name.strip())
    return names
