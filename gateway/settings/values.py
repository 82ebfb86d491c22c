"""Readers for the kinds of value several sections share: a file path (relative ones are taken
from the settings file's directory), where a secret is kept (`{env: NAME}` or `{file: path}`,
never the secret itself), a number of seconds, and whether a URL's port can be read. Each reader
records what is wrong on the Reader and returns something usable, so every error is reported at
once.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import SplitResult

from gateway.settings.model import SecretSource
from gateway.yaml_document import KeyPath
from gateway.yamlsource import Keys, Reader
from gateway.yamlsource import setting_name as _name

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SECRET_KEYS = Keys("settings", "<secret>", ("env", "file"))


def read_path(r: Reader, path: KeyPath, base: Path, *, required: bool = False) -> Path | None:
    """A file system path; a relative one is taken from the settings file's directory."""
    value = r.value(path)
    if isinstance(value, os.PathLike):
        return base / Path(value)
    text = r.string(path, required=required or r.has(path)).strip()
    return base / text if text else None


def read_secret(r: Reader, path: KeyPath, base: Path) -> SecretSource:
    if isinstance(r.value(path), str | int | float):  # never echo what may be the secret itself
        where = f"{_name(path)} must say where the secret is kept ({{env: NAME}} or {{file: path}})"
        r.error(path, f"{where}, not hold the secret itself")
        return SecretSource()
    if r.mapping(path, required=True) is None:
        return SecretSource()
    r.unknown_keys(path, _SECRET_KEYS)
    before = len(r.errors)
    env = r.string((*path, "env"), required=r.has((*path, "env"))).strip() or None
    if env is not None and not _ENV_NAME.fullmatch(env):
        r.error((*path, "env"), f'"{env}" is not an environment variable name')
    file = read_path(r, (*path, "file"), base)
    if len(r.errors) == before and env is not None and file is not None:
        r.error(path, f"{_name(path)} takes env: or file:, not both", at_key=True)
    elif len(r.errors) == before and env is None and file is None:
        message = f"{_name(path)} needs env: (a variable name) or file: (a path)"
        r.error(path, message, at_key=True)
    return SecretSource(env, file)


def read_seconds(r: Reader, path: KeyPath, default: float) -> float:
    """A number of seconds (fractions allowed) or a duration such as "5s" or "5m"."""
    value = r.value(path)
    if isinstance(value, float) and value > 0:
        return value
    return r.duration(path, timedelta(seconds=default)).total_seconds()


def port_ok(parts: SplitResult) -> bool:
    try:
        parts.port  # noqa: B018 - reading it checks it
    except ValueError:
        return False
    return True
