"""Reading Cookie headers and Set-Cookie lines without the stdlib's strict cookie parser,
which drops whole headers over one odd cookie that a real application happens to send."""

from __future__ import annotations

import re
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


def mentions(headers: list[str], name: str) -> int:
    """How often `name=` appears in raw Cookie headers however it is separated (`;`, `,` or
    whitespace): frameworks split Cookie headers differently, and a cookie hidden from the
    gateway's parser but seen by the application's would slip past the binding check."""
    pattern = re.compile(rf"(?:^|[\s;,]){re.escape(name)}\s*=")
    return sum(len(pattern.findall(header)) for header in headers)


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


def expire_cookie(name: str, secure: bool, path: str = "/", domain: str | None = None) -> str:
    attrs = f"{name}=; Path={path}; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly"
    if domain:
        attrs += f"; Domain={domain}"
    return attrs + ("; Secure" if secure or name.startswith(("__Host-", "__Secure-")) else "")


def scope_of(raw: str) -> tuple[str, str | None]:
    """The Path and Domain a Set-Cookie line gives its cookie, to expire it with the same."""
    path, domain = "/", None
    for attribute in raw.split(";")[1:]:
        key, _, value = attribute.strip().partition("=")
        if key.strip().lower() == "path" and value.strip().startswith("/"):
            path = value.strip()
        elif key.strip().lower() == "domain" and value.strip():
            domain = value.strip()
    return path, domain


def path_prefixes(path: str, limit: int = 8) -> list[str]:
    """ "/", "/a", "/a/b", ... : every cookie path under which the browser sent a cookie here."""
    parts = [part for part in path.split("/") if part][: limit - 1]
    return ["/"] + ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]
