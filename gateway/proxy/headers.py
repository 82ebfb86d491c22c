"""Header rules at the proxy boundary: hop-by-hop, Connection-listed and identity headers."""

from __future__ import annotations

import functools
from collections.abc import Mapping

from multidict import CIMultiDict

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "http2-settings",
    }
)

# Headers that assert who the user is or where the request came from. Only the gateway sets
# them; whatever the client sent under these names (any case, `_` for `-`) is dropped.
IDENTITY = frozenset(
    {
        "remote-user",
        "remote-email",
        "remote-groups",
        "remote-name",
        "forwarded",
        "x-real-ip",
        "x-client-ip",
        "true-client-ip",
        "x-original-uri",
        "x-original-url",
        "x-original-method",
        "x-rewrite-url",
    }
)
# Set by the gateway on every forwarded request, so a client's copy under any spelling goes
GATEWAYS_OWN = frozenset({"host", "x-request-id"})
IDENTITY_PREFIXES = ("x-forwarded-", "x-auth-request-", "x-remote-")


def canonical(name: str) -> str:
    """A header name as applications may read it: PHP, CGI and WSGI servers turn "-", "_" and
    "." alike into "_" (Remote.User is PHP's HTTP_REMOTE_USER behind Caddy's php_fastcgi), and
    every server ignores case. Two names that read the same are one header here."""
    return name.strip().lower().replace("_", "-").replace(".", "-")


def is_identity(name: str, extra: frozenset[str] = frozenset()) -> bool:
    key = canonical(name)
    return key in IDENTITY or key in extra or key.startswith(IDENTITY_PREFIXES)


def connection_listed(headers: Mapping[str, str] | CIMultiDict[str]) -> frozenset[str]:
    values = _all(headers, "Connection")
    if len(values) == 1:  # the usual case, and the same value again and again
        return _listed(values[0]) if len(values[0]) <= _NAME_KEPT else _tokens(values[0])
    return frozenset(token for value in values for token in _tokens(value))


def _tokens(value: str) -> frozenset[str]:
    return frozenset(canonical(token) for token in value.split(",") if token.strip())


_listed = functools.lru_cache(maxsize=256)(_tokens)


def _all(headers: Mapping[str, str] | CIMultiDict[str], name: str) -> list[str]:
    getall = getattr(headers, "getall", None)
    if getall is not None:
        return list(getall(name, ()))
    value = headers.get(name)
    return [] if value is None else [value]


def clean_request_headers(
    headers: CIMultiDict[str] | Mapping[str, str], extra_identity: frozenset[str] = frozenset()
) -> CIMultiDict[str]:
    """The client's headers minus hop-by-hop, Connection-listed, identity and Host."""
    listed = connection_listed(headers) if "Connection" in headers else _NONE
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        key = _request_verdict(name) if len(name) <= _NAME_KEPT else _verdict(name)
        if key is None or key in listed or key in extra_identity:
            continue
        out.add(name, value)
    return out


_NONE: frozenset[str] = frozenset()
_NAME_KEPT = 64  # header names up to this long have their verdicts remembered


def _verdict(name: str) -> str | None:
    """None for a request header that never goes upstream (hop-by-hop, identity, the gateway's
    own), else its canonical name (for the Connection-listed and application-specific checks)."""
    key = canonical(name)
    gone = key in HOP_BY_HOP or key in GATEWAYS_OWN or is_identity(key)
    return None if gone else key


# the header names clients send again and again (a C cache: this runs for every header)
_request_verdict = functools.lru_cache(maxsize=1024)(_verdict)


def clean_response_headers(headers: CIMultiDict[str] | Mapping[str, str]) -> CIMultiDict[str]:
    listed = connection_listed(headers) if "Connection" in headers else _NONE
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        key = header_key(name)
        if key in HOP_BY_HOP or key in listed:
            continue
        out.add(name, value)
    return out


# the header names clients and applications send again and again
_canonical = functools.lru_cache(maxsize=1024)(canonical)


def header_key(name: str) -> str:
    """canonical(name), remembered for names of up to _NAME_KEPT characters (the hot path's
    per-header reading: responses, method overrides, credential headers)."""
    return _canonical(name) if len(name) <= _NAME_KEPT else canonical(name)
