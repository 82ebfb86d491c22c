"""Which entries of the policy directory are policy files: regular files inside it with a
`.yaml` or `.yml` name (not starting with "." or "_"). Any other entry with such a name is an
error with its path, never skipped in silence and never opened (a FIFO would block)."""

from __future__ import annotations

import stat
from pathlib import Path

from gateway.config_errors import ConfigError


def policy_files(directory: Path) -> list[Path]:
    """The policy files of `directory`, sorted by name; raises OSError if it cannot be listed."""
    return policy_entries(directory)[0]


def policy_entries(directory: Path) -> tuple[list[Path], list[ConfigError]]:
    """The policy files of `directory`, sorted by name, and an error for each entry with a
    policy file's name that is not a regular file inside it (a FIFO, a device, a directory, a
    symbolic link leading out of the directory or nowhere): never skipped in silence, and never
    opened (a FIFO would block the reader). Raises OSError if the directory cannot be listed."""
    names = sorted(path.name for path in directory.iterdir() if path.suffix in (".yaml", ".yml"))
    files: list[Path] = []
    errors: list[ConfigError] = []
    inside = directory.resolve()
    for name in names:
        if name.startswith((".", "_")):
            continue
        path = directory / name
        problem = _not_a_policy_file(path, inside)
        if problem is None:
            files.append(path)
        else:
            errors.append(ConfigError(str(path), 0, problem))
    return files, errors


def _not_a_policy_file(path: Path, inside: Path) -> str | None:
    try:
        if path.is_symlink():
            target = path.resolve(strict=True)
            if not target.is_relative_to(inside):
                return f"is a symbolic link leading out of the policy directory (to {target})"
        mode = path.stat().st_mode
    except (OSError, RuntimeError) as exc:
        return f"cannot be read: {getattr(exc, 'strerror', None) or exc}"
    if stat.S_ISREG(mode):
        return None
    kind = (
        "a directory"
        if stat.S_ISDIR(mode)
        else "a FIFO"
        if stat.S_ISFIFO(mode)
        else "a device"
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
        else "a socket"
        if stat.S_ISSOCK(mode)
        else "not a regular file"
    )
    return f"is {kind}, not a policy file: remove it or rename it"
