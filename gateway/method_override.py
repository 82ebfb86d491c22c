"""The methods an application may take a request for besides its own: frameworks honour
X-HTTP-Method-Override and its kin, and a `_method` parameter (Rails, Laravel, Symfony), so an
access rule scoped to a method is decided for each of them too, the strictest winning."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from gateway.identity.body_fields import query_fields
from gateway.identity.login_body import field_reading
from gateway.proxy.headers import header_key

HEADERS = ("X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override")
PARAMETER = "_method"
# PHP, CGI and WSGI servers read a header name's "_" and "." as "-" (all are PHP's
# HTTP_X_HTTP_METHOD_OVERRIDE), so every spelling of these names counts, in any case
_NAMES = frozenset(name.lower() for name in HEADERS)


def names_an_override(name: str) -> bool:
    """Whether an application may take the header `name` for one of HEADERS."""
    return header_key(name) in _NAMES


def overrides(headers: Mapping[str, str], query: str) -> tuple[str, ...]:
    """The methods the request's override headers and `_method` query parameters name (a body's
    `_method` is read only where it matters: see Policy.body_may_tighten)."""
    found: list[str] = []
    for name, value in headers.items():  # every line of a repeated header: one may read the last
        if names_an_override(name):
            found.extend(part.strip().upper() for part in value.split(",") if part.strip())
    if query and ("%" in query or PARAMETER[1:] in query.lower()):  # else no `_method` reading
        found.extend(parameter_overrides(query_fields(query)))
    return tuple(dict.fromkeys(found)) if found else ()


def parameter_overrides(fields: Iterable[tuple[str, str]]) -> tuple[str, ...]:
    """The methods `_method` fields name, under every reading frameworks give a field name
    (case, PHP's `_method[]`, a leading space): from the query string or from a form or JSON
    body, read loosely (gateway.identity.body_fields)."""
    return tuple(
        dict.fromkeys(
            value.strip().upper()
            for name, value in fields
            if field_reading(name) == PARAMETER and value.strip()
        )
    )
