"""Intercept mode: the application keeps its login form; the gateway recognises a successful
login by its answer and holds the application's session cookies until the second factor."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from gateway.cookies import SetCookie, parse_set_cookie
from gateway.settings import Intercept, LoginRequest

MAX_LOGIN_BODY = 256 * 1024


def is_login_request(config: LoginRequest, method: str, path: str) -> bool:
    return method.upper() == config.method.upper() and path.rstrip("/") == config.path.rstrip("/")


class UnreadableLogin(ValueError):
    """The login request does not name exactly one user the gateway can read. It is refused
    before anything reaches the application: what the gateway cannot read, it cannot vouch for."""


def _params(content_type: str) -> tuple[str, dict[str, str]]:
    kind, *rest = content_type.split(";")
    params = {}
    for param in rest:
        key, _, value = param.strip().partition("=")
        params[key.strip().lower()] = value.strip().strip('"')
    return kind.strip().lower(), params


def username_from_body(content_type: str, body: bytes, field: str) -> str:
    """The one user name in a form or JSON login body, decoded with the charset it declares."""
    kind, params = _params(content_type)
    try:
        text = body.decode(params.get("charset") or "utf-8")
    except (LookupError, UnicodeDecodeError) as exc:
        raise UnreadableLogin(f"the body cannot be decoded: {exc}") from exc
    values: list[object]
    if kind in ("application/x-www-form-urlencoded", ""):
        encoding = params.get("charset") or "utf-8"
        try:
            pairs = parse_qsl(text, keep_blank_values=True, encoding=encoding, errors="strict")
        except (LookupError, UnicodeDecodeError, ValueError) as exc:
            raise UnreadableLogin(f"the form cannot be decoded: {exc}") from exc
        values = [value for key, value in pairs if key == field]
    elif kind == "application/json" or kind.endswith("+json"):
        try:
            data = json.loads(text, object_pairs_hook=_no_duplicate_keys)
        except ValueError as exc:
            raise UnreadableLogin(f"the JSON body cannot be read: {exc}") from exc
        values = [data[field]] if isinstance(data, dict) and field in data else []
    elif kind == "multipart/form-data":
        values = _multipart_values(params.get("boundary", ""), text, field)
    else:
        raise UnreadableLogin(f"a login sent as {kind!r} cannot be read")
    if len(values) != 1:
        raise UnreadableLogin(f"the field {field!r} appears {len(values)} times, not once")
    value = values[0]
    if not isinstance(value, str) or not 0 < len(value.strip()) <= 320:
        raise UnreadableLogin(f"the field {field!r} does not hold a user name")
    return value.strip()


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    keys = [key for key, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("a key appears twice")
    return dict(pairs)


def _multipart_values(boundary: str, text: str, field: str) -> list[object]:
    if not boundary:
        raise UnreadableLogin("the multipart body has no boundary")
    values: list[object] = []
    for part in text.split("--" + boundary)[1:]:
        head, sep, content = part.partition("\r\n\r\n")
        if sep and re.search(rf'(?i)\bname="?{re.escape(field)}"?(;|\s|$)', head):
            values.append(content.removesuffix("\r\n"))
    return values


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
