"""Reading the application's own word on who is signed in, from its `whoami` answer."""

from __future__ import annotations

import html
import json
import zlib
from collections.abc import Mapping

from gateway.intercept_settings import Whoami

MAX_ANSWER = 512 * 1024  # what is read of a whoami answer
NOBODY_STATUSES = frozenset({301, 302, 303, 307, 308, 401, 403})


class WhoamiUnreadable(ValueError):
    """The answer says neither who is signed in nor that nobody is."""


def user_from_answer(
    config: Whoami, status: int, headers: Mapping[str, str], body: bytes
) -> str | None:
    """The signed-in user's name (stripped, lower case), or None when the application says
    nobody is signed in (a redirect to its login, 401, 403, or no user where the name goes)."""
    if status in NOBODY_STATUSES:
        return None
    if not 200 <= status < 300:
        raise WhoamiUnreadable(f"whoami answered {status}")
    if config.header is not None:
        return _name(headers.get(config.header))
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WhoamiUnreadable("the whoami answer is not UTF-8") from exc
    if config.pattern is not None:
        match = config.pattern.search(text)
        if match is None:
            return None
        found = match.group(1) if config.pattern.groups else match.group(0)
        return _name(html.unescape(found) if found is not None else None)
    try:
        data: object = json.loads(text)
    except ValueError as exc:
        raise WhoamiUnreadable(f"the whoami answer is not JSON: {exc}") from exc
    for key in config.json:
        if isinstance(data, dict):
            data = data.get(key)
        elif isinstance(data, list) and key.isdigit() and int(key) < len(data):
            data = data[int(key)]
        else:
            data = None
        if data is None:
            return None
    if data is None or data is False or data == "":
        return None
    if not isinstance(data, str):
        raise WhoamiUnreadable(f"whoami's {'.'.join(config.json)} is not text")
    return _name(data)


def decode_body(coding: str | None, body: bytes) -> bytes:
    """An answer's body without its Content-Encoding (gzip or deflate; others are refused),
    at most MAX_ANSWER bytes of it."""
    coding = (coding or "identity").strip().lower()
    if coding == "identity":
        return body
    if coding in ("gzip", "x-gzip"):
        return _inflate(body, 16 + zlib.MAX_WBITS, coding)
    if coding == "deflate":
        try:
            return _inflate(body, zlib.MAX_WBITS, coding)
        except WhoamiUnreadable:
            return _inflate(body, -zlib.MAX_WBITS, coding)  # raw deflate, as some servers send
    raise WhoamiUnreadable(f"the answer is encoded as {coding!r}, which is not read here")


def _inflate(body: bytes, wbits: int, coding: str) -> bytes:
    try:
        inflater = zlib.decompressobj(wbits)
        out = inflater.decompress(body, MAX_ANSWER + 1)
    except zlib.error as exc:
        raise WhoamiUnreadable(f"the answer's {coding} body cannot be decoded: {exc}") from exc
    if len(out) > MAX_ANSWER:
        raise WhoamiUnreadable(f"the whoami answer is longer than {MAX_ANSWER} bytes")
    return out


def _name(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if len(value) > 320 or any(ord(char) < 32 for char in value):
        raise WhoamiUnreadable("whoami's user name is not a plain name")
    return value.lower()
