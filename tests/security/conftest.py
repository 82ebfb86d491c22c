"""The gateways the security suite attacks: one application behind the gateway in each identity
mode (portal, header, intercept) and in forward-auth mode, in front of the recording upstream of
tests/proxy, with one access policy (bypass /public/**, deny /internal/**)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from argon2 import PasswordHasher

from gateway.clock import FixedClock
from tests.proxy.helpers import RawResponse, raw_request
from tests.proxy.upstream import SEEN
from tests.support import DEFAULT_POLICY, intercept_app, portal_app

Client = TestClient[Any, Any]
USER = "carol@example.com"
PASSWORD = "carol-password"
SSO_HEADER = "X-SSO-User"
ACCESS = """applications:
  app:
    - paths: ["/public/**"]
      access: bypass
    - paths: ["/internal/**"]
      access: deny
    - paths: ["/light/**"]
      access: one_factor
"""
POLICIES = {"example.yaml": DEFAULT_POLICY, "applications.yaml": ACCESS}
# Hashes made with other parameters than the gateway's own defaults, as a users file written by
# an older version or another tool has; also keeps each password check to a few milliseconds.
USERS_HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)




def reached(upstream: TestServer) -> list[dict[str, Any]]:
    """Every request the upstream received."""
    seen: list[dict[str, Any]] = upstream.app[SEEN]
    return seen


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    path = tmp_path / "users.yaml"
    path.write_text(
        "users:\n"
        f"  {USER}:\n"
        f"    password: '{USERS_HASHER.hash(PASSWORD)}'\n"
        "    name: Carol Example\n"
        "    groups: [billing]\n"
    )
    return path


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(time.time())


def header_app(upstream: str, **overrides: Any) -> dict[str, Any]:
    app: dict[str, Any] = {
        "upstream": upstream,
        "hosts": ["*"],
        "identity": "header",
        "header": {"user_header": SSO_HEADER},
    }
    app.update(overrides)
    return app


def forward_auth_app(users: Path) -> dict[str, Any]:
    return {
        "mode": "forward_auth",
        "hosts": ["app.test"],
        "identity": "portal",
        "portal": {"users_file": str(users)},
    }


@pytest.fixture
async def portal(
    make_gateway: Any, upstream_url: str, users_file: Path, clock: FixedClock
) -> Client:
    """Portal identity, proxy mode, the client an untrusted peer."""
    client: Client = await make_gateway(
        {"app": portal_app(upstream_url, users_file)}, POLICIES, clock=clock
    )
    return client


@pytest.fixture
async def header(make_gateway: Any, upstream_url: str, clock: FixedClock) -> Client:
    """Header identity, proxy mode; the test client is the trusted SSO proxy."""
    client: Client = await make_gateway(
        {"app": header_app(upstream_url)}, POLICIES, clock=clock, trusted_proxies=["127.0.0.1/32"]
    )
    return client


@pytest.fixture
async def intercept(make_gateway: Any, legacy_server: TestServer, clock: FixedClock) -> Client:
    """Intercept identity (the demo's legacy application and its own login form)."""
    app = intercept_app(str(legacy_server.make_url("")).rstrip("/"))
    client: Client = await make_gateway({"app": app}, POLICIES, clock=clock)
    return client


@pytest.fixture
async def forward_auth(make_gateway: Any, users_file: Path, clock: FixedClock) -> Client:
    """Forward-auth mode, portal identity; the test client is the trusted front proxy."""
    client: Client = await make_gateway(
        {"app": forward_auth_app(users_file)},
        POLICIES,
        clock=clock,
        trusted_proxies=["127.0.0.1/32"],
    )
    return client


async def send(
    client: Client,
    target: str,
    headers: list[tuple[str, str]] = (),  # type: ignore[assignment]
    method: str = "GET",
    body: bytes = b"",
) -> RawResponse:
    """One request written byte for byte to the gateway (no client library normalising it)."""
    return await raw_request(
        client.server.host,
        client.server.port,
        target,
        [("Connection", "close"), *headers],
        method=method,
        body=body,
    )
