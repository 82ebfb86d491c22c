"""Intercept mode: the application keeps its login form; the gateway recognises a successful
login by its answer and holds the application's session cookies until the second factor."""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from gateway.cookies import SetCookie, parse_set_cookie
from gateway.settings import Intercept, LoginRequest

MAX_LOGIN_BODY = 256 * 1024


def is_login_request(config: LoginRequest, method: str, path: str) -> bool:
    return method.upper() == config.method.upper() and path.rstrip("/") == config.path.rstrip("/")


def username_from_body(content_type: str, body: bytes, field: str) -> str | None:
    """The user name the person typed, from a form or a JSON body."""
    kind = content_type.split(";", 1)[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    value: object = None
    if kind == "application/x-www-form-urlencoded" or not kind:
        value = dict(parse_qsl(text, keep_blank_values=True)).get(field)
    elif kind == "application/json" or kind.endswith("+json"):
        try:
            data = json.loads(text)
        except ValueError:
            return None
        value = data.get(field) if isinstance(data, dict) else None
    elif kind == "multipart/form-data":
        value = _multipart_field(content_type, text, field)
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value if 0 < len(value) <= 320 else None


def _multipart_field(content_type: str, text: str, field: str) -> str | None:
    boundary = ""
    for param in content_type.split(";")[1:]:
        key, _, val = param.strip().partition("=")
        if key.lower() == "boundary":
            boundary = val.strip('"')
    if not boundary:
        return None
    for part in text.split("--" + boundary):
        head, sep, content = part.partition("\r\n\r\n")
        if sep and f'name="{field}"' in head:
            return content.rstrip("\r\n")
    return None


@dataclass(frozen=True)
class SplitCookies:
    session: list[SetCookie]  # the application's session cookies: held by the gateway
    other: list[str]  # everything else passes through


def split_set_cookies(config: Intercept, raw_headers: list[str]) -> SplitCookies:
    names = set(config.session_cookies)
    session: list[SetCookie] = []
    other: list[str] = []
    for raw in raw_headers:
        parsed = parse_set_cookie(raw)
        if parsed is not None and parsed.name in names:
            session.append(parsed)
        else:
            other.append(raw)
    return SplitCookies(session=session, other=other)


def login_succeeded(
    config: LoginRequest, status: int, location: str | None, session_cookies: list[SetCookie]
) -> bool:
    if config.success_statuses and status not in config.success_statuses:
        return False
    if status >= 400:
        return False
    if config.success_requires_cookie and not any(not c.deleting for c in session_cookies):
        return False
    if location and config.failure_locations:
        path = urlsplit(location).path or "/"
        if any(path.startswith(prefix) for prefix in config.failure_locations):
            return False
    return True
