"""What the proxy tests share: policies and applications, raw HTTP, a portal sign-in."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.clock import FixedClock
from gateway.identity.portal import hash_password
from tests.support import (
    DEFAULT_POLICY,
    code_for,
    csrf_from_page,
    intercept_app,
    portal_login,
    secret_from_page,
)

BYPASS_POLICIES = {
    "example.yaml": DEFAULT_POLICY,
    # raw proxying: the client's own credentials go through too
    "applications.yaml": 'applications:\n  app:\n    - paths: ["/**"]\n      access: bypass\n'
    "      credentials: pass\n",
}
USER = "carol@example.com"
PASSWORD = "carol-password"


def bypass_app(upstream: str, **overrides: Any) -> dict[str, Any]:
    """An application whose every path bypasses sign-in: raw proxying."""
    return intercept_app(upstream, **overrides)


def write_users_file(tmp: Path) -> Path:
    path = tmp / "users.yaml"
    path.write_text(
        "users:\n"
        f"  {USER}:\n"
        f"    password: '{hash_password(PASSWORD)}'\n"
        "    name: Carol Example\n"
        "    groups: [billing]\n"
    )
    return path


async def portal_first_factor(client: Any, rd: str = "%2F") -> Any:
    """Password on the gateway's login page; returns the 303 answer."""
    return await portal_login(client, USER, PASSWORD, rd)


async def portal_enrol(client: Any, clock: FixedClock, target: str = "/.gateway/enrol") -> Any:
    """The enrolment page, then its code; returns the 303 answer and the TOTP secret."""
    page = await client.get("/.gateway/enrol")
    html = await page.text()
    secret = secret_from_page(html)
    done = await client.post(
        target,
        data={"csrf_token": csrf_from_page(html), "code": code_for(secret, at=clock.now)},
        allow_redirects=False,
    )
    return done, secret


async def portal_verified(client: Any, clock: FixedClock) -> str:
    """Sign in and enrol: the client's cookie jar then holds a verified session. Returns the
    TOTP secret."""
    first = await portal_first_factor(client)
    assert first.status == 303, first.status
    done, secret = await portal_enrol(client, clock)
    assert done.status == 303, done.status
    return str(secret)


def cookie_header(client: Any) -> str:
    """The client's cookies as one Cookie header, for raw requests."""
    return "; ".join(f"{m.key}={m.value}" for m in client.session.cookie_jar)


@dataclass
class RawResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def get(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


async def raw_request(
    host: str,
    port: int,
    target: str,
    headers: list[tuple[str, str]] = (),  # type: ignore[assignment]
    method: str = "GET",
    body: bytes = b"",
    raw_body: bool = False,
) -> RawResponse:
    """One request written byte for byte (names spelled exactly as given), one answer read.

    A Content-Length is added for `body` unless `raw_body` (the body is then sent as it is, for
    hand-made chunked encoding); a Host unless `headers` has one spelled "Host"."""
    own_host = any(name == "Host" for name, _ in headers)  # spelled exactly "Host": the only one
    lines = [f"{method} {target} HTTP/1.1", *([] if own_host else [f"Host: {host}:{port}"])]
    lines += [f"{name}: {value}" for name, value in headers]
    if body and not raw_body:
        lines.append(f"Content-Length: {len(body)}")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(_read_response(reader, method), 10)
    finally:
        writer.close()


async def _read_response(reader: asyncio.StreamReader, method: str) -> RawResponse:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    headers = []
    for line in header_lines:
        if line:
            name, _, value = line.partition(":")
            headers.append((name, value.strip()))
    response = RawResponse(status, headers, b"")
    lengths = response.get("Content-Length")
    if method == "HEAD" or status in (204, 304):
        return response
    if "chunked" in ",".join(response.get("Transfer-Encoding")).lower():
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            body += await reader.readexactly(size)
            await reader.readexactly(2)
        response.body = body
    elif lengths:
        response.body = await reader.readexactly(int(lengths[0]))
    else:
        response.body = await reader.read()
    return response
