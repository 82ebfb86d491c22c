"""Forwarded-header spoofing from peers that are not trusted proxies (authentik CVE-2023-36456):
whatever address header a client makes up, in whatever spelling, earns no trusted-network
shortcut, no fresh address for brute forcing, and no say in forward auth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.clock import FixedClock
from tests.security.conftest import (
    ACCESS,
    PASSWORD,
    USER,
    Client,
    send,
)
from tests.support import (
    DEFAULT_POLICY,
    code_for,
    csrf_from_page,
    portal_app,
    portal_login,
    secret_from_page,
)

INSIDE = "10.1.2.3"
TRUSTED_NETWORK_POLICY = DEFAULT_POLICY.replace("enforce_2fa: true", "enforce_2fa: false") + (
    "trusted_networks:\n  networks: [10.0.0.0/8]\n"
)
ADDRESS_HEADERS = [
    "X-Forwarded-For",
    "x-forwarded-for",
    "X_Forwarded_For",
    "X-Real-IP",
    "x_real_ip",
    "Forwarded",
    "True-Client-IP",
    "X-Client-IP",
    "CF-Connecting-IP",
    "Fastly-Client-IP",
    "X-Cluster-Client-IP",
    "X-Original-Forwarded-For",
]


def spoofed(address: str) -> list[tuple[str, str]]:
    """Every address header a client could send, each naming `address`."""
    return [
        (name, f"for={address}" if name == "Forwarded" else address) for name in ADDRESS_HEADERS
    ] + [("X-Forwarded-For", f"{address}, {address}")]


async def test_no_trusted_network_shortcut_from_made_up_addresses(
    make_gateway: Any, upstream_url: str, users_file: Path, clock: FixedClock, tmp_path: Path
) -> None:
    """A client outside (the socket peer is not in trusted_proxies) claiming an inside address
    in every header gets no trusted-network cookie for its second factor, with or without
    trusted proxies configured elsewhere."""
    for index, proxies in enumerate(([], ["192.0.2.0/24"])):
        client: Client = await make_gateway(
            {"app": portal_app(upstream_url, users_file)},
            {"example.yaml": TRUSTED_NETWORK_POLICY, "applications.yaml": ACCESS},
            clock=clock,
            trusted_proxies=proxies,
            store=f"sqlite://{tmp_path / f'store{index}.db'}",
        )
        headers = dict(spoofed(INSIDE))  # the client library sends one of each name
        login = await portal_login(client, USER, PASSWORD, headers=headers)
        assert login.status == 303
        html = await (await client.get("/.gateway/enrol?method=totp", headers=headers)).text()
        done = await client.post(
            "/.gateway/enrol?method=totp",
            data={
                "csrf_token": csrf_from_page(html),
                "code": code_for(secret_from_page(html), clock.now),
            },
            headers=headers,
            allow_redirects=False,
        )
        assert done.status == 303
        lines = done.headers.getall("Set-Cookie", [])
        assert lines and not any("gateway_trust" in line for line in lines), lines


async def test_made_up_addresses_do_not_escape_brute_force_limits(
    portal: Client,
) -> None:
    """Wrong passwords from one socket, each claiming a new address in every header: the
    gateway counts the socket's address, so the delay comes after the free tries all the
    same (raw requests: duplicates and odd spellings as sent)."""
    token_page = await portal.get("/.gateway/login")
    token = csrf_from_page(await token_page.text())
    cookie = "; ".join(f"{m.key}={m.value}" for m in portal.session.cookie_jar)
    statuses = []
    for attempt in range(8):
        body = f"csrf_token={token}&username={USER}&password=wrong{attempt}".encode()
        headers = [
            ("Cookie", cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
            *spoofed(f"198.51.100.{attempt + 1}"),
        ]
        answer = await send(portal, "/.gateway/login", headers, method="POST", body=body)
        statuses.append(answer.status)
    assert statuses[:5] == [401] * 5
    assert 429 in statuses[5:], statuses


async def test_forward_auth_answers_only_its_proxy(forward_auth: Any, make_gateway: Any) -> None:
    """A peer outside trusted_proxies gets 403 from both endpoints, whatever address,
    host, URI or user it claims in whichever header."""
    other: Client = await make_gateway(
        {
            "app": {
                "mode": "forward_auth",
                "hosts": ["app.test"],
                "identity": "header",
                "header": {"user_header": "X-SSO-User"},
            }
        },
        trusted_proxies=["192.0.2.0/24"],
    )
    for endpoint in ("/.gateway/verify", "/.gateway/auth-request"):
        answer = await send(
            other,
            endpoint,
            [
                ("X-Forwarded-Method", "GET"),
                ("X-Forwarded-Uri", "/public/x"),
                ("X-Original-URI", "/public/x"),
                ("X-Forwarded-Host", "app.test"),
                ("X-SSO-User", USER),
                *spoofed("192.0.2.1"),
            ],
        )
        assert answer.status == 403, endpoint
        assert not [v for k, v in answer.headers if k.lower() == "remote-user"]
