"""Credentials besides the session cookie, in intercept mode: without a verified gateway session
the application never receives `Authorization`, `Proxy-Authorization`, nor the headers and query
parameters the settings name (HTTP Basic, API tokens), or one password would be a way in."""

from __future__ import annotations

from urllib.parse import unquote_plus

from multidict import CIMultiDict

from gateway.identity.login_body import field_reading
from gateway.intercept_settings import Intercept

ALWAYS = ("authorization", "proxy-authorization")


def _header_key(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def strip_headers(config: Intercept, headers: CIMultiDict[str]) -> list[str]:
    """Remove the credential headers (under `-` or `_`, any case); returns what was removed."""
    names = {_header_key(name) for name in (*ALWAYS, *config.credentials.headers)}
    removed = [key for key in headers if _header_key(key) in names]
    for key in set(removed):
        headers.popall(key, None)
    return removed


def without_credentials(config: Intercept, query: str) -> str:
    """The raw query string without the credential parameters, under any reading of their name
    (another case, PHP's `_` for `.`, percent-encoded); the rest exactly as sent."""
    names = {field_reading(name) for name in config.credentials.query}
    if not names or not query:
        return query
    kept = []
    for part in query.split("&"):
        key = part.split("=", 1)[0]
        try:
            reading = field_reading(unquote_plus(key, errors="strict"))
        except UnicodeDecodeError:
            reading = field_reading(key)
        if reading not in names and field_reading(key) not in names:
            kept.append(part)
    return "&".join(kept)
