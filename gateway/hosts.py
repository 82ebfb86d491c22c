"""One reading of a host as a request names it (Host, X-Forwarded-Host, a setting's `hosts`):
lower case, one trailing dot dropped, the port kept as sent. What is not one host name (two
dots in a row, a user part, a path, a list, a port that is not a number, characters outside
ASCII host names) has no reading at all, so it reaches no application, not even the `*` one
(Authelia CVE-2026-48794, Tinyauth GHSA-328g-jx67-v94g)."""

from __future__ import annotations

import functools
import ipaddress
import re

_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_PORT = re.compile(r"[0-9]{1,5}")


@functools.lru_cache(maxsize=1024)  # every request asks; a site sees few hosts
def canonical_host(value: str) -> str | None:
    """`value`'s one spelling, or None when it is not one host name with an optional port."""
    text = value.strip(" \t").lower()
    if text.startswith("["):
        end = text.find("]")
        name, rest = text[: end + 1], text[end + 1 :]
        try:
            ipaddress.IPv6Address(name[1:-1])
        except ValueError:
            return None
        if end < 0 or (rest and not rest.startswith(":")):
            return None
        port = rest[1:]
    else:
        name, _, port = text.partition(":")
        if len(name) > 254 or not _NAME.fullmatch(name):
            return None
        name = name.removesuffix(".")
    if port and (not _PORT.fullmatch(port) or int(port) > 65535):
        return None
    return f"{name}:{port}" if port else name
