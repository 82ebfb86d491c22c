"""Typed access to a YAML Document for the settings and policy loaders: the Reader records each
problem as a ConfigError at its file and line and returns the default, so every error of a file
is reported at once; Keys is a mapping's table of allowed keys, the one the loader checks and
gateway.docs documents; setting_name, suggestion, url_path and token are the shared pieces of its
messages and readers. What tests import from here is re-exported (see __all__)."""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from gateway.config_errors import ConfigError, ConfigInvalid
from gateway.durations import parse_duration
from gateway.yaml_document import Document, KeyPath, describe, load_yaml_file, parse_yaml

__all__ = [
    "ConfigError",
    "ConfigInvalid",
    "Document",
    "Keys",
    "Reader",
    "load_yaml_file",
    "parse_yaml",
    "setting_name",
    "suggestion",
    "token",
    "url_path",
]

_A_DURATION = 'a duration such as "30m", "48h" or "21d"'


def setting_name(path: KeyPath) -> str:
    """("applications", "wiki", "hosts", 0) -> "applications.wiki.hosts[0]"."""
    name = ""
    for part in path:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else part)
    return name


def suggestion(word: str, choices: Iterable[str]) -> str:
    """' (did you mean "x"?)' when a choice is close to `word` or starts with it, else ''."""
    options = {choice.lower(): choice for choice in choices}
    close = difflib.get_close_matches(word.lower(), list(options), n=1, cutoff=0.6)
    close = (
        close
        or [option for option in options if len(word) >= 3 and option.startswith(word.lower())][:1]
    )
    return f' (did you mean "{options[close[0]]}"?)' if close else ""


@dataclass(frozen=True)
class Keys:
    """The keys one mapping of a settings or policy file takes: Reader.unknown_keys refuses any
    other, and gateway.docs writes the reference from the same tables (each registers itself in
    TABLES), so a key cannot be accepted and undocumented.

    `schema` is the kind of file ("settings", "company" or "access"); `where` the mapping's place
    in it, with <placeholders> for names chosen in the file and [] for list items (the top level
    is ""); `when` tells apart tables of one place that depend on a value ("kind: http"). A
    `retired` table holds former names, accepted only to be refused with their new name."""

    schema: str
    where: str
    names: tuple[str, ...]
    when: str = ""
    retired: bool = False

    def __post_init__(self) -> None:
        TABLES.append(self)

    def path(self, name: str) -> str:
        """The documented path of a key of this table: "listen.port"."""
        return f"{self.where}.{name}" if self.where else name


TABLES: list[Keys] = []

_ABSENT = object()
_SEQUENCES = (list, tuple)
_CONTAINERS = (dict, list, tuple)


class Reader:
    """Typed access to a Document: trouble is recorded as a plain error and the default returned."""

    def __init__(self, document: Document) -> None:
        self.document = document
        self.errors: list[ConfigError] = list(document.errors)
        # the lists and mappings found so far, by path: a lookup starts from its parent (the
        # data is not changed while it is read)
        self._containers: dict[KeyPath, Any] = {}

    def error(self, path: KeyPath, message: str, *, at_key: bool = False) -> None:
        """Record an error at the line of the value at `path` (or of the key naming it)."""
        line = self.document.key_line(path) if at_key else self.document.line(path)
        self.errors.append(ConfigError(self.document.file, line, message))

    def value(self, path: KeyPath) -> Any:
        """The raw value at `path`, or None when absent."""
        found = self._lookup(path)
        return None if found is _ABSENT else found

    def has(self, path: KeyPath) -> bool:
        return self._lookup(path) is not _ABSENT

    def _lookup(self, path: KeyPath) -> Any:
        if not path:
            return self.document.data
        parent_path = path[:-1]
        parent = self._containers.get(parent_path, _ABSENT)
        if parent is _ABSENT:
            parent = self._lookup(parent_path)
            if isinstance(parent, _CONTAINERS):
                self._containers[parent_path] = parent
        part = path[-1]
        if isinstance(parent, dict):
            return parent.get(part, _ABSENT)
        if isinstance(parent, _SEQUENCES) and isinstance(part, int) and part < len(parent):
            return parent[part]
        return _ABSENT

    def _get(
        self,
        path: KeyPath,
        required: bool,
        ok: Callable[[Any], bool],
        expected: str,
        hint: Callable[[Any], str] = lambda value: "",
    ) -> Any:
        """The value at `path` if `ok` accepts it; _ABSENT when it is absent, empty or wrong."""
        return self._check(path, self._lookup(path), required, ok, expected, hint)

    def _check(
        self,
        path: KeyPath,
        found: Any,
        required: bool,
        ok: Callable[[Any], bool],
        expected: str,
        hint: Callable[[Any], str] = lambda value: "",
    ) -> Any:
        """_get for the value `found` at `path`."""
        if found is not None and found is not _ABSENT:
            if ok(found):
                return found
            message = f"{setting_name(path)} must be {expected}, not {describe(found)}"
            self.error(path, message + hint(found))
        elif required and found is None:
            self.error(path, f'setting "{setting_name(path)}" has no value')
        elif required:
            self.error(path[:-1], f'missing required setting "{setting_name(path)}"', at_key=True)
        return _ABSENT

    def string(self, path: KeyPath, default: str = "", *, required: bool = False) -> str:
        return self._string(path, self._lookup(path), default, required)

    def _string(self, path: KeyPath, found: Any, default: str, required: bool) -> str:
        value = self._check(path, found, required, _IS_TEXT, "text", _quote_hint)
        if value is _ABSENT:
            return default
        if required and not value.strip():
            self.error(path, f'setting "{setting_name(path)}" has no value')
        return str(value)

    def integer(self, path: KeyPath, default: int, minimum: int, maximum: int) -> int:
        value = self._get(
            path,
            False,
            lambda v: _is(int)(v) and minimum <= v <= maximum,
            f"a whole number from {minimum} to {maximum}",
        )
        return default if value is _ABSENT else int(value)

    def boolean(self, path: KeyPath, default: bool) -> bool:
        value = self._get(path, False, lambda v: isinstance(v, bool), "true or false")
        return default if value is _ABSENT else bool(value)

    def choice(
        self, path: KeyPath, options: Sequence[str], default: str = "", *, required: bool = False
    ) -> str:
        value = self._get(
            path,
            required,
            lambda v: _IS_TEXT(v) and v in options,
            "one of " + ", ".join(options),
            lambda v: suggestion(v, options) if isinstance(v, str) else "",
        )
        return default if value is _ABSENT else str(value)

    def mapping(self, path: KeyPath, *, required: bool = False) -> dict[str, Any] | None:
        """The mapping at `path`; None when it is absent, empty or not a mapping."""
        value = self._get(path, required, _IS_MAPPING, "a mapping of settings")
        return None if value is _ABSENT else dict(value)

    def sequence(self, path: KeyPath, *, required: bool = False) -> list[Any]:
        """The list at `path`; a required list must not be empty."""
        value = self._get(path, required, _IS_LIST, "a list", _list_hint)
        if value is _ABSENT:
            return []
        if required and not value:
            self.error(path, f"{setting_name(path)} must list at least one item")
        return list(value)

    def strings(self, path: KeyPath, *, required: bool = False) -> list[tuple[KeyPath, str]]:
        """(item path, stripped text) for each item of the list at `path` that is text."""
        found = []
        for index, value in enumerate(self.sequence(path, required=required)):
            item = (*path, index)
            text = self._string(item, value, "", True).strip()
            if text:
                found.append((item, text))
        return found

    def duration(self, path: KeyPath, default: timedelta) -> timedelta:
        """A duration longer than zero, such as "48h", or a whole number of seconds."""
        found = self._lookup(path)
        parsed = _duration(found)  # read once, for the check and the value
        value = self._check(path, found, False, lambda _: parsed is not None, _A_DURATION)
        return default if value is _ABSENT or parsed is None else parsed

    def network(self, path: KeyPath) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
        """A network in CIDR form; a single address means /32 or /128."""
        value = self._get(path, True, _is(str), 'a network such as "10.0.0.0/8"')
        if value is _ABSENT:
            return None
        try:
            return ipaddress.ip_network(value.strip())
        except ValueError:
            pass
        try:
            whole = ipaddress.ip_network(value.strip(), strict=False)
        except ValueError:
            self.error(path, f"{describe(value)} is not an IPv4 or IPv6 network")
        else:
            self.error(path, f'{describe(value)} has host bits set; did you mean "{whole}"?')
        return None

    def networks(self, path: KeyPath) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        found = [self.network((*path, index)) for index in range(len(self.sequence(path)))]
        return tuple(dict.fromkeys(network for network in found if network is not None))

    def unknown_keys(self, mapping_path: KeyPath, *tables: Keys) -> None:
        """Report each key of the mapping at `mapping_path` that none of `tables` has."""
        allowed = [name for table in tables for name in table.names]
        mapping = self._lookup(mapping_path)
        for key in mapping if isinstance(mapping, dict) else ():
            if key not in allowed:
                where = f" in {setting_name(mapping_path)}" if mapping_path else ""
                message = f'unknown setting "{key}"{where}{suggestion(key, allowed)}'
                self.error((*mapping_path, key), message, at_key=True)


def _is(*types: type) -> Callable[[Any], bool]:
    """A check for these types that does not take true/false for a number."""
    return lambda value: isinstance(value, types) and (bool in types or not isinstance(value, bool))


_IS_TEXT, _IS_MAPPING, _IS_LIST = _is(str), _is(dict), _is(list, tuple)


def _duration(value: Any) -> timedelta | None:
    """The duration `value` gives if it is longer than zero, else None."""
    try:
        return parse_duration(value) or None
    except ValueError:
        return None


def _quote_hint(value: Any) -> str:
    return " (put it in quotes)" if _is(int, float)(value) else ""


def _list_hint(value: Any) -> str:
    return f' (write ["{value}"] for a single item)' if isinstance(value, str) else ""


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # cookie, header and method names (RFC 9110)


def url_path(r: Reader, path: KeyPath, default: str | None = None) -> str | None:
    """A path setting: it starts with one "/"."""
    text = r.string(path, default or "", required=r.has(path)).strip()
    if text and (not text.startswith("/") or text.startswith("//")):
        r.error(path, f'{setting_name(path)} must be a path starting with "/", not "{text}"')
    return text or default


def token(r: Reader, path: KeyPath, what: str, default: str = "") -> str:
    """A name setting (a cookie, header or method name: an RFC 9110 token)."""
    text = r.string(path, default, required=r.has(path)).strip()
    if text and not _TOKEN.fullmatch(text):
        r.error(path, f'"{text}" is not {what}')
    return text
