"""CSRF protection for every POST the gateway serves: a random cookie and a keyed token."""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_cookie_value() -> str:
    return secrets.token_urlsafe(32)


def token_for(cookie_value: str, keys: tuple[str, ...]) -> str:
    """The token a form carries: an HMAC of the cookie under the first signing key."""
    return _mac(keys[0], cookie_value)


def valid(cookie_value: str | None, token: str | None, keys: tuple[str, ...]) -> bool:
    if not cookie_value or not token or not token.isascii() or not cookie_value.isascii():
        return False
    return any(hmac.compare_digest(_mac(key, cookie_value), token) for key in keys)


def _mac(key: str, value: str) -> str:
    digest = hmac.new(key.encode(), b"csrf:" + value.encode(), hashlib.sha256)
    return digest.hexdigest()
