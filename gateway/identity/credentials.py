"""Credentials besides the session cookie, in intercept mode. `Authorization`,
`Proxy-Authorization`, and the headers and query parameters the settings name (HTTP Basic, API
tokens) reach the application only when they are a token bound to the verified gateway session
(a bearer token a login answer handed out, `login.token`), or when an access rule passes them:
otherwise one password, or a stolen token used from anyone's verified session, would be a way
in."""

from __future__ import annotations

import functools
from collections.abc import Collection
from urllib.parse import unquote, unquote_plus

from multidict import CIMultiDict

from gateway.cookies import build_cookie_header, parse_cookie_header
from gateway.identity.login_body import field_reading
from gateway.intercept_settings import Intercept
from gateway.proxy.headers import header_key
from gateway.sessions import cookie_digest

ALWAYS = ("authorization", "proxy-authorization")


_header_key = header_key  # "_" and "." read as "-", any case, as applications read them


@functools.lru_cache(maxsize=64)  # one set per application's settings, not one per request
def _header_names(named: tuple[str, ...]) -> frozenset[str]:
    return frozenset(_header_key(name) for name in (*ALWAYS, *named))


def _bound(value: str, tokens: Collection[str]) -> bool:
    value = value.strip()
    scheme, _, rest = value.partition(" ")
    if scheme.lower() == "bearer":
        value = rest.strip()
    return bool(tokens) and cookie_digest(value) in tokens


def strip_headers(
    config: Intercept, headers: CIMultiDict[str], tokens: Collection[str] = ()
) -> list[str]:
    """Remove the credential headers (under `-` or `_`, any case) that are not a bound token;
    returns the names removed. Proxy-Authorization is never anyone's token here."""
    names = _header_names(config.credentials.headers)
    removed: list[str] = []
    for key in list(dict.fromkeys(headers)):
        if _header_key(key) not in names:
            continue
        values = headers.getall(key)
        keep = (
            _header_key(key) != "proxy-authorization"
            and len(values) == 1
            and _bound(values[0], tokens)
        )
        if not keep:
            headers.popall(key, None)
            removed.append(key)
    return removed


@functools.lru_cache(maxsize=64)  # one set per application's settings, not one per request
def credential_field_readings(config: Intercept) -> frozenset[str]:
    """The readings of the credential fields, the login's user-name field among them."""
    names = {field_reading(name) for name in config.credentials.fields}
    if names and config.login.username_field is not None:
        names.add(field_reading(config.login.username_field))
    return frozenset(names)


def strip_cookies(config: Intercept, headers: CIMultiDict[str]) -> None:
    """Remove cookies named like a credential field: PHP without a php.ini reads cookies into
    $_REQUEST too (variables_order EGPCS), and an application signing in from `u` and `p`
    there would sign in from cookies of those names."""
    names = credential_field_readings(config)
    if not names or "Cookie" not in headers:
        return
    pairs = [pair for raw in headers.getall("Cookie") for pair in parse_cookie_header(raw)]
    kept = [(name, value) for name, value in pairs if field_reading(name) not in names]
    if len(kept) != len(pairs):
        headers.popall("Cookie", None)
        if kept:
            headers["Cookie"] = build_cookie_header(kept)


def without_credentials(config: Intercept, query: str, tokens: Collection[str] = ()) -> str:
    """The raw query string without the credential parameters that are not a bound token, under
    any reading of their name (another case, PHP's `_` for `.`, percent-encoded); the rest
    exactly as sent."""
    names = {field_reading(name) for name in config.credentials.query}
    if not names or not query:
        return query
    kept = []
    for part in query.split("&"):
        # some frameworks split on ";" too (Rack, Perl's CGI): a piece after one counts
        if not any(_is_credential(piece, names, tokens) for piece in part.split(";")):
            kept.append(part)
    return "&".join(kept)


def _is_credential(pair: str, names: set[str], tokens: Collection[str]) -> bool:
    key, _, value = pair.partition("=")
    readings = {field_reading(key)}
    for decode in (unquote_plus, unquote):
        readings.add(field_reading(decode(key)))
    return bool(readings & names) and not _bound(unquote(value), tokens)
