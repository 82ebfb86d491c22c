"""Client address: X-Forwarded-For only from trusted proxies, rightmost untrusted hop wins."""

import ipaddress

import pytest

from gateway.clientip import client_ip

TRUSTED = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"))


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        ("203.0.113.9", [], "203.0.113.9"),
        ("203.0.113.9", ["10.1.1.1"], "203.0.113.9"),  # untrusted peer: header ignored
        ("10.0.0.2", ["198.51.100.7"], "198.51.100.7"),
        ("10.0.0.2", ["1.2.3.4, 198.51.100.7"], "198.51.100.7"),  # rightmost untrusted
        ("10.0.0.2", ["1.2.3.4, 198.51.100.7, 10.0.0.3"], "198.51.100.7"),
        ("10.0.0.2", ["1.2.3.4", "198.51.100.7"], "198.51.100.7"),  # several header lines
        ("10.0.0.2", ["10.9.9.9"], "10.9.9.9"),  # all trusted: the leftmost
        ("10.0.0.2", [], None),  # a trusted proxy naming no client: unknown
        ("10.0.0.2", ["not-an-ip"], None),  # unparsable: no address, never a bypass
        ("10.0.0.2", ["1.2.3.4, garbage, 10.0.0.3"], None),
        ("10.0.0.2", ["2001:db8::1"], "2001:db8::1"),
        ("10.0.0.2", ["[2001:db8::1]:443"], "2001:db8::1"),
        ("10.0.0.2", ["198.51.100.7:5555"], "198.51.100.7"),
        ("fd00::1", ["198.51.100.7"], "198.51.100.7"),
        ("::ffff:10.0.0.2", ["198.51.100.7"], "198.51.100.7"),
        (None, ["198.51.100.7"], None),
    ],
)
def test_client_ip(peer: str | None, xff: list[str], expected: str | None) -> None:
    result = client_ip(peer, xff, TRUSTED)
    assert (str(result) if result is not None else None) == expected


def test_spoofed_header_from_untrusted_peer_changes_nothing() -> None:
    """authentik CVE-2023-36456: a client cannot pick its own address with X-Forwarded-For."""
    assert str(client_ip("198.51.100.7", ["10.0.0.1"], TRUSTED)) == "198.51.100.7"
    assert str(client_ip("198.51.100.7", ["10.0.0.1"], ())) == "198.51.100.7"
