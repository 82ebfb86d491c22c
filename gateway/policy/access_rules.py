"""One access rule of a policy file's `applications:` (paths, methods, access, credentials),
read and checked: patterns that could never match are errors, not rules that silently fail."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.policy.model import Access, AccessRule
from gateway.yaml_document import KeyPath
from gateway.yamlsource import Reader

_RULE_KEYS = ("paths", "methods", "access", "credentials")
_HTTP_METHOD = re.compile(r"[A-Z]+")


def read_rule(reader: Reader, path: KeyPath, file: Path) -> AccessRule | None:
    """The access rule at `path` of a policy file, or None (its errors go to `reader`)."""
    if reader.mapping(path, required=True) is None:
        return None
    before = len(reader.errors)
    reader.unknown_keys(path, _RULE_KEYS)
    patterns: list[str] = []
    for item, pattern in reader.strings((*path, "paths"), required=True):
        problem = _pattern_problem(pattern)
        if problem:
            reader.error(item, f'the path pattern "{pattern}" {problem}')
        patterns.append(pattern)
    access = reader.choice((*path, "access"), tuple(Access), required=True)
    methods: list[str] | None = None
    if reader.value((*path, "methods")) is not None:
        methods = []
        for item, method in reader.strings((*path, "methods"), required=True):
            if not _HTTP_METHOD.fullmatch(method.upper()):
                reader.error(item, f'"{method}" is not an HTTP method such as GET or POST')
            methods.append(method.upper())
    credentials = reader.choice((*path, "credentials"), ("pass", "strip"), "strip")
    if credentials == "pass" and access == Access.DENY:
        reader.error((*path, "credentials"), "a deny rule lets nothing through: remove credentials")
    if len(reader.errors) > before or not access:
        return None
    methods_tuple = tuple(dict.fromkeys(methods)) if methods is not None else None
    line = reader.document.line(path)
    return AccessRule(
        tuple(patterns),
        Access(access),
        methods_tuple,
        str(file),
        line,
        pass_credentials=credentials == "pass",
    )


def _pattern_problem(pattern: str) -> str | None:
    if not pattern.startswith("/"):
        return 'must start with "/"'
    if "?" in pattern or "#" in pattern:
        return "cannot match: rules see the path without the query string"
    if any(segment in (".", "..") for segment in pattern.split("/")):
        return 'cannot match: request paths are compared with "." and ".." resolved'
    return None
