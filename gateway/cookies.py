"""Reading Cookie headers and Set-Cookie lines without the stdlib's strict cookie parser,
which drops whole headers over one odd cookie that a real application happens to send."""

from __future__ import annotations

import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime


def parse_cookie_header(header: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name:
            pairs.append((name.strip(), value.strip()))
    return pairs


def build_cookie_header(pairs: list[tuple[str, str]]) -> str:
    return "; ".join(f"{name}={value}" for name, value in pairs)


@dataclass(frozen=True)
class SetCookie:
    name: str
    value: str
    deleting: bool  # the application is removing the cookie
    raw: str


def parse_set_cookie(raw: str, now: float | None = None) -> SetCookie | None:
    first, _, attributes = raw.partition(";")
    name, sep, value = first.strip().partition("=")
    if not sep or not name.strip():
        return None
    value = value.strip()
    deleting = value in ("", '""')
    for attribute in attributes.split(";"):
        key, _, arg = attribute.strip().partition("=")
        key = key.strip().lower()
        if key == "max-age":
            try:
                deleting = deleting or int(arg.strip()) <= 0
            except ValueError:
                continue
        elif key == "expires":
            try:
                expires = parsedate_to_datetime(arg.strip()).timestamp()
            except (TypeError, ValueError, IndexError):
                continue
            deleting = deleting or expires <= (time.time() if now is None else now)
    return SetCookie(name=name.strip(), value=value, deleting=deleting, raw=raw)


def expire_cookie(name: str, secure: bool, path: str = "/") -> str:
    attrs = f"{name}=; Path={path}; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly"
    return attrs + ("; Secure" if secure or name.startswith(("__Host-", "__Secure-")) else "")
