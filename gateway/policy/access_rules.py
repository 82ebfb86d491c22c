"""One access rule of a policy file's `applications:` (paths, methods, access, credentials),
read and checked: patterns that could never match are errors, not rules that silently fail."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from gateway.durations import format_duration
from gateway.policy.model import MIN_REAUTHENTICATE_AFTER, Access, AccessRule
from gateway.yaml_document import KeyPath
from gateway.yamlsource import Keys, Reader

_RULE_KEYS = Keys(
    "access",
    "applications.<application>[]",
    ("paths", "methods", "access", "credentials", "reauthenticate_after"),
)
_HTTP_METHOD = re.compile(r"[A-Z]+")
_ACCESS = tuple(Access)
_STEP_UP = "reauthenticate_after"


def read_rule(reader: Reader, path: KeyPath, file: Path) -> AccessRule | None:
    """The access rule at `path` of a policy file, or None (its errors go to `reader`)."""
    rule = reader.mapping(path, required=True)
    if rule is None:
        return None
    before = len(reader.errors)
    reader.unknown_keys(path, _RULE_KEYS)
    patterns: list[str] = []
    for item, pattern in reader.strings((*path, "paths"), required=True):
        problem = _pattern_problem(pattern)
        if problem:
            reader.error(item, f'the path pattern "{pattern}" {problem}')
        patterns.append(pattern)
    access = reader.choice((*path, "access"), _ACCESS, required=True)
    methods: list[str] | None = None
    if rule.get("methods") is not None:
        methods = []
        for item, method in reader.strings((*path, "methods"), required=True):
            if not _HTTP_METHOD.fullmatch(method.upper()):
                reader.error(item, f'"{method}" is not an HTTP method such as GET or POST')
            methods.append(method.upper())
    credentials = reader.choice((*path, "credentials"), ("pass", "strip"), "strip")
    if credentials == "pass" and access == Access.DENY:
        reader.error((*path, "credentials"), "a deny rule lets nothing through: remove credentials")
    reauthenticate_after = _step_up(reader, path, access) if _STEP_UP in rule else None
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
        reauthenticate_after=reauthenticate_after,
    )


def _step_up(reader: Reader, path: KeyPath, access: str) -> timedelta | None:
    """`reauthenticate_after`, which the rule has: how old a verified session's second factor
    may be on these paths (a two_factor rule's, at least a minute), or None."""
    key = (*path, _STEP_UP)
    errors = len(reader.errors)
    bound = reader.duration(key, MIN_REAUTHENTICATE_AFTER)
    if len(reader.errors) > errors:
        return None
    if access and access != Access.TWO_FACTOR:
        reader.error(
            key,
            f"reauthenticate_after asks again for a second factor: only a two_factor rule has "
            f"one, not this {access} rule",
            at_key=True,
        )
        return None
    if bound < MIN_REAUTHENTICATE_AFTER:
        reader.error(
            key,
            f"reauthenticate_after ({format_duration(bound)}) must be at least 1m: a shorter "
            "time would ask again before the challenge is done",
        )
        return None
    return bound


def _pattern_problem(pattern: str) -> str | None:
    if not pattern.startswith("/"):
        return 'must start with "/"'
    if "?" in pattern or "#" in pattern:
        return "cannot match: rules see the path without the query string"
    if any(segment in (".", "..") for segment in pattern.split("/")):
        return 'cannot match: request paths are compared with "." and ".." resolved'
    return None
