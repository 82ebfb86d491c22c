"""YAML read into plain values that remember their lines, and a reader that collects every error."""

from __future__ import annotations

import difflib
import ipaddress
import re
import unicodedata
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from gateway.durations import parse_duration

KeyPath = tuple[str | int, ...]

_TAG = "tag:yaml.org,2002:"
_CONSTRUCTED = {_TAG + name for name in ("str", "int", "float", "bool", "null")}
_KEPT_AS_TEXT = {_TAG + "timestamp", _TAG + "binary"}
_DURATION_EXAMPLES = '"30m", "48h" or "21d"'
# Bounds on what one file may cost, whatever it holds: aliases can expand a small file
# enormously ("billion laughs"), deep nesting exhausts the parser's recursion.
_MAX_VALUES = 100_000
_MAX_TEXT = 10_000_000  # characters of text values, counted once per use through an alias
_MAX_DEPTH = 64  # configuration files nest a handful of levels
_MAX_BYTES = 1024 * 1024
_MAX_MESSAGE = 400  # characters of one error message
_NUMBER_KINDS = {"int": "a whole number", "float": "a number", "bool": "true or false"}


@dataclass(frozen=True)
class ConfigError:
    file: str
    line: int
    message: str

    def __post_init__(self) -> None:
        # A message quotes values from the file: one line each, of a readable length, whatever
        # the file holds (a newline in a quoted value must not forge a second error line).
        message = "".join(
            repr(c)[1:-1] if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c
            for c in self.message[: _MAX_MESSAGE + 100]
        )
        if len(message) > _MAX_MESSAGE:
            message = message[: _MAX_MESSAGE - 3] + "..."
        object.__setattr__(self, "message", message)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class ConfigInvalid(Exception):
    """One or more configuration files are wrong; `errors` lists every problem found."""

    def __init__(self, errors: Iterable[ConfigError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(error) for error in self.errors))


class _TooDeep(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(f"values are nested more than {_MAX_DEPTH} levels deep")
        self.line = line


class _Loader(yaml.SafeLoader):
    """SafeLoader reading only true/false as booleans (as YAML 1.2 does), so "yes" stays text,
    and refusing nesting deeper than _MAX_DEPTH (its composer recurses once per level)."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _TAG + "bool"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self._depth >= _MAX_DEPTH:
            event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
            raise _TooDeep(event.start_mark.line + 1 if event.start_mark is not None else 1)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_Loader.add_implicit_resolver(
    _TAG + "bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


@dataclass
class Document:
    """Plain data from one file; `lines` and `key_lines` map a path to the 1-based line."""

    file: str
    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)
    key_lines: dict[KeyPath, int] = field(default_factory=dict)
    errors: list[ConfigError] = field(default_factory=list)

    def line(self, path: KeyPath) -> int:
        """The line of the value at `path`, else of its nearest known ancestor; 0 if none."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return 0

    def key_line(self, path: KeyPath) -> int:
        """The line of the key naming `path`, else the line of its value."""
        return self.key_lines.get(path) or self.line(path)


class _TooBig(Exception):
    pass


class _TooLong(Exception):
    pass


class _Builder:
    def __init__(self, document: Document) -> None:
        self.document = document
        self._constructor = yaml.constructor.SafeConstructor()
        self._open: set[int] = set()
        self._budget = _MAX_VALUES
        self._text_budget = _MAX_TEXT
        self._depth = 0

    def error(self, node: yaml.Node, message: str) -> None:
        self.document.errors.append(
            ConfigError(self.document.file, node.start_mark.line + 1, message)
        )

    def build(self, node: yaml.Node, path: KeyPath) -> Any:
        self._budget -= 1
        if self._budget < 0:
            raise _TooBig
        self.document.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.ScalarNode):
            self._text_budget -= len(node.value)
            if self._text_budget < 0:
                raise _TooLong
            if node.tag in _CONSTRUCTED:
                return self._scalar(node)
            if node.tag not in _KEPT_AS_TEXT:
                self.error(node, f'the YAML tag "{describe(node.tag)[1:-1]}" is not supported here')
            return node.value
        if id(node) in self._open:
            self.error(node, "an alias refers to a value that contains it")
            return None
        if self._depth >= _MAX_DEPTH:  # aliases inside aliases nest deeper than the text shows
            self.error(node, f"values are nested more than {_MAX_DEPTH} levels deep")
            return None
        self._open.add(id(node))
        self._depth += 1
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
            return self._mapping(node, path)
        finally:
            self._depth -= 1
            self._open.discard(id(node))

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        """A number, true/false, null or text; a value its tag cannot read is an error."""
        try:
            value = self._constructor.construct_object(node)
        except (ValueError, KeyError, OverflowError, yaml.YAMLError):
            kind = _NUMBER_KINDS.get(node.tag.removeprefix(_TAG), node.tag.removeprefix(_TAG))
            size = " (it has too many digits)" if len(node.value) > 100 else ""
            self.error(node, f"{describe(node.value)} cannot be read as {kind}{size}")
            return None
        if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 63:
            self.error(node, f"the number {describe(node.value)} is too large for any setting")
            return None
        return value

    def _mapping(self, node: yaml.Node, path: KeyPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        pairs: list[tuple[yaml.Node, yaml.Node]] = node.value
        merges = [value for key, value in pairs if key.tag == _TAG + "merge"]
        for merged in reversed(merges):  # "<<: *base": earlier sources win, own keys win over all
            sources = merged.value if isinstance(merged, yaml.SequenceNode) else [merged]
            for source in reversed(sources):
                if isinstance(source, yaml.MappingNode):
                    merged_values = self.build(source, path)
                    if isinstance(merged_values, dict):  # None: refused above, with its error
                        result.update(merged_values)
                else:
                    self.error(source, '"<<" must refer to a mapping')
        self.document.lines[path] = node.start_mark.line + 1
        own: dict[str, int] = {}
        for key_node, value_node in pairs:
            if key_node.tag == _TAG + "merge":
                continue
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                self.error(key_node, "a key must be plain text, not a list or a mapping")
                continue
            key = str(key_node.value)
            if key in own:
                self.error(key_node, f'duplicate key "{key}" (first given on line {own[key]})')
                continue
            own[key] = line
            self.document.key_lines[(*path, key)] = line
            result[key] = self.build(value_node, (*path, key))
        return result


def parse_yaml(text: str, file: str) -> Document:
    """Parse one YAML document; syntax and structure problems land in `Document.errors`."""
    document = Document(file, None)
    try:
        node = yaml.compose(text, Loader=_Loader)
    except _TooDeep as exc:
        document.errors.append(ConfigError(file, exc.line, str(exc)))
        return document
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else 1
        problem = exc.problem or exc.context or "the file cannot be parsed"
        document.errors.append(ConfigError(file, line, f"YAML syntax error: {problem}"))
        return document
    except yaml.YAMLError as exc:
        document.errors.append(ConfigError(file, 1, f"YAML syntax error: {exc}"))
        return document
    if node is None:
        document.lines[()] = 1  # an empty document: file-wide errors point at line 1
        return document
    try:
        document.data = _Builder(document).build(node, ())
    except _TooBig:
        message = f"the file expands to more than {_MAX_VALUES} values through its aliases"
    except _TooLong:
        message = f"the file expands to more than {_MAX_TEXT} characters through its aliases"
    else:
        return document
    document.errors.append(ConfigError(file, 1, message))
    return document


def load_yaml_file(path: Path) -> Document:
    """Read and parse a file; an unreadable file becomes one error on line 0."""
    try:
        with path.open("rb") as stream:
            content = stream.read(_MAX_BYTES + 1)
        if len(content) > _MAX_BYTES:
            message = f"the file is larger than {_MAX_BYTES // 1024} KiB; no configuration is"
        else:
            return parse_yaml(content.decode("utf-8"), str(path))
    except UnicodeDecodeError:
        message = "the file is not UTF-8 text"
    except OSError as exc:
        message = f"cannot read the file: {exc.strerror or exc}"
    return Document(str(path), None, errors=[ConfigError(str(path), 0, message)])


def setting_name(path: KeyPath) -> str:
    """("applications", "wiki", "hosts", 0) -> "applications.wiki.hosts[0]"."""
    name = ""
    for part in path:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else part)
    return name


def describe(value: Any) -> str:
    """A value as a person would recognise it in their file."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "empty"
    if isinstance(value, str):
        return f'"{value}"' if len(value) <= 60 else f'"{value[:57]}..."'
    if isinstance(value, int) and value.bit_length() > 63:
        return "a very large number"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def suggestion(word: str, choices: Iterable[str]) -> str:
    """' (did you mean "x"?)' when a choice is close to `word` or starts with it, else ''."""
    options = {choice.lower(): choice for choice in choices}
    close = difflib.get_close_matches(word.lower(), list(options), n=1, cutoff=0.6)
    close = (
        close
        or [option for option in options if len(word) >= 3 and option.startswith(word.lower())][:1]
    )
    return f' (did you mean "{options[close[0]]}"?)' if close else ""


_ABSENT = object()


class Reader:
    """Typed access to a Document: trouble is recorded as a plain error and the default returned."""

    def __init__(self, document: Document) -> None:
        self.document = document
        self.errors: list[ConfigError] = list(document.errors)

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
        current = self.document.data
        for part in path:
            if isinstance(current, dict) and part in current:
                current = current[part]
                continue
            if isinstance(current, list | tuple) and isinstance(part, int) and part < len(current):
                current = current[part]
                continue
            return _ABSENT
        return current

    def _get(
        self,
        path: KeyPath,
        required: bool,
        ok: Callable[[Any], bool],
        expected: str,
        hint: Callable[[Any], str] = lambda value: "",
    ) -> Any:
        """The value at `path` if `ok` accepts it; _ABSENT when it is absent, empty or wrong."""
        found = self._lookup(path)
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
        value = self._get(path, required, _is(str), "text", _quote_hint)
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
            lambda v: _is(str)(v) and v in options,
            "one of " + ", ".join(options),
            lambda v: suggestion(v, options) if isinstance(v, str) else "",
        )
        return default if value is _ABSENT else str(value)

    def mapping(self, path: KeyPath, *, required: bool = False) -> dict[str, Any] | None:
        """The mapping at `path`; None when it is absent, empty or not a mapping."""
        value = self._get(path, required, _is(dict), "a mapping of settings")
        return None if value is _ABSENT else dict(value)

    def sequence(self, path: KeyPath, *, required: bool = False) -> list[Any]:
        """The list at `path`; a required list must not be empty."""
        value = self._get(path, required, _is(list, tuple), "a list", _list_hint)
        if value is _ABSENT:
            return []
        if required and not value:
            self.error(path, f"{setting_name(path)} must list at least one item")
        return list(value)

    def strings(self, path: KeyPath, *, required: bool = False) -> list[tuple[KeyPath, str]]:
        """(item path, stripped text) for each item of the list at `path` that is text."""
        items = [(*path, index) for index in range(len(self.sequence(path, required=required)))]
        texts = [(item, self.string(item, required=True).strip()) for item in items]
        return [(item, text) for item, text in texts if text]

    def duration(self, path: KeyPath, default: timedelta) -> timedelta:
        """A duration longer than zero, such as "48h", or a whole number of seconds."""
        value = self._get(path, False, _is_duration, f"a duration such as {_DURATION_EXAMPLES}")
        return default if value is _ABSENT else parse_duration(value)

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

    def unknown_keys(self, mapping_path: KeyPath, allowed: Collection[str]) -> None:
        """Report each key of the mapping at `mapping_path` that is not in `allowed`."""
        mapping = self._lookup(mapping_path)
        where = f" in {setting_name(mapping_path)}" if mapping_path else ""
        for key in mapping if isinstance(mapping, dict) else ():
            if key not in allowed:
                message = f'unknown setting "{key}"{where}{suggestion(key, allowed)}'
                self.error((*mapping_path, key), message, at_key=True)


def _is(*types: type) -> Callable[[Any], bool]:
    """A check for these types that does not take true/false for a number."""
    return lambda value: isinstance(value, types) and (bool in types or not isinstance(value, bool))


def _is_duration(value: Any) -> bool:
    try:
        return bool(parse_duration(value))
    except ValueError:
        return False


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
