"""Which address the request really comes from (PRODUCT.md section 1, step 1)."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# No address is longer ("[IPv6 with an IPv4 tail]:port" is under 60 characters): anything
# longer is not one, and is not kept in the parse cache.
MAX_TEXT = 64


def parse_ip(text: str | None) -> IPAddress | None:
    text = text.strip() if text else ""
    if not text or len(text) > MAX_TEXT:
        return None
    return _parse(text)


@functools.lru_cache(maxsize=4096)  # the same few peers and proxies ask again and again
def _parse(text: str) -> IPAddress | None:
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@functools.lru_cache(maxsize=4096)  # the same few clients again and again; str() is slow
def ip_text(address: IPAddress) -> str:
    """`address` as it is written in X-Forwarded-For and logs."""
    return str(address)


def is_trusted(address: IPAddress, trusted: Iterable[IPNetwork]) -> bool:
    return any(address in network for network in trusted)


def client_ip(
    peer: str | None, forwarded_for: Iterable[str], trusted: tuple[IPNetwork, ...]
) -> IPAddress | None:
    """The socket peer, or, when the peer is a trusted proxy, the rightmost untrusted address of
    X-Forwarded-For. None when anything on the way does not parse: no trusted network then."""
    return client_ip_of(parse_ip(peer), forwarded_for, trusted)


def client_ip_of(
    address: IPAddress | None, forwarded_for: Iterable[str], trusted: tuple[IPNetwork, ...]
) -> IPAddress | None:
    """client_ip() for a peer address already parsed."""
    if address is None or not trusted or not is_trusted(address, trusted):
        return address
    hops = [hop for value in forwarded_for for hop in value.split(",")]
    if not hops:
        return None  # a trusted proxy that names no client: where it comes from is unknown
    for hop in reversed(hops):
        parsed = parse_ip(hop)
        if parsed is None:
            return None
        if not is_trusted(parsed, trusted):
            return parsed
        address = parsed
    return address
