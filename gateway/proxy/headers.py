"""Header rules at the proxy boundary: hop-by-hop, Connection-listed and identity headers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from multidict import CIMultiDict

from gateway.memo import remembered

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
IDENTITY_PREFIXES = ("x-forwarded-", "x-auth-request-", "x-remote-")


def canonical(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def is_identity(name: str, extra: frozenset[str] = frozenset()) -> bool:
    key = canonical(name)
    return key in IDENTITY or key in extra or key.startswith(IDENTITY_PREFIXES)


def connection_listed(headers: Mapping[str, str] | CIMultiDict[str]) -> frozenset[str]:
    listed: set[str] = set()
    for value in _all(headers, "Connection"):
        listed.update(canonical(token) for token in value.split(",") if token.strip())
    return frozenset(listed)


def _all(headers: Mapping[str, str] | CIMultiDict[str], name: str) -> Iterable[str]:
    getall = getattr(headers, "getall", None)
    if getall is not None:
        return list(getall(name, []))
    value = headers.get(name)
    return [] if value is None else [value]


def clean_request_headers(
    headers: CIMultiDict[str] | Mapping[str, str], extra_identity: frozenset[str] = frozenset()
) -> CIMultiDict[str]:
    """The client's headers minus hop-by-hop, Connection-listed, identity and Host."""
    listed = connection_listed(headers)
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        key = _request_verdict(name)
        if key is None or key in listed or key in extra_identity:
            continue
        out.add(name, value)
    return out


@remembered(entries=1024, longest=64)  # the header names clients send again and again
def _request_verdict(name: str) -> str | None:
    """None for a request header that never goes upstream (hop-by-hop, identity, Host), else its
    canonical name (for the Connection-listed and application-specific checks)."""
    key = canonical(name)
    return None if key in HOP_BY_HOP or key == "host" or is_identity(key) else key


def clean_response_headers(headers: CIMultiDict[str] | Mapping[str, str]) -> CIMultiDict[str]:
    listed = connection_listed(headers)
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        key = _canonical(name)
        if key in HOP_BY_HOP or key in listed:
            continue
        out.add(name, value)
    return out


# the header names an application sends again and again
_canonical = remembered(entries=1024, longest=64)(canonical)
