"""Where the browser may be sent after login, challenge or logout: relative paths only."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

DEFAULT_TARGET = "/"
_MAX_LENGTH = 2048
_DECODE_ROUNDS = 3


def _acceptable(candidate: str) -> bool:
    if not candidate.startswith("/") or candidate.startswith(("//", "/\\")):
        return False
    if "\\" in candidate or any(ord(c) < 0x20 or ord(c) == 0x7F for c in candidate):
        return False
    parts = urlsplit(candidate)
    return not (parts.scheme or parts.netloc)


def is_safe_redirect(target: str) -> bool:
    """True when `target` is a path on the same application and nothing else.

    The target as sent must be printable ASCII; it and every percent-decoding of it (a few rounds,
    for double encoding) must start with a single `/` and hold no backslash or control character.
    """
    if not target or len(target) > _MAX_LENGTH:
        return False
    if any(ord(c) < 0x21 or ord(c) > 0x7E for c in target):
        return False
    candidate = target
    for _ in range(_DECODE_ROUNDS):
        if not _acceptable(candidate):
            return False
        decoded = unquote(candidate)
        if decoded == candidate:
            return True
        candidate = decoded
    # still encoded after every round: nothing legitimate is encoded this deep
    return _acceptable(candidate) and unquote(candidate) == candidate


def safe_redirect(target: str | None, default: str = DEFAULT_TARGET) -> str:
    return target if target is not None and is_safe_redirect(target) else default
