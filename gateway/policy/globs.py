"""Access-rule path patterns, matched in time linear in the request path.

"*" matches within one segment, "**" matches anything, a trailing "/**" also matches the bare
prefix and "/**/" matches one "/" or any run of segments. A backtracking regular expression of
a pattern with several wildcards ("/**/**/x", "/**/*-*-*.js") takes time polynomial in the
path, of a degree the number of wildcards: with a path of a few kilobytes, which any client may
send, one request would hold the event loop for minutes. A pattern whose regular expression
cannot backtrack more than linearly is matched by it (the usual patterns, and the fastest way);
any other by a position-set automaton: the set of path positions reachable after each part of
the pattern, as the bits of an integer, so a few integer operations per part.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

# The parts a pattern is made of: text, or one of the wildcards.
_STAR = "*"  # [^/]*
_ANY = "**"  # .*
_MIDDLE = "/**/"  # /(?:.*/)?
_TAIL = "/**"  # (?:/.*)?, at the end only
_REGEX = {_STAR: "[^/]*", _ANY: ".*", _MIDDLE: "/(?:.*/)?", _TAIL: "(?:/.*)?"}


_WILDCARD = re.compile(r"/\*\*/|/\*\*\Z|\*\*|\*")  # the wildcards, the longest first


def parts_of(pattern: str) -> list[tuple[bool, str]]:
    """(is a wildcard, text) for each part of `pattern`, consecutive text joined."""
    parts: list[tuple[bool, str]] = []
    index = 0
    for wildcard in _WILDCARD.finditer(pattern):
        if wildcard.start() > index:
            parts.append((False, pattern[index : wildcard.start()]))
        parts.append((True, wildcard.group()))
        index = wildcard.end()
    if index < len(pattern):
        parts.append((False, pattern[index:]))
    return parts


def glob_to_regex(pattern: str) -> str:
    """An access-rule path pattern as a regular expression for `re.fullmatch`.

    "/public/**" matches "/public", "/public/" and "/public/a/b"; "/a/**/b" matches "/a/b" and
    "/a/x/y/b".
    """
    return _regex_of(parts_of(pattern))


def _regex_of(parts: list[tuple[bool, str]]) -> str:
    return "".join(_REGEX[text] if wild else re.escape(text) for wild, text in parts)


class _Path:
    """A request path seen as positions 0..len: bit p of a set stands for "matched p chars"."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.end = len(path)
        self.all = (1 << (self.end + 1)) - 1
        self._found: dict[str, int] = {}
        self._not_slash: int | None = None

    def starts_of(self, text: str) -> int:
        """The positions where `text` occurs (overlapping occurrences too)."""
        found = self._found.get(text)
        if found is None:
            found = 0
            at = self.path.find(text)
            while at >= 0:
                found |= 1 << at
                at = self.path.find(text, at + 1)
            self._found[text] = found
        return found

    def not_slash(self) -> int:
        if self._not_slash is None:
            self._not_slash = ((1 << self.end) - 1) & ~self.starts_of("/")
        return self._not_slash

    def text(self, reached: int, text: str) -> int:
        return (reached & self.starts_of(text)) << len(text)

    def star(self, reached: int) -> int:
        # Adding the run mask carries each run's lowest reached position up to the run's end (the
        # next "/"); the bits that change are every position from there to that end.
        runs = self.not_slash()
        return reached | (((reached & runs) + runs) ^ runs)

    def any(self, reached: int) -> int:
        if not reached:
            return 0
        lowest = reached & -reached
        return self.all & ~(lowest - 1)


_Step = Callable[[_Path, int], int]


def _step(wild: bool, text: str) -> _Step:
    if not wild:
        return lambda path, reached: path.text(reached, text)
    if text == _STAR:
        return _Path.star
    if text == _ANY:
        return _Path.any
    if text == _MIDDLE:
        return lambda path, reached: _middle(path, path.text(reached, "/"))
    return lambda path, reached: reached | path.any(path.text(reached, "/"))


def _middle(path: _Path, after_slash: int) -> int:
    return after_slash | path.text(path.any(after_slash), "/")


def backtracks_linearly(parts: list[tuple[bool, str]]) -> bool:
    """True when a backtracking regular expression of these parts takes linear time: at most one
    wildcard that may end anywhere, every other one a "*" right before a "/" (which can only end
    at the next "/", so it leaves one way on)."""
    wildcards = [index for index, (wild, _) in enumerate(parts) if wild]
    return all(
        parts[index][1] == _STAR
        and index + 1 < len(parts)
        and not parts[index + 1][0]
        and parts[index + 1][1].startswith("/")
        for index in wildcards[:-1]
    )


class PathPattern:
    """One compiled access-rule path pattern; `regex` is set when a regular expression of it
    is safe to use (see backtracks_linearly), and `matches` uses it then. The regular expression
    is compiled at the first match: a policy of ten thousand rules loads without compiling
    those that no request ever reaches."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        parts = parts_of(pattern)
        self._parts = parts
        self._steps: list[_Step] | None = None
        self.regex = _regex_of(parts) if backtracks_linearly(parts) else None
        self._compiled: re.Pattern[str] | None = None

    def matches(self, path: str) -> bool:
        if self.regex is not None:
            compiled = self._compiled
            if compiled is None:
                compiled = self._compiled = re.compile(self.regex, re.DOTALL)
            return compiled.fullmatch(path) is not None
        return self.automaton_matches(path)

    def automaton_matches(self, path: str) -> bool:
        """The position-set automaton's answer, whatever the pattern."""
        steps = self._steps
        if steps is None:
            steps = self._steps = [_step(wild, text) for wild, text in self._parts]
        positions = _Path(path)
        reached = 1
        for step in steps:
            reached = step(positions, reached)
            if not reached:
                return False
        return bool(reached >> positions.end & 1)

    def leading_segments(self) -> tuple[str, ...] | None:
        """The path segments every path this pattern matches starts with, as far as its text
        before the first wildcard tells; None when it has no wildcard (it matches itself only).

        "/api/v1/**" gives ("api", "v1") ("/**" at the end also matches "/api/v1" itself),
        "/api/v1/x*" gives ("api", "v1"), "/a/**/b" gives ("a",) ("/**/" is at least a "/"),
        "/**/x.php" and "/x*" give ().
        """
        first = next((index for index, (wild, _) in enumerate(self._parts) if wild), None)
        if first is None:
            return None
        text = "".join(part for _, part in self._parts[:first])  # the literal prefix
        if not text:
            return ()
        if self._parts[first][1] in (_TAIL, _MIDDLE):  # "/x/**": "/x", or "/x/" and more
            return tuple(text[1:].split("/"))
        return tuple(text[1:].split("/")[:-1])  # the last piece may go on past the wildcard


T = TypeVar("T")


class _Node:
    __slots__ = ("children", "entries")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        # (order, methods, pattern, value), by order: the patterns whose literal segments end here
        self.entries: list[tuple[int, frozenset[str] | None, PathPattern, Any]] = []


class PathIndex(Generic[T]):
    """Ordered entries (path patterns, the methods they are for, a value), answering which is
    the first, in their order, that a request's method and path meet: what a scan of the
    entries in order would answer, at a cost that does not grow with their number.

    Each pattern is filed under the literal path segments it starts with (a trie); exact paths
    in a dictionary. A path meets only the patterns filed along its own first segments, so only
    those are tried, in order, and a node's patterns after the best order found so far are not.
    Methods: None is every method; HEAD meets a GET entry (a GET without its body) unless the
    entry names HEAD itself, as `AccessRule.matches` says.
    """

    def __init__(
        self, entries: Iterable[tuple[Iterable[PathPattern], Iterable[str] | None, T]]
    ) -> None:
        self._root = _Node()
        self._exact: dict[str, list[tuple[int, frozenset[str] | None, T]]] = {}
        self._values: list[T] = []
        for order, (patterns, methods, value) in enumerate(entries):
            self._values.append(value)
            allowed = frozenset(methods) if methods is not None else None
            for pattern in patterns:
                segments = pattern.leading_segments()
                if segments is None:
                    self._exact.setdefault(pattern.pattern, []).append((order, allowed, value))
                    continue
                node = self._root
                for segment in segments:
                    node = node.children.setdefault(segment, _Node())
                node.entries.append((order, allowed, pattern, value))

    def __len__(self) -> int:
        return len(self._values)

    def first(self, method: str, path: str) -> T | None:
        """The value of the first entry (in order) whose methods take `method` (upper case)
        and one of whose patterns matches `path`; None when no entry does."""
        best = len(self._values)
        found: T | None = None
        for order, allowed, value in self._exact.get(path, ()):
            if order < best and _takes(allowed, method):
                best, found = order, value
                break
        node: _Node | None = self._root
        segments = iter(path[1:].split("/")) if path.startswith("/") else iter(())
        while node is not None:
            for order, allowed, pattern, value in node.entries:
                if order >= best:
                    break
                if _takes(allowed, method) and pattern.matches(path):
                    best, found = order, value
                    break
            segment = next(segments, None)
            node = node.children.get(segment) if segment is not None else None
        return found


def _takes(allowed: frozenset[str] | None, method: str) -> bool:
    return (
        allowed is None
        or method in allowed
        or (method == "HEAD" and "GET" in allowed)  # HEAD in allowed: the line above
    )
