"""Portal mode: the gateway's own login page, checking argon2id hashes from a users file."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml
from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
_DUMMY_PASSWORD = "not a password: keeps unknown users as slow as known ones"  # noqa: S105
# Compared against when the user does not exist, so both paths cost one argon2 verification.
_DUMMY_HASH = _hasher.hash(_DUMMY_PASSWORD)


@dataclass(frozen=True)
class PortalUser:
    name: str
    password_hash: str
    display_name: str
    email: str
    groups: tuple[str, ...]


class UsersFileError(ValueError):
    """The users file cannot be read or has the wrong shape."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def dummy_hash_like(hashes: list[str]) -> str:
    """A hash of nothing with the parameters most of `hashes` use: an unknown user then costs
    what a known one does, even in a file written with other parameters than today's defaults
    (an older version, another tool), where the default-cost dummy would give unknown users
    away by their slower answer."""
    counted: Counter[tuple[int, int, int, int, int]] = Counter()
    for value in hashes:
        try:
            p = extract_parameters(value)
        except InvalidHashError:
            continue
        counted[(p.time_cost, p.memory_cost, p.parallelism, p.hash_len, p.salt_len)] += 1
    if not counted:
        return _DUMMY_HASH
    time_cost, memory_cost, parallelism, hash_len, salt_len = counted.most_common(1)[0][0]
    hasher = PasswordHasher(time_cost, memory_cost, parallelism, hash_len, salt_len)
    return hasher.hash(_DUMMY_PASSWORD)


def _load(path: Path) -> dict[str, PortalUser]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UsersFileError(f"cannot read the users file {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("users"), dict):
        raise UsersFileError(f"{path}: expected a mapping `users:` of user name to settings")
    users: dict[str, PortalUser] = {}
    for name, entry in data["users"].items():
        if not isinstance(entry, dict) or not str(entry.get("password", "")).startswith(
            "$argon2id$"
        ):
            raise UsersFileError(
                f"{path}: user {name!r} needs a `password:` argon2id hash "
                "(make one with `gateway hash-password`)"
            )
        key = str(name).strip().lower()
        groups = entry.get("groups") or []
        users[key] = PortalUser(
            name=key,
            password_hash=str(entry["password"]),
            display_name=str(entry.get("name", name)),
            email=str(entry.get("email", name if "@" in str(name) else "")),
            groups=tuple(str(g) for g in groups) if isinstance(groups, list) else (),
        )
    return users


class UsersFile:
    """The users file, read again whenever it changes on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._users: dict[str, PortalUser] = {}
        self._dummy = _DUMMY_HASH
        self.refresh()

    def refresh(self) -> None:
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise UsersFileError(f"cannot read the users file {self.path}: {exc}") from exc
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            users = _load(self.path)
            self._dummy = dummy_hash_like([user.password_hash for user in users.values()])
            self._users = users
            self._stamp = stamp

    def check(self, username: str, password: str) -> PortalUser | None:
        """The user when the password is right; None otherwise, in the same time either way."""
        self.refresh()
        user = self._users.get(username.strip().lower())
        try:
            _hasher.verify(user.password_hash if user else self._dummy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        return user
