"""The methods an application may take a request for besides its own: frameworks honour
X-HTTP-Method-Override and its kin, and a `_method` parameter (Rails, Laravel, Symfony), so an
access rule scoped to a method is decided for each of them too, the strictest winning."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl

HEADERS = ("X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override")
PARAMETER = "_method"


def overrides(headers: Mapping[str, str], query: str) -> tuple[str, ...]:
    """The methods the request's override headers and `_method` query parameter name."""
    found: list[str] = []
    for name in HEADERS:
        value = headers.get(name)
        if value:
            found.extend(part.strip().upper() for part in value.split(",") if part.strip())
    if PARAMETER in query.lower():
        for key, value in parse_qsl(query, keep_blank_values=True):
            if key.strip().lower() == PARAMETER and value.strip():
                found.append(value.strip().upper())
    return tuple(dict.fromkeys(found))
