"""YAML read safely into plain values that remember their lines: a Document maps each key path
to the line of its value and of its key, and holds the file's syntax and structure errors.
Only plain data is built (text, numbers, true/false, null, lists, mappings; "yes" stays text),
and the cost of one file is bounded whatever it holds: its size, values and text through aliases,
and nesting depth.

Two ways in, one result: most files are read in one pass over libyaml's events (_read_events);
anything else (anchors, aliases, tags, merge keys, errors, files at a bound) is composed into
nodes and built by _Builder (_read_nodes), which words every error and bound. A little past 400
lines because both stay here, side by side: they must give the same Document, value for value
and line for line (tests/test_yaml_document_speed_paths.py compares them)."""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gateway.config_errors import ConfigError

KeyPath = tuple[str | int, ...]

_TAG = "tag:yaml.org,2002:"
_CONSTRUCTED = {_TAG + name for name in ("str", "int", "float", "bool", "null")}
_KEPT_AS_TEXT = {_TAG + "timestamp", _TAG + "binary"}
# Bounds on what one file may cost, whatever it holds: aliases can expand a small file
# enormously ("billion laughs"), deep nesting exhausts the parser's recursion.
_MAX_VALUES = 100_000
_MAX_TEXT = 10_000_000  # characters of text values, counted once per use through an alias
_MAX_DEPTH = 64  # configuration files nest a handful of levels
_MAX_BYTES = 1024 * 1024
_NUMBER_KINDS = {"int": "a whole number", "float": "a number", "bool": "true or false"}


class _TooDeep(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(f"values are nested more than {_MAX_DEPTH} levels deep")
        self.line = line


class _DepthLimit:
    """Refuse nesting deeper than _MAX_DEPTH (PyYAML's composer recurses once per level)."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self._depth >= _MAX_DEPTH:
            event: yaml.Event = self.peek_event()  # type: ignore[attr-defined]
            raise _TooDeep(event.start_mark.line + 1 if event.start_mark is not None else 1)
        self._depth += 1
        try:
            node: yaml.Node | None = super().compose_node(parent, index)  # type: ignore[misc]
            return node
        finally:
            self._depth -= 1


class _Loader(_DepthLimit, yaml.SafeLoader):
    """SafeLoader reading only true/false as booleans (as YAML 1.2 does), so "yes" stays text,
    and refusing nesting deeper than _MAX_DEPTH."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _TAG + "bool"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


_Loader.add_implicit_resolver(
    _TAG + "bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)

if yaml.__with_libyaml__:
    from yaml.composer import Composer
    from yaml.cyaml import CParser  # type: ignore[attr-defined]
    from yaml.resolver import Resolver

    class _FastLoader(_DepthLimit, Composer, CParser, yaml.constructor.SafeConstructor, Resolver):
        """_Loader's nodes, its resolvers and its depth limit, from libyaml's events: the same
        Python composer, several times faster. A document libyaml refuses is read again by
        _Loader, so every error and its line are PyYAML's own."""

        yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            yaml.constructor.SafeConstructor.__init__(self)
            Resolver.__init__(self)
            Composer.__init__(self)


def _compose(text: str) -> yaml.Node | None:
    if yaml.__with_libyaml__:
        try:
            return yaml.compose(text, Loader=_FastLoader)  # type: ignore[arg-type]
        except (yaml.YAMLError, _TooDeep):
            pass  # read again below: the error as PyYAML words it
    return yaml.compose(text, Loader=_Loader)


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
        except (ValueError, KeyError, IndexError, OverflowError, yaml.YAMLError):
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
    if yaml.__with_libyaml__:
        try:
            return _read_events(text, file)
        except (yaml.YAMLError, _Unusual):
            pass  # read again through nodes, which word every error and bound
    return _read_nodes(text, file)


def _read_nodes(text: str, file: str) -> Document:
    """parse_yaml through composed nodes and _Builder: every file, every error."""
    document = Document(file, None)
    try:
        node = _compose(text)
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


class _Unusual(Exception):
    """What _read_events leaves to _read_nodes: anything but plain data that loads cleanly."""


_SCALARS = {
    first: tuple(resolvers)
    for first, resolvers in _Loader.yaml_implicit_resolvers.items()
    if first is not None
}
_ANY_FIRST = tuple(_Loader.yaml_implicit_resolvers.get(None, ()))
_NULL = _TAG + "null"


def _read_events(text: str, file: str) -> Document:
    """The common case of parse_yaml, in one pass over libyaml's events with no nodes: plain
    data with no anchor, alias, tag, merge key, duplicate key or bad value, within every bound
    (the nesting is followed on a list, not by recursion). Anything else raises _Unusual, and
    _read_nodes reads the file again, so the Document is the same either way."""
    parser = CParser(text)
    try:
        return _walk_events(parser.get_event, Document(file, None))
    finally:
        parser.dispose()


def _walk_events(next_event: Any, document: Document) -> Document:
    lines, key_lines = document.lines, document.key_lines
    budget, text_budget = _MAX_VALUES, _MAX_TEXT
    scalar_event, mapping_start, alias_event = (
        yaml.ScalarEvent,
        yaml.MappingStartEvent,
        yaml.AliasEvent,
    )
    ends = (yaml.MappingEndEvent, yaml.SequenceEndEvent)
    resolvers, any_first = _SCALARS, _ANY_FIRST
    next_event()  # StreamStartEvent
    if type(next_event()) is yaml.StreamEndEvent:  # else DocumentStartEvent
        lines[()] = 1
        return document
    # the innermost open list or dict (None outside the top one), its path, whether it is a
    # dict and the key read there and waiting for its value; `outer`, the same of each level
    # around it (the nesting is followed on this list, not by recursion)
    parent: Any = None
    parent_path: KeyPath = ()
    in_mapping = False
    key: str | None = None
    outer: list[tuple[Any, KeyPath, bool]] = []
    while True:
        event = next_event()
        kind = type(event)
        if kind in ends:
            parent, parent_path, in_mapping = outer.pop()
            key = None
            if parent is None:
                break
            continue
        if kind is alias_event or event.anchor is not None or event.tag is not None:
            raise _Unusual
        if len(outer) >= _MAX_DEPTH:
            raise _Unusual
        line = event.start_mark.line + 1
        if in_mapping:
            if key is None:  # this event is a key
                if kind is not scalar_event:
                    raise _Unusual
                key = event.value
                if key in parent or (key == "<<" and event.implicit[0]):  # or a merge key
                    raise _Unusual
                key_lines[(*parent_path, key)] = line
                continue
            path = (*parent_path, key)
        elif parent is not None:
            path = (*parent_path, len(parent))
        else:
            path = ()
        budget -= 1
        if budget < 0:
            raise _Unusual
        lines[path] = line
        if kind is scalar_event:
            value = event.value
            text_budget -= len(value)
            if text_budget < 0:
                raise _Unusual
            if event.implicit[0]:  # plain: its tag as _Loader's resolver gives it, else text
                for tag, regexp in resolvers.get(value[:1], ()) + any_first:
                    if regexp.match(value):
                        value = _plain(tag, event)
                        break
        else:
            value = {} if kind is mapping_start else []
        if in_mapping:
            parent[key] = value
            key = None
        elif parent is not None:
            parent.append(value)
        else:
            document.data = value
            if kind is scalar_event:
                break
        if kind is not scalar_event:
            outer.append((parent, parent_path, in_mapping))
            parent, parent_path, in_mapping = value, path, kind is mapping_start
    if type(next_event()) is not yaml.DocumentEndEvent:
        raise _Unusual
    if type(next_event()) is not yaml.StreamEndEvent:
        raise _Unusual  # more than one document
    return document


_CONSTRUCTOR = yaml.constructor.SafeConstructor()  # its scalar readers keep no state


def _plain(tag: str, event: Any) -> Any:
    """A plain scalar whose tag is not text, as _Builder._scalar reads it; _Unusual where that
    is an error."""
    if tag == _NULL:
        return None
    if tag in _KEPT_AS_TEXT:
        return event.value
    if tag not in _CONSTRUCTED:
        raise _Unusual
    node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
    try:
        value = _CONSTRUCTOR.yaml_constructors[tag](_CONSTRUCTOR, node)
    except (ValueError, KeyError, IndexError, OverflowError, yaml.YAMLError):
        raise _Unusual from None
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 63:
        raise _Unusual
    return value


# a file's content and its Document, as a DocumentCache keeps them (see load_yaml_file)
DocumentCache = dict[str, tuple[bytes, Document]]


def load_yaml_file(path: Path, cache: DocumentCache | None = None) -> Document:
    """Read and parse a file; an unreadable file becomes one error on line 0.

    `cache`: the Documents of earlier reads by path, each with the content it was parsed from;
    a file whose content is byte for byte the same is not parsed again (a Document is a pure
    function of the file's name and content, and its readers do not change it)."""
    try:
        content = _read_regular(path)
        if content is None:
            message = "it is not a regular file (a FIFO or device would block or never end)"
        elif len(content) > _MAX_BYTES:
            message = f"the file is larger than {_MAX_BYTES // 1024} KiB; no configuration is"
        else:
            known = cache.get(str(path)) if cache is not None else None
            if known is not None and known[0] == content:
                return known[1]
            document = parse_yaml(content.decode("utf-8"), str(path))
            if cache is not None:
                cache[str(path)] = (content, document)
            return document
    except UnicodeDecodeError:
        message = "the file is not UTF-8 text"
    except OSError as exc:
        message = f"cannot read the file: {exc.strerror or exc}"
    return Document(str(path), None, errors=[ConfigError(str(path), 0, message)])


def _read_regular(path: Path) -> bytes | None:
    """Up to _MAX_BYTES + 1 bytes of `path`, or None when it is no regular file. Opened without
    blocking and checked once open: a FIFO put in a file's place after its directory was listed
    would otherwise hold the reading thread (and a policy reload) for ever."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as stream:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return stream.read(_MAX_BYTES + 1)


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
