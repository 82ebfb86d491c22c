"""The methods an application may take a request for besides its own: frameworks honour
X-HTTP-Method-Override and its kin, and a `_method` parameter (Rails, Laravel, Symfony), so an
access rule scoped to a method is decided for each of them too, the strictest winning."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from gateway.identity.body_fields import query_fields
from gateway.identity.login_body import field_reading

HEADERS = ("X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override")
PARAMETER = "_method"


def overrides(headers: Mapping[str, str], query: str) -> tuple[str, ...]:
    """The methods the request's override headers and `_method` query parameters name (a body's
    `_method` is read only where it matters: see Policy.body_may_tighten)."""
    found: list[str] = []
    getall = getattr(headers, "getall", None)  # a MultiMapping's (cheaper than isinstance)
    for name in HEADERS:  # every line of a repeated header: an application may read the last
        values = getall(name, ()) if getall is not None else (headers.get(name) or "",)
        for value in values:
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
